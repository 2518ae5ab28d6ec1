"""Issue #7: the Personio connector, end to end — the real binary, real PostgreSQL (the demo
mirror), the Personio sandbox (tests/sandbox/personio.py), which refuses any request its
OpenAPI rules do not allow. What every connector must do (killed runs, lost answers,
retries, the night after, dry runs, secrets) is in test_contract.py."""
import collections
import os
import threading

from world_personio import CLIENT_SECRET, MAPS

PUSH = [os.path.join(MAPS, "employees.yaml"), os.path.join(MAPS, "absences.yaml")]


def failures(world, mapping):
    return {k: (kind, field, reason) for k, kind, field, reason in world.sql(
        "SELECT erp_key, kind, field, reason FROM hrsync.failures WHERE mapping = %s", (mapping,))}


def test_full_sync_creates_every_valid_record_once_and_lists_the_others(pworld):
    r = pworld.run("-v", "run", check_rc=1)           # planted bad rows fail: exit 1
    exp = pworld.assert_end_state()
    emp = r.summary("personio_employees")
    # An unknown department: Personio creates the person without it, and hrsync lists it as refused.
    assert emp["created"] == len(exp["employees"]) - len(exp["unknown_department"]), emp
    assert emp["terminated"] == len(exp["dismissed"])
    ab = r.summary("personio_absences")
    assert ab["created"] == len(exp["absences"]), ab

    # Every record that is not on Personio, or not as the ERP has it, is listed with its reason.
    m = pworld.manifest
    fe = failures(pworld, "personio_employees")
    for k in exp["map_errors"]:
        assert fe[k][0] == "mapping", (k, fe[k])
    assert fe[exp["dup_loser"]][0] == "refused" and "email" in fe[exp["dup_loser"]][2]
    for k in exp["unknown_department"]:
        assert fe[k][0] == "refused" and "does not exist in Personio" in fe[k][2], fe[k]
    assert set(fe) == exp["map_errors"] | {exp["dup_loser"]} | exp["unknown_department"], set(fe)
    fa = failures(pworld, "personio_absences")
    for b in m["bad"]:
        if b["table"] != "absences":
            continue
        kind, field, reason = fa[b["key"]]
        if b["kind"] == "unknown_leave_type":
            assert (kind, field) == ("mapping", "time_off_type_id"), fa[b["key"]]
        elif b["kind"] == "platform_refuses":
            assert kind == "refused" and "422" in reason and "end date" in reason, fa[b["key"]]
        else:
            assert kind == "deferred", fa[b["key"]]
    assert {k for k, v in fa.items() if v[0] not in ("mapping", "refused", "deferred")} == set()

    # Secrets: never in a log line (debug level here), never in a URL.
    reqs = pworld.sandbox.requests()
    assert CLIENT_SECRET not in r.err and "papi-" not in r.err and "Bearer" not in r.err
    assert not [x for x in reqs if CLIENT_SECRET in x["query"] or "papi-" in x["query"]]
    # One token for the whole run: reused, not asked for per request.
    assert sum(1 for x in reqs if x["path"] == "/v2/auth/token") == 1
    # Time-offs and absence periods went out as forms, as their OpenAPI entries document.
    assert {x["status"] for x in reqs if x["method"] == "POST" and x["path"].startswith("/v1/company/")
            and x["path"] != "/v1/company/employees"} <= {200, 201, 422}



def test_changes_update_terminate_and_replace_exactly_what_changed(pworld):
    pworld.mappings = PUSH
    pworld.write_config()
    pworld.run("run", check_rc=1)
    exp = pworld.expected()
    active = sorted(exp["employees"] - exp["dismissed"] - exp["unknown_department"])
    changed, leaver = active[:5], active[-1]
    pworld.sql("UPDATE erp.employees SET job_title = 'Стажёр ' || personnel_number WHERE personnel_number = ANY(%s)",
               (changed,))
    pworld.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
               "WHERE personnel_number = %s", (leaver,))
    day = sorted(k for k, kind in pworld.sql("SELECT absence_id, kind_code FROM erp.absences WHERE absence_id = ANY(%s)",
                                             (sorted(exp["absences"]),)) if kind not in ("К", "RTT"))
    hour = sorted(k for k, kind in pworld.sql("SELECT absence_id, kind_code FROM erp.absences WHERE absence_id = ANY(%s)",
                                              (sorted(exp["absences"]),)) if kind in ("К", "RTT"))
    pworld.sql("UPDATE erp.absences SET status = 'cancelled' WHERE absence_id IN (%s, %s)", (day[0], hour[0]))
    pworld.sql("UPDATE erp.absences SET date_to = date_to + 1, hours_per_day = NULL WHERE absence_id IN (%s, %s)",
               (day[1], hour[1]))

    seq = pworld.sandbox.last_seq()
    r = pworld.run("run", check_rc=1)
    emp = r.summary("personio_employees")
    assert (emp["created"], emp["updated"], emp["terminated"]) == (0, 5, 1), emp
    ab = r.summary("personio_absences")
    assert (ab["created"], ab["updated"], ab["terminated"]) == (0, 2, 2), ab
    w = pworld.writes(pworld.sandbox.requests(since=seq))
    kinds = collections.Counter((x["method"], "/".join(x["path"].split("/")[:4])) for x in w)
    assert kinds == {("PATCH", "/v1/company/employees"): 6, ("DELETE", "/v1/company/time-offs"): 2,
                     ("DELETE", "/v1/company/absence-periods"): 2, ("POST", "/v1/company/time-offs"): 1,
                     ("POST", "/v1/company/absence-periods"): 1}, kinds
    leave = [x["body"] for x in w if x["method"] == "PATCH" and x["body"]["employee"].get("status") == "inactive"]
    assert leave == [{"employee": {"status": "inactive"}}]
    store = pworld.sandbox.store()
    by_key = {e["custom_attributes"]["dynamic_1001"]: e for e in store["employees"]}
    assert all(by_key[k]["position"] == "Стажёр " + k for k in changed)
    assert by_key[leaver]["status"] == "inactive"
    pworld.assert_end_state()
    seq = pworld.sandbox.last_seq()
    pworld.run("run", check_rc=1)
    assert pworld.writes(pworld.sandbox.requests(since=seq)) == []


def test_an_email_changed_in_the_erp_is_refused_not_duplicated(pworld):
    pworld.mappings = PUSH[:1]
    pworld.write_config()
    pworld.run("run", check_rc=1)
    exp = pworld.expected()
    k = sorted(exp["employees"] - exp["dismissed"] - exp["unknown_department"])[3]
    old = pworld.sql("SELECT email FROM erp.employees WHERE personnel_number = %s", (k,))[0][0]
    pworld.sql("UPDATE erp.employees SET email = 'new.' || email WHERE personnel_number = %s", (k,))
    before = len(pworld.sandbox.store()["employees"])
    r = pworld.run("run", check_rc=1)
    kind, _, reason = failures(pworld, "personio_employees")[k]
    assert kind == "refused" and "cannot change an email" in reason and f"hrsync retry personio_employees {k}" in reason
    store = pworld.sandbox.store()
    assert len(store["employees"]) == before
    (e,) = [e for e in store["employees"] if e["custom_attributes"]["dynamic_1001"] == k]
    assert e["email"] == old.strip().lower()
    assert "new." not in r.err  # no email in a log line
    # HR changes it in Personio by hand; `hrsync retry` lets the record through.
    pworld.sandbox.call("POST", f"/employees/{e['id']}", {"email": "new." + e["email"]})
    pworld.run("retry", "personio_employees", k, check_rc=0)
    pworld.run("run", check_rc=1)
    assert k not in failures(pworld, "personio_employees")
    assert len(pworld.sandbox.store()["employees"]) == before


def test_token_expiry_mid_run_is_renewed_without_losing_a_record(pworld):
    # Tokens live 2 s (renewed ahead of time), and every live token is also expired by hand
    # every 1.5 s (renewed on the 401); answers take 20 ms so that the run outlives several (at 4 ms
    # a fast machine ran it in 3 s: two tokens).
    pworld.mappings = PUSH
    pworld.write_config()
    pworld.sandbox.config(token_ttl=2, delay_ms=20)
    stop = threading.Event()

    def expire():
        while not stop.wait(1.5):
            pworld.sandbox.call("POST", "/tokens/expire")
    t = threading.Thread(target=expire)
    t.start()
    try:
        r = pworld.run("run", check_rc=1)
    finally:
        stop.set()
        t.join()
    tok = pworld.sandbox.store()["tokens"]
    assert tok["issued"] >= 3 and tok["rejected_expired"] > 0, (r.seconds, tok)
    assert "renewed" in r.err
    bad = [v for m in ("personio_employees", "personio_absences") for v in failures(pworld, m).values()
           if v[0] == "transient" or "credentials" in (v[2] or "")]
    assert bad == []
    pworld.assert_end_state()


ATTENDANCE = """
name: attendances
connector: personio
entity: attendances
depends_on: [personio_employees]
source:
  table: erp.timesheets
  key: entry_id
terminate:
  when: "status = 'cancelled'"
fields:
  person_id: { ref: "erp:{personnel_number}" }
  type:      { value: WORK }
  start:     { template: "{work_date}T{time_in}" }
  end:       { template: "{work_date}T{time_out}" }
  comment:   { from: note }
"""


def test_attendances_go_to_v2_attendance_periods(pworld, tmp_path):
    # The demo ERP has no time sheets: a small table of the test's own.
    pworld.sql("CREATE TABLE erp.timesheets (entry_id text PRIMARY KEY, personnel_number text, work_date date, "
               "time_in text, time_out text, note text, status text NOT NULL DEFAULT 'posted')")
    people = [k for (k,) in pworld.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NULL "
                                       "AND personnel_number IN ('000001', '000002', '000003', 'FR00001', 'FR00002') ")]
    rows = [(f"T-{p}-{d}", p, f"2026-11-{d:02d}", "09:00:00", "17:30:00", "pointage" if d == 3 else None)
            for p in people for d in (2, 3, 4)]
    for r in rows:
        pworld.sql("INSERT INTO erp.timesheets (entry_id, personnel_number, work_date, time_in, time_out, note) "
                   "VALUES (%s, %s, %s, %s, %s, %s)", r)
    f = tmp_path / "attendances.yaml"
    f.write_text(ATTENDANCE)
    pworld.mappings = PUSH[:1] + [str(f)]
    pworld.write_config()
    r = pworld.run("run", check_rc=1)
    assert r.summary("attendances")["created"] == len(rows)
    atts = pworld.sandbox.store()["attendance_periods"]
    assert len(atts) == len(rows)
    assert {(a["start"]["date_time"], a["end"]["date_time"]) for a in atts} == {
        (f"{d}T09:00:00", f"{d}T17:30:00") for d in ("2026-11-02", "2026-11-03", "2026-11-04")}
    seq = pworld.sandbox.last_seq()
    pworld.run("run", check_rc=1)
    assert pworld.writes(pworld.sandbox.requests(since=seq)) == []
    # A corrected time is a PATCH of the same period; a cancelled entry deletes its period.
    pworld.sql("UPDATE erp.timesheets SET time_out = '16:00:00' WHERE entry_id = %s", (rows[0][0],))
    pworld.sql("UPDATE erp.timesheets SET status = 'cancelled' WHERE entry_id = %s", (rows[1][0],))
    seq = pworld.sandbox.last_seq()
    r = pworld.run("run", "--force", check_rc=1)   # 1 of 12: past the mass-change guard's 5%
    s = r.summary("attendances")
    assert (s["created"], s["updated"], s["terminated"]) == (0, 1, 1), s
    w = collections.Counter((x["method"], x["path"].split("/")[2]) for x in pworld.writes(pworld.sandbox.requests(since=seq)))
    assert w == {("PATCH", "attendance-periods"): 1, ("DELETE", "attendance-periods"): 1}, w
    atts = {a["id"]: a for a in pworld.sandbox.store()["attendance_periods"]}
    assert len(atts) == len(rows) - 1
    pid = pworld.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'attendances' AND erp_key = %s",
                     (rows[0][0],))[0][0]
    assert atts[pid]["end"]["date_time"].endswith("T16:00:00")
    # A period Personio refuses (an overlap: 409) is listed with Personio's v2 message.
    pworld.sql("INSERT INTO erp.timesheets (entry_id, personnel_number, work_date, time_in, time_out) "
               "VALUES ('T-overlap', %s, '2026-11-04', '12:00:00', '13:00:00')", (people[0],))
    pworld.run("run", check_rc=1)
    kind, _, reason = failures(pworld, "attendances")["T-overlap"]
    assert kind == "refused" and "409" in reason and "overlaps" in reason, reason


def _inbound(world):
    return {r[0]: r[1:] for r in world.sql(
        "SELECT platform_id, personnel_number, kind_code, date_from::text, date_to::text, status, deleted "
        "FROM erp_inbound.absences WHERE platform = 'personio'")}


def test_pull_approved_absences_once_and_follow_them(pworld):
    pworld.run("run", check_rc=1)
    assert _inbound(pworld) == {}   # what hrsync pushed is not pulled back
    store = pworld.sandbox.store()
    emps = sorted((e["custom_attributes"]["dynamic_1001"], e["id"]) for e in store["employees"]
                  if e["status"] == "active")
    (k1, e1), (k2, e2), (k3, e3) = emps[:3]
    sb = pworld.sandbox

    def ask(path, **body):
        return sb.call("POST", path, dict(body, comment="asked in the web UI"))["data"]["attributes"]["id"]
    a = ask("/time-offs", employee_id=e1, time_off_type_id=9001, start_date="2026-12-21", end_date="2026-12-24",
            half_day_start=False, half_day_end=False, status="approved")
    b = ask("/absence-periods", employee_id=e2, time_off_type_id=9004, start_date="2026-12-14",
            end_date="2026-12-16", status="approved")
    c = ask("/time-offs", employee_id=e3, time_off_type_id=9003, start_date="2026-12-01", end_date="2026-12-02",
            half_day_start=False, half_day_end=False, status="pending")
    parked = ask("/absence-periods", employee_id=e3, time_off_type_id=9021, start_date="2026-12-07",
                 end_date="2026-12-07", start_time="09:00", end_time="12:00", status="approved")

    r = pworld.run("run", check_rc=1)
    assert r.summary("personio_absences_inbound")["created"] == 1
    s = r.summary("personio_absence_periods_inbound")
    assert (s["created"], s["failed"]) == (1, 1), s
    got = _inbound(pworld)
    assert got == {str(a): (k1, "ОТ", "2026-12-21", "2026-12-24", "approved", False),
                   str(b): (k2, "К", "2026-12-14", "2026-12-16", "approved", False)}, got
    fail = failures(pworld, "personio_absence_periods_inbound")
    assert fail[parked][:2] == ("mapping", "kind_code") and "9021" in fail[parked][2], fail

    r = pworld.run("run", check_rc=1)
    for name in ("personio_absences_inbound", "personio_absence_periods_inbound"):
        s = r.summary(name)
        assert (s["created"], s["updated"], s["terminated"]) == (0, 0, 0), (name, s)
    assert _inbound(pworld) == got

    # Rejected afterwards: the row keeps its place with the new status; the pending one, approved, arrives.
    sb.call("POST", f"/time-offs/{a}/status", {"status": "rejected"})
    sb.call("POST", f"/time-offs/{c}/status", {"status": "approved"})
    r = pworld.run("run", check_rc=1)
    s = r.summary("personio_absences_inbound")
    assert (s["created"], s["updated"]) == (1, 1), s
    got = _inbound(pworld)
    assert got[str(a)][4] == "rejected" and got[str(c)] == (k3, "Б", "2026-12-01", "2026-12-02", "approved", False)

    # Deleted in Personio: seen at the next full listing (forced here).
    status, _ = sb.api("DELETE", f"/v1/company/absence-periods/{b}")
    assert status == 200
    pworld.sql("UPDATE hrsync.pull_cursors SET last_full = now() - interval '2 days'")
    r = pworld.run("run", check_rc=1)
    assert r.summary("personio_absence_periods_inbound")["terminated"] == 1
    assert _inbound(pworld)[str(b)][5] is True
