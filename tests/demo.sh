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

cleanup() {
  [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null && wait "$SANDBOX_PID" 2>/dev/null || true
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

say "Starting the PeopleForce sandbox (limit: 24,000 requests a minute)"
exec 3< <($PY tests/sandbox/peopleforce.py --port 0 --api-key demo-api-key --rate 24000/60 --quiet)
SANDBOX_PID=$!
read -r line <&3
PORT=${line##* }
echo "sandbox on http://127.0.0.1:$PORT/api/public/v3"

export HRSYNC_DEMO_CONNINFO="host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
export HRSYNC_DEMO_PEOPLEFORCE_URL="http://127.0.0.1:$PORT/api/public/v3"
export HRSYNC_DEMO_PEOPLEFORCE_TOKEN=demo-api-key
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

say "First run: the full sync"
run 1
echo "A few of the records that failed, as hrsync logged them:"
grep -E ' warning ' "$OUT/run1.log" | sed -E 's/^[^ ]+ +warning +//' | awk '!seen[$0]++ && n++ < 6' || true

say "Second run: nothing changed, so nothing is sent"
before=$(curl -s "http://127.0.0.1:$PORT/_sandbox/stats")
run 2
after=$(curl -s "http://127.0.0.1:$PORT/_sandbox/stats")
$PY - "$before" "$after" <<'PYEOF'
import json, sys
b, a = (json.loads(x) for x in sys.argv[1:3])
w = lambda s: sum(v for k, v in s["by_method"].items() if k != "GET")
print(f"requests the sandbox received: {a['total']} in all; second run: {a['total'] - b['total']} "
      f"(writes: {w(a) - w(b)})")
PYEOF

say "What the state says (hrsync.failures by mapping and kind)"
psql -X -c "SELECT mapping, kind, count(*) FROM hrsync.failures GROUP BY 1, 2 ORDER BY 1, 2"
echo "Demo done; cleaning up."
