#!/usr/bin/env bash
# A first push of the demo organisation to Teamtailor at Teamtailor's real limit (50 requests
# per 10 s per key, a fixed window with live X-Rate-Limit-* headers, 429 without Retry-After),
# with hrsync at its default pace for Teamtailor (no rate_limit: 5 requests a second), then a
# run with nothing changed. Prints the requests, the 429s, the time, and the second run's writes.
#
#   bench/teamtailor_first_push.sh [EMPLOYEES]      (default 2000, the demo mirror's size)
#
# Takes about five minutes for the demo mirror (some 1,600 requests at 5 a second).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${HRSYNC_BIN:-$ROOT/build/hrsync}
PY=/usr/bin/python3
N=${1:-2000}
WORK=$(mktemp -d /tmp/hrsync-ttbench.XXXXXX)
chmod 755 "$WORK"
TT_PID=
cleanup() {
  [ -n "$TT_PID" ] && kill "$TT_PID" 2>/dev/null && wait "$TT_PID" 2>/dev/null || true
  tests/setup/pgcluster.sh stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

eval "$(tests/setup/pgcluster.sh start "$WORK/pg")"
export PGHOST PGPORT PGUSER PGDATABASE
$PY tests/fixtures/erp/gen_erp.py --employees "$N" --absences 0 --assets 0 | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
$PY tests/fixtures/erp/gen_teamtailor.py | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
exec 3< <($PY tests/sandbox/teamtailor.py --port 0 --api-key bench-key --rate 50/10 --no-retry-after --quiet)
TT_PID=$!
read -r line <&3
PORT=${line##* }
cat >"$WORK/hrsync.yaml" <<EOF
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
  state_schema: hrsync
timezone: Europe/Paris
connectors:
  teamtailor:
    type: teamtailor
    base_url: "http://127.0.0.1:$PORT/v1"
    allow_insecure_http: true
    token: { env: TT_BENCH_TOKEN }
    timeout: 10s
mappings: [ "$ROOT/mappings/teamtailor/departments.yaml", "$ROOT/mappings/teamtailor/locations.yaml",
            "$ROOT/mappings/teamtailor/users.yaml" ]
EOF
export TT_BENCH_TOKEN=bench-key

stats() { curl -s "http://127.0.0.1:$PORT/_sandbox/stats"; }
for n in 1 2; do
  before=$(stats | $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  t0=$(date +%s.%N)
  rc=0
  "$BIN" -c "$WORK/hrsync.yaml" run >"$WORK/run$n.log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  grep -E 'summary' "$WORK/run$n.log" | sed -E 's/^[^ ]+ +[a-z]+ +//'
  $PY - "$PORT" "$before" "$n" "$rc" "$t0" "$t1" <<'PYEOF'
import json, sys, urllib.request
port, since, n, rc, t0, t1 = sys.argv[1:]
reqs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/requests?since={since}").read())
writes = [r for r in reqs if r["method"] != "GET"]
print(f"run {n}: exit {rc}, {float(t1) - float(t0):.1f} s, {len(reqs)} requests to Teamtailor "
      f"({len(writes)} writes), {sum(r['status'] == 429 for r in reqs)} answered 429")
PYEOF
done
