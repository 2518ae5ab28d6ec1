# Teamtailor's part of `make demo`, sourced by tests/demo.sh (which defines ROOT, BIN, PY,
# OUT, CONFIG, say, cleanup and the PG* variables):
#
#   . tests/demo_teamtailor.sh start   after the ERP mirror is loaded: the connector's ERP
#                                      tables (departments, sites, the inbound hires table)
#                                      and the Teamtailor sandbox, for config/demo.yaml
#   . tests/demo_teamtailor.sh hires   after the other runs: what the first run pushed and
#                                      the second sent (nothing), two candidates moved to
#                                      Hired in Teamtailor, the next run bringing them into
#                                      erp_inbound.hires
#
# The sandbox allows 400 requests a second here so that the demo takes seconds; Teamtailor
# allows 50 per 10 s (bench/teamtailor_first_push.sh measures a first push at that limit).

case "${1:-}" in
start)
  say "Teamtailor: the ERP's departments and sites, and its sandbox"
  $PY tests/fixtures/erp/gen_teamtailor.py | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
  psql -X -At -c "SELECT 'departments: ' || count(*) FROM erp.departments UNION ALL
                  SELECT 'sites:       ' || count(*) FROM erp.sites"
  exec 5< <($PY tests/sandbox/teamtailor.py --port 0 --api-key demo-teamtailor-key --rate 400/1 --no-retry-after --quiet)
  TT_PID=$!
  read -r line <&5
  TT_PORT=${line##* }
  echo "Teamtailor sandbox on http://127.0.0.1:$TT_PORT/v1 (240 users invited by hand already there)"
  export HRSYNC_DEMO_TEAMTAILOR_URL="http://127.0.0.1:$TT_PORT/v1"
  export HRSYNC_DEMO_TEAMTAILOR_TOKEN=demo-teamtailor-key
  # Stopped with the rest: demo.sh's cleanup, then the sandbox.
  eval "$(declare -f cleanup | sed '1s/^cleanup/cleanup_before_teamtailor/')"
  cleanup() {
    kill "$TT_PID" 2>/dev/null && wait "$TT_PID" 2>/dev/null || true
    cleanup_before_teamtailor
  }
  ;;
hires)
  say "Teamtailor: the organisation the first run pushed, and what the second run sent"
  $PY - "$TT_PORT" <<'PYEOF'
import json, subprocess, sys, urllib.request
port = sys.argv[1]
def get(path):
    return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/{path}").read())
store = get("store")
ours = [u for u in store["users"] if u.get("external-id")]
print(f"on Teamtailor: {len(store['departments'])} departments, {len(store['locations'])} locations, "
      f"{len(ours)} users from the ERP ({sum(u['role'] == 'recruiter' for u in ours)} recruiters, "
      f"{sum(u['role'] == 'no_access' for u in ours)} who left, as no_access), "
      f"{len(store['deleted_users'])} deleted")
out = subprocess.run(["psql", "-X", "-At", "-F", " ", "-c",
                      "SELECT extract(epoch FROM started_at), extract(epoch FROM finished_at) FROM hrsync.runs "
                      "ORDER BY id LIMIT 2"], capture_output=True, text=True, check=True).stdout.split("\n")
reqs = get("requests")
for n, line in enumerate(out[:2], 1):
    t0, t1 = map(float, line.split())
    mine = [r for r in reqs if t0 - 1 <= r["ts"] <= t1 + 1]
    writes = [r for r in mine if r["method"] != "GET"]
    print(f"run {n}: {len(mine)} requests to Teamtailor, {len(writes)} writes, "
          f"{sum(r['status'] == 429 for r in mine)} answered 429")
PYEOF

  say "Teamtailor: two candidates are moved to Hired; the next run brings them into the ERP"
  $PY - "$TT_PORT" <<'PYEOF'
import json, subprocess, sys, urllib.request
port = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_sandbox/{path}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())
dep = dict(line.split("|") for line in subprocess.run(
    ["psql", "-X", "-At", "-c", "SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'teamtailor_departments'"],
    capture_output=True, text=True, check=True).stdout.split())
post("hires", {"candidate": {"first-name": "Ирина", "last-name": "Соколова", "email": "irina.sokolova@example.net",
                             "phone": "+7 912 345-67-89"},
               "job": {"title": "Менеджер по продажам", "department_id": dep.get("DEP-06")}})
post("hires", {"candidate": {"first-name": "Hugo", "last-name": "Lefèvre", "email": "hugo.lefevre@example.net",
                             "phone": "+33 6 12 34 56 78"},
               "job": {"title": "Développeur", "department_id": dep.get("DEP-11")}})
post("hires", {"candidate": {"first-name": "Nina", "last-name": "Berg", "email": "nina.berg@example.net"},
               "job": {"title": "Développeur", "department_id": dep.get("DEP-11")}, "stage-type": "In process"})
print("3 candidates in Teamtailor: Irina Sokolova and Hugo Lefèvre hired, Nina Berg still in process")
PYEOF
  run 4
  psql -X -c "SELECT platform_id, first_name, last_name, email, job_title, department_code, hired_at
              FROM erp_inbound.hires ORDER BY platform_id"
  ;;
*)
  echo "demo_teamtailor.sh: start or hires" >&2
  exit 2
  ;;
esac
