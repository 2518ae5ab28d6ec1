# Sourced by tests/demo.sh (make demo), before its first run: the Workelo part of the demo.
# Loads the organisation tree and the journeys (tests/fixtures/erp/gen_workelo.py), starts the
# Workelo sandbox at a scaled limit (Workelo allows 1,000 requests an hour; the sandbox 1,000
# every 5 s, so that the demo stays short), shows what `plan` says a first load costs, and runs
# a first load in a 4-second window (`run --until +4s`): the demo's first run then picks up the
# rest. Uses demo.sh's $PY, $BIN, $CONFIG, $OUT, say and cleanup.

say "Workelo: the organisation tree and the journeys of the mirror (gen_workelo.py)"
$PY tests/fixtures/erp/gen_workelo.py | psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1
psql -X -At -c "SELECT 'units:     ' || count(*) FROM erp.org_units UNION ALL
                SELECT 'journeys:  ' || count(*) FROM erp.journeys"
exec 5< <($PY tests/sandbox/workelo.py --port 0 --api-key demo-workelo-secret --client-id demo-workelo --quiet)
WORKELO_PID=$!
read -r line <&5
WPORT=${line##* }
curl -s -X POST -H 'Content-Type: application/json' -d '{"hourly": "1000/5"}' \
  "http://127.0.0.1:$WPORT/_sandbox/config" >/dev/null
trap 'kill "$WORKELO_PID" 2>/dev/null && wait "$WORKELO_PID" 2>/dev/null; cleanup' EXIT INT TERM
echo "Workelo sandbox on http://127.0.0.1:$WPORT/v1 (limit: 1,000 requests every 5 s, Workelo's hour scaled down)"
export HRSYNC_DEMO_WORKELO_URL="http://127.0.0.1:$WPORT/v1"
export HRSYNC_DEMO_WORKELO_TOKEN_URL="http://127.0.0.1:$WPORT/oauth/token"
export HRSYNC_DEMO_WORKELO_CLIENT_ID=demo-workelo
export HRSYNC_DEMO_WORKELO_SECRET=demo-workelo-secret
WK_MAPS=(--mapping workelo_units --mapping workelo_employees --mapping workelo_tracks)

say "Workelo: what a first load sends, and how long it takes (hrsync plan)"
wk_plan=$("$BIN" -c "$CONFIG" -q plan "${WK_MAPS[@]}" 2>/dev/null || true)
printf '%s\n' "$wk_plan" | grep -E '^(totals|connector workelo)' || true
wk_req=$(printf '%s\n' "$wk_plan" | sed -nE 's/^connector workelo: about ([0-9]+) request.*/\1/p')
[ -n "$wk_req" ] && awk -v n="$wk_req" 'BEGIN { printf "at Workelo'\''s real 1,000 requests an hour: about %.1f hours\n", n / 1000 }'

say "Workelo: a first load in a 4-second window (run --until +4s); the first run below picks up the rest"
wk_rc=0
"$BIN" -c "$CONFIG" --log-format text run "${WK_MAPS[@]}" --until +4s >"$OUT/workelo-window.log" 2>&1 || wk_rc=$?
grep -E 'summary|run stopped by its window' "$OUT/workelo-window.log" | sed -E 's/^[^ ]+ +//' || true
echo "exit status $wk_rc (1: records left for the next run), log: build/demo/workelo-window.log"
