#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL holding the demo ERP mirror, the bundled PeopleForce
# sandbox, a full sync and a second (no-op) sync, with both summaries. Cleans up after itself;
# the two runs' logs stay in build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${HRSYNC_BIN:-$ROOT/build/hrsync}
PY=/usr/bin/python3
OUT=$ROOT/build/demo
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/hrsync-demo.XXXXXX)
chmod 755 "$WORK"
PGDIR=$WORK/pg
SANDBOX_PID=
PERSONIO_PID=

cleanup() {
  [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null && wait "$SANDBOX_PID" 2>/dev/null || true
  [ -n "$PERSONIO_PID" ] && kill "$PERSONIO_PID" 2>/dev/null && wait "$PERSONIO_PID" 2>/dev/null || true
  tests/setup/pgcluster.sh stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Starting a throwaway PostgreSQL"
eval "$(tests/setup/pgcluster.sh start "$PGDIR")"
export PGHOST PGPORT PGUSER PGDATABASE

say "Loading the demo ERP mirror (2,000 employees, 5,000 absences, 800 assets)"
$PY tests/fixtures/erp/gen_erp.py --employees 2000 --absences 5000 --assets 800 --manifest "$OUT/manifest.json" \
  | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
psql -X -At -c "SELECT 'employees: ' || count(*) FROM erp.employees UNION ALL
                SELECT 'absences:  ' || count(*) FROM erp.absences UNION ALL
                SELECT 'assets:    ' || count(*) FROM erp.assets"
. tests/demo_teamtailor.sh start   # Teamtailor: its ERP tables and sandbox

say "Starting the PeopleForce and Personio sandboxes"
exec 3< <($PY tests/sandbox/peopleforce.py --port 0 --api-key demo-api-key --rate 24000/60 --quiet)
SANDBOX_PID=$!
read -r line <&3
PORT=${line##* }
echo "PeopleForce sandbox on http://127.0.0.1:$PORT/api/public/v3 (limit: 24,000 requests a minute)"
exec 4< <($PY tests/sandbox/personio.py --port 0 --api-key demo-personio-secret --client-id demo-client --quiet)
PERSONIO_PID=$!
read -r line <&4
PPORT=${line##* }
# Personio documents 2,000/min on v1: loosened here so the demo takes seconds, not minutes.
curl -s -X POST -H 'Content-Type: application/json' -d '{"v1_rate": "24000/60"}' \
  "http://127.0.0.1:$PPORT/_sandbox/config" >/dev/null
echo "Personio sandbox on http://127.0.0.1:$PPORT"

export HRSYNC_DEMO_CONNINFO="host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
export HRSYNC_DEMO_PEOPLEFORCE_URL="http://127.0.0.1:$PORT/api/public/v3"
export HRSYNC_DEMO_PEOPLEFORCE_TOKEN=demo-api-key
export HRSYNC_DEMO_PERSONIO_URL="http://127.0.0.1:$PPORT"
export HRSYNC_DEMO_PERSONIO_CLIENT_ID=demo-client
export HRSYNC_DEMO_PERSONIO_SECRET=demo-personio-secret
CONFIG=config/demo.yaml

run() {  # run N: one sync, its log to build/demo/runN.log, the summaries on screen
  local n=$1 rc=0 t0 t1
  t0=$(date +%s.%N)
  "$BIN" -c "$CONFIG" --log-format text run >"$OUT/run$n.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  grep -E 'summary|run started|run finished|run stopped|stopping' "$OUT/run$n.log" | sed -E 's/^[^ ]+ +//' || true
  printf "exit status %d, wall time %s s, log: %s\n" "$rc" "$(awk -v a="$t0" -v b="$t1" "BEGIN { printf \"%.1f\", b - a }")" "build/demo/run$n.log"
  case $rc in 0|1) ;; *) echo "demo: run $n failed (exit $rc)"; tail -20 "$OUT/run$n.log"; exit 1 ;; esac
}

. tests/demo_troops.sh   # Troops: the Evolia mirror, its sandbox, missions pulled and decisions sent back
. tests/demo_workelo.sh   # Workelo: its data, its sandbox, a plan and a windowed first load
say "First run: the full sync"
run 1
echo "A few of the records that failed, as hrsync logged them:"
grep -E ' warning ' "$OUT/run1.log" | sed -E 's/^[^ ]+ +warning +//' | awk '!seen[$0]++ && n++ < 6' || true

seqs() { for p in "$PORT" "$PPORT"; do curl -s "http://127.0.0.1:$p/_sandbox/stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])'; done; }
say "Second run: nothing changed, so nothing is sent"
before=$(seqs)
run 2
$PY - "$PORT" "$PPORT" $before <<'PYEOF'
import json, sys, urllib.request
ports, since = sys.argv[1:3], sys.argv[3:5]
for name, port, s in zip(("PeopleForce", "Personio"), ports, since):
    reqs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/requests?since={s}").read())
    writes = [r for r in reqs if r["method"] != "GET" and "/auth/" not in r["path"]]
    print(f"{name} sandbox, second run: {len(reqs)} requests, {len(writes)} of them writes to records")
PYEOF

say "On the platforms, employees ask for leave; managers approve most of it"
$PY - "$PORT" "$PPORT" <<'PYEOF'
import json, subprocess, sys, urllib.request
pf, pio = sys.argv[1:3]
def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read() or b"null")
def ids(mapping):
    out = subprocess.run(["psql", "-X", "-At", "-c", "SELECT platform_id FROM hrsync.links WHERE mapping = '%s' "
                          "AND status = 'active' ORDER BY erp_key LIMIT 4" % mapping], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]
for i, e in enumerate(ids("employees")):
    post(f"http://127.0.0.1:{pf}/_sandbox/leave_requests", {"employee_id": e, "leave_type_id": 101,
         "starts_on": f"2026-12-{14 + i}", "ends_on": f"2026-12-{15 + i}", "description": "asked in PeopleForce",
         "state": "approved" if i < 3 else "pending"})
for i, e in enumerate(ids("personio_employees")):
    post(f"http://127.0.0.1:{pio}/_sandbox/time-offs", {"employee_id": e, "time_off_type_id": 9011,
         "start_date": f"2026-12-{21 + i}", "end_date": f"2026-12-{21 + i}", "half_day_start": False,
         "half_day_end": False, "comment": "asked in Personio", "status": "approved" if i < 3 else "pending"})
print("4 leave requests in PeopleForce and 4 time-offs in Personio, 3 of each approved")
PYEOF

say "Third run: the approved absences come back into the mirror (erp_inbound.absences)"
run 3
psql -X -c "SELECT platform, platform_id, personnel_number, kind_code, date_from, date_to, status
            FROM erp_inbound.absences ORDER BY platform, date_from"

. tests/demo_teamtailor.sh hires   # Teamtailor: the organisation pushed, two hires pulled back

say "What the state says (hrsync.failures by mapping and kind)"
psql -X -c "SELECT mapping, kind, count(*) FROM hrsync.failures GROUP BY 1, 2 ORDER BY 1, 2"
echo "Demo done; cleaning up."
