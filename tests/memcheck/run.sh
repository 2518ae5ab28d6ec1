#!/usr/bin/env bash
# make memcheck (mk/memcheck.mk): hrsync under valgrind's memcheck, against a throwaway
# PostgreSQL (tests/setup/pgcluster.sh) and the PeopleForce sandbox:
#   run 1  a full sync of the small demo mirror (300 employees, 700 absences, 120 assets)
#   run 2  the no-op sync after it
#   run 3  a night of changes (updates, dismissals, cancellations, returns) while the
#          sandbox answers some requests with 500s, lost answers and HTML pages: the
#          update, terminate, delete and retry paths
#
#   tests/memcheck/run.sh [BINARY]      default: build/hrsync (not the ASan build)
#
# Exit 0 when the three runs end as a sync of the demo data must (exit 1: its planted bad rows)
# with no memcheck error and no definite leak; valgrind's own exit code 99 otherwise.
# Valgrind's logs stay in build/memcheck/.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BIN=${1:-$ROOT/build/hrsync}
PY=/usr/bin/python3
OUT=$ROOT/build/memcheck
SUPP=$ROOT/tests/memcheck/hrsync.supp
mkdir -p "$OUT"
rm -f "$OUT"/*.log

[ -x "$BIN" ] || { echo "memcheck: $BIN not built (make)" >&2; exit 2; }
if grep -qa __asan_init "$BIN"; then
  echo "memcheck: $BIN is an AddressSanitizer build; valgrind needs the plain one (make)" >&2; exit 2
fi
if ! command -v valgrind >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "memcheck: valgrind is missing and there is no sudo to install it" >&2; exit 1; }
    sudo=sudo
  fi
  echo "memcheck: installing valgrind" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends valgrind >/tmp/hrsync-memcheck-deps.log 2>&1 || {
    $sudo apt-get update -q >>/tmp/hrsync-memcheck-deps.log 2>&1
    $sudo apt-get install -y -q --no-install-recommends valgrind >>/tmp/hrsync-memcheck-deps.log 2>&1; }
fi

WORK=$(mktemp -d /tmp/hrsync-memcheck.XXXXXX)
chmod 755 "$WORK"
PGDIR=$WORK/pg
SANDBOX_PID=
cleanup() {
  if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true; fi
  tests/setup/pgcluster.sh stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

eval "$(tests/setup/pgcluster.sh start "$PGDIR" 2>/dev/null)"
export PGHOST PGPORT PGUSER PGDATABASE
$PY tests/fixtures/erp/gen_erp.py --employees 300 --absences 700 --assets 120 | psql -X -q -v ON_ERROR_STOP=1 >/dev/null

exec 3< <(exec $PY tests/sandbox/peopleforce.py --port 0 --api-key memcheck-api-key --quiet)
SANDBOX_PID=$!
read -r line <&3
PORT=${line##* }

cat >"$WORK/hrsync.yaml" <<YAML
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
  state_schema: hrsync
timezone: Europe/Paris
connectors:
  peopleforce:
    type: peopleforce
    base_url: "http://127.0.0.1:$PORT/api/public/v3"
    allow_insecure_http: true
    token: { env: MEMCHECK_PF_TOKEN }
    rate_limit: 1000/s
    max_in_flight: 8
    timeout: 60s          # valgrind makes hrsync some 30 times slower
mappings: [ "$ROOT/mappings/peopleforce/*.yaml" ]
YAML

VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
    --show-leak-kinds=definite --num-callers=30 --track-origins=yes)
[ -f "$SUPP" ] && VG+=(--suppressions="$SUPP")

status=0
admin() {  # admin METHOD PATH [JSON]: the sandbox's admin API
  $PY - "$PORT" "$@" <<'PYEOF'
import json, sys, urllib.request
port, method, path = sys.argv[1:4]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(f"http://127.0.0.1:{port}/_sandbox{path}", data=data, method=method,
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=30).read()
PYEOF
}

for n in 1 2 3; do
  case $n in
    1) what="full sync" ;;
    2) what="no-op sync" ;;
    3) what="changes, under faults"
       psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
UPDATE erp.employees SET mobile_phone = '+33 6 12 34 56 78' WHERE personnel_number IN ('000001', '000002', 'FR00001');
UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM'
  WHERE personnel_number IN ('000004', '000005', 'FR00002') AND dismissal_date IS NULL;
UPDATE erp.absences SET status = 'cancelled'
  WHERE absence_id IN (SELECT absence_id FROM erp.absences WHERE status = 'posted' ORDER BY 1 LIMIT 5);
UPDATE erp.absences SET comment = coalesce(comment, '') || ' (corrigé)'
  WHERE absence_id IN (SELECT absence_id FROM erp.absences WHERE status = 'posted' ORDER BY 1 DESC LIMIT 3);
UPDATE erp.assets SET returned_on = '2026-11-21'
  WHERE inventory_number IN (SELECT inventory_number FROM erp.assets WHERE holder IS NOT NULL
                             AND returned_on IS NULL ORDER BY 1 LIMIT 3);
SQL
       admin POST /faults '[{"mode": "500", "method": "GET", "every": 4, "count": 2},
                            {"mode": "commit_then_drop", "method": "PUT", "every": 3, "count": 2},
                            {"mode": "html200", "method": "DELETE", "every": 3, "count": 1},
                            {"mode": "drop", "method": "POST", "every": 3, "count": 2}]' ;;
  esac
  rc=0
  t0=$(date +%s)
  MEMCHECK_PF_TOKEN=memcheck-api-key "${VG[@]}" --log-file="$OUT/valgrind-run$n.log" \
    "$BIN" -c "$WORK/hrsync.yaml" run >"$OUT/run$n.log" 2>&1 || rc=$?
  echo "== memcheck: run $n ($what): exit $rc in $(( $(date +%s) - t0 )) s; hrsync's log: build/memcheck/run$n.log"
  grep -E 'summary|run finished|run stopped' "$OUT/run$n.log" | sed -E 's/^[^ ]+ +//' || true
  grep -E '== +(ERROR SUMMARY|HEAP SUMMARY|in use at exit|total heap usage|All heap blocks|LEAK SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|suppressed:)' \
    "$OUT/valgrind-run$n.log" | sed -E 's/^==[0-9]+== ?/   /'
  if [ $rc = 99 ]; then
    echo "memcheck: run $n: memcheck errors or definite leaks; details in build/memcheck/valgrind-run$n.log:" >&2
    grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source and destination|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' \
      "$OUT/valgrind-run$n.log" | head -120 >&2
    status=1
  elif [ $rc != 1 ]; then
    echo "memcheck: run $n: hrsync exited $rc (a sync of the demo data exits 1: its planted bad rows)" >&2
    tail -20 "$OUT/run$n.log" >&2
    status=1
  fi
done
if [ $status = 0 ]; then echo "memcheck: no memcheck error, no definite leak"; fi
exit $status
