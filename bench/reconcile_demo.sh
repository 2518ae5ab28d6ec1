#!/usr/bin/env bash
# `hrsync reconcile` on the demo data (issue 15), PeopleForce part: the demo mirror (2,000
# employees, 5,000 absences, 800 assets) synced to the PeopleForce sandbox, then a reconcile
# (nothing found; the requests it costs, all of them and for the employees alone), five edits
# by hand on the platform (a changed last name and phone, a deleted employee, the same person
# typed in twice, a new hire created by hand before the nightly run, a trainee the ERP does not
# know), the reconcile table, `reconcile --repair`, and a last reconcile that lists only the
# duplicate and the trainee. Prints each command's output and the requests the sandbox saw.
#
#   bench/reconcile_demo.sh        (make all first; about two minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD; BIN=${HRSYNC_BIN:-$ROOT/build/hrsync}; PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/hrsync-reconcile.XXXXXX); chmod 755 "$WORK"
PGDIR=$WORK/pg; SBPID=
cleanup() {
  [ -n "$SBPID" ] && kill "$SBPID" 2>/dev/null || true
  tests/setup/pgcluster.sh stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
eval "$(tests/setup/pgcluster.sh start "$PGDIR")"
export PGHOST PGPORT PGUSER PGDATABASE
$PY tests/fixtures/erp/gen_erp.py --employees 2000 --absences 5000 --assets 800 --manifest "$WORK/manifest.json" | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
exec 3< <($PY tests/sandbox/peopleforce.py --port 0 --api-key demo-api-key --rate 24000/60 --quiet)
SBPID=$!
read -r line <&3; PORT=${line##* }
cat > $WORK/hrsync.yaml <<YAML
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=$PGUSER"
  state_schema: hrsync
timezone: Europe/Paris
connectors:
  peopleforce:
    type: peopleforce
    base_url: "http://127.0.0.1:$PORT/api/public/v3"
    allow_insecure_http: true
    token: { env: PFTOKEN }
    rate_limit: 350/s
    max_in_flight: 8
    timeout: 10s
mappings: [ $ROOT/mappings/peopleforce/*.yaml ]
metrics: { textfile: $WORK/hrsync.prom }
YAML
export PFTOKEN=demo-api-key
H="$BIN -c $WORK/hrsync.yaml"
stat() { curl -s "http://127.0.0.1:$PORT/_sandbox/stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
$H run > $WORK/run1.log 2>&1 || echo "run1 exit $?"
grep summary $WORK/run1.log | sed -E 's/^[^ ]+ +//'
echo "== reconcile right after the first run"
b=$(stat); $H reconcile > $WORK/rc0.out 2> $WORK/rc0.err; echo "exit $?"; a=$(stat)
cat $WORK/rc0.out; echo "sandbox saw $((a-b)) requests"
echo "== reconcile of employees only"
b=$(stat); $H reconcile --mapping employees > $WORK/rc0e.out 2>/dev/null || true; a=$(stat)
tail -4 $WORK/rc0e.out; echo "sandbox saw $((a-b)) requests"
echo "== hand edits"
$PY - "$PORT" <<'PY'
import json, subprocess, sys, urllib.request
port = sys.argv[1]
base = f"http://127.0.0.1:{port}"
def call(method, url, body=None, api=False):
    h = {"Content-Type": "application/json"}
    if api: h["X-API-KEY"] = "demo-api-key"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method, headers=h)
    return json.loads(urllib.request.urlopen(req).read() or b"null")
def q(sql):
    return subprocess.run(["psql", "-X", "-At", "-F", "|", "-c", sql], capture_output=True, text=True).stdout.split("\n")
links = [l.split("|") for l in q("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping='employees' AND status='active' AND payload IS NOT NULL ORDER BY erp_key LIMIT 40") if l]
d, g, dup, like = links[4], links[9], links[14], links[20]
call("PUT", f"{base}/api/public/v3/employees/{d[1]}", {"last_name": "Petrova-Hand", "mobile_number": "+33 6 99 99 99 99"}, api=True)
call("DELETE", f"{base}/_sandbox/employees/{g[1]}")
call("POST", f"{base}/_sandbox/employees", {"first_name": "Ivan", "last_name": "Doublon", "employee_number": dup[0], "email": "ivan.doublon@example.com"})
cols = [c for c in q("SELECT column_name FROM information_schema.columns WHERE table_schema='erp' AND table_name='employees' ORDER BY ordinal_position") if c and c not in ("personnel_number", "email")]
subprocess.run(["psql", "-X", "-q", "-c", f"INSERT INTO erp.employees (personnel_number, email, {', '.join(cols)}) SELECT '009001', 'new.hire@example.com', {', '.join(cols)} FROM erp.employees WHERE personnel_number = '{like[0]}'"], check=True)
call("POST", f"{base}/api/public/v3/employees", {"first_name": "Nouvelle", "last_name": "Recrue", "employee_number": "009001", "email": "new.hire@example.com"}, api=True)
call("POST", f"{base}/api/public/v3/employees", {"first_name": "Stagiaire", "last_name": "Inconnu", "employee_number": "STAGE-7", "email": "stagiaire@example.com"}, api=True)
print("edited", d[0], "deleted", g[0], "duplicated", dup[0], "new hire 009001 created by hand, stray STAGE-7")
PY
echo "== reconcile after the hand edits"
b=$(stat); $H reconcile > $WORK/rc1.out 2> $WORK/rc1.err || echo "exit $?"; a=$(stat)
cat $WORK/rc1.out; echo "sandbox saw $((a-b)) requests"
echo "== reconcile --repair"
b=$(stat); $H reconcile --repair > $WORK/rc2.out 2> $WORK/rc2.err || echo "exit $?"; a=$(stat)
cat $WORK/rc2.out; grep -E "summary|reconcile|adopt" $WORK/rc2.err | sed -E 's/^[^ ]+ +//' | head -20; echo "sandbox saw $((a-b)) requests"
echo "== reconcile again"
$H reconcile > $WORK/rc3.out 2>/dev/null || echo "exit $?"
cat $WORK/rc3.out
grep drift $WORK/hrsync.prom
$H status --runs 3 | head -12
