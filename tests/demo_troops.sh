# make demo, the Troops part: sourced by tests/demo.sh once its PostgreSQL and its run()
# are up, before the first run. Loads the Evolia-shaped mirror (2,000 temp workers with their
# Evolia ids and NIRs, unavailabilities, paychecks, payroll variables), starts the Troops
# sandbox, and wraps run() so that:
#   run 1 and 2  also show Troops' write requests (the first load in batches; then none);
#   run 3        is preceded by missions Troops proposes to three workers, and followed by
#                the missions pulled into the ERP, decisions agency users record in Evolia
#                (one on a mission meanwhile decided on Troops), and run 4, which sends them.
# Expects: PY, OUT, BIN, CONFIG, say(), run(), cleanup() and the PG* variables of tests/demo.sh.

TROOPS_TEA=7d4c1b0e-2f3a-4b5c-8d6e-9f0a1b2c3d4e
TROOPS_PID=

say "Troops: the Evolia mirror of the temporary-employment agencies (schema evolia)"
$PY tests/fixtures/erp/gen_troops.py --workers 2000 --manifest "$OUT/troops-manifest.json" \
  | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
psql -X -At -c "SELECT 'temp workers:      ' || count(*) FROM evolia.interimaires UNION ALL
                SELECT 'unavailabilities:  ' || count(*) FROM evolia.indisponibilites UNION ALL
                SELECT 'paychecks:         ' || count(*) FROM evolia.bulletins UNION ALL
                SELECT 'payroll variables: ' || count(*) FROM evolia.variables_paie"

exec 5< <($PY tests/sandbox/troops.py --port 0 --api-key demo-troops-jwt --rate 24000/60 --quiet)
TROOPS_PID=$!
read -r line <&5
TPORT=${line##* }
echo "Troops sandbox on http://127.0.0.1:$TPORT/api/integrations (TEA $TROOPS_TEA)"
export HRSYNC_DEMO_TROOPS_URL="http://127.0.0.1:$TPORT/api/integrations"
export HRSYNC_DEMO_TROOPS_TOKEN=demo-troops-jwt

eval "troops_demo_cleanup_$(declare -f cleanup)"
cleanup() {
  [ -n "$TROOPS_PID" ] && kill "$TROOPS_PID" 2>/dev/null && wait "$TROOPS_PID" 2>/dev/null || true
  troops_demo_cleanup_cleanup
}
trap cleanup EXIT INT TERM

troops_seq() { curl -s "http://127.0.0.1:$TPORT/_sandbox/stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }

troops_writes() {  # the write requests Troops saw since $1, by method and path
  $PY - "$TPORT" "$1" "$2" <<'PYEOF'
import collections, json, re, sys, urllib.request
port, since, what = sys.argv[1], sys.argv[2], sys.argv[3]
reqs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/requests?since={since}").read())
writes = [r for r in reqs if r["method"] != "GET"]
by = collections.Counter("%s %s" % (r["method"], re.sub(r"/[0-9a-f-]{36}", "/{id}", r["path"])) for r in writes)
print(f"Troops sandbox, {what}: {len(reqs)} requests, {len(writes)} of them writes"
      + ("" if not by else ": " + ", ".join(f"{p} x{n}" for p, n in sorted(by.items()))))
imports = [r for r in writes if r["path"] == "/candidates/import"]
if imports:
    sizes = [len(r["body"]["candidates"]) for r in imports]
    print(f"  {sum(sizes)} temp workers went to Troops in {len(imports)} batch imports (largest {max(sizes)})")
PYEOF
}

troops_before_3() {
  $PY - "$TPORT" "$TROOPS_TEA" <<'PYEOF'
import json, subprocess, sys, urllib.request
port, tea = sys.argv[1:3]
out = subprocess.run(["psql", "-X", "-At", "-c", "SELECT erp_key FROM hrsync.links WHERE mapping = 'candidates' "
                      "AND status = 'active' ORDER BY erp_key LIMIT 3"], capture_output=True, text=True)
for i, k in enumerate(out.stdout.split()):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_sandbox/missions", method="POST",
                                 headers={"Content-Type": "application/json"},
                                 data=json.dumps({"tea_id": tea, "candidate_ref": "erp:" + k,
                                                  "job_id": "c1000000-0000-4000-8000-000000000001",
                                                  "started_at": f"2026-12-{14 + i}T07:00:00+01:00",
                                                  "ended_at": f"2026-12-{18 + i}T17:00:00+01:00"}).encode())
    m = json.loads(urllib.request.urlopen(req).read())["data"]
    print(f"Troops proposes mission {m['id']} to temp worker {k} (erp:{k})")
PYEOF
}

troops_after_3() {
  say "Troops: the proposed missions, pulled into the ERP (erp_inbound.troops_missions)"
  psql -X -c "SELECT platform_id, matricule, started_at, status FROM erp_inbound.troops_missions ORDER BY started_at"
  mapfile -t TROOPS_MISSIONS < <(psql -X -At -c "SELECT platform_id FROM erp_inbound.troops_missions ORDER BY started_at")
  # The third one is accepted on Troops meanwhile, by another agency user.
  curl -s -X POST -H 'Content-Type: application/json' -d '{"status": "accepted"}' \
    "http://127.0.0.1:$TPORT/_sandbox/missions/${TROOPS_MISSIONS[2]}/status" >/dev/null
  psql -X -q -c "INSERT INTO evolia.decisions_missions (mission_id, decision, motif, decide_par) VALUES
    ('${TROOPS_MISSIONS[0]}', 'accept', NULL, 'Claire Dubois'),
    ('${TROOPS_MISSIONS[1]}', 'refuse', 'déjà en mission cette semaine', 'Claire Dubois'),
    ('${TROOPS_MISSIONS[2]}', 'refuse', 'indisponible', 'Marc Lefebvre')"
  echo "Agency users recorded three decisions in Evolia (the third mission was meanwhile accepted on Troops)"
  say "Fourth run: the decisions go back to Troops, once"
  local before
  before=$(troops_seq)
  troops_demo_run 4
  troops_writes "$before" "fourth run"
  echo "The missions as Troops has them now, pulled again (hrsync run --mapping missions):"
  "$BIN" -c "$CONFIG" -q run --mapping missions 2>/dev/null || true
  psql -X -c "SELECT platform_id, matricule, status FROM erp_inbound.troops_missions ORDER BY started_at"
  echo "What hrsync says about the decision Troops refused:"
  "$BIN" -c "$CONFIG" failures mission_decisions || true
}

eval "troops_demo_$(declare -f run)"
run() {
  local before
  before=$(troops_seq)
  [ "$1" = 3 ] && troops_before_3
  troops_demo_run "$@"
  case $1 in
    1) troops_writes "$before" "first run"
       echo "Troops workers and unavailabilities that failed or wait (hrsync failures):"
       "$BIN" -c "$CONFIG" failures candidates 2>/dev/null || true
       "$BIN" -c "$CONFIG" failures availabilities 2>/dev/null || true ;;
    2) troops_writes "$before" "second run" ;;
    3) troops_after_3 ;;
  esac
}
