"""Issue #13: the Workelo connector, end to end — the real binary, real PostgreSQL (the demo
mirror and its Workelo part, tests/fixtures/erp/gen_workelo.py), the Workelo sandbox
(tests/sandbox/workelo.py), strict to hrsync's wire contract. What every connector must do
(killed runs, lost answers, retries, the night after, dry runs, secrets) is in test_contract.py."""
import collections
import json
import os
import re
import socket
import time

import pytest

from checks import kill_when
from world_workelo import ARCHIVED, CLIENT_SECRET


def failures(world, mapping):
    return {k: (kind, field, reason) for k, kind, field, reason in world.sql(
        "SELECT erp_key, kind, field, reason FROM hrsync.failures WHERE mapping = %s", (mapping,))}


def test_full_sync_creates_every_valid_record_once_and_lists_the_others(wworld):
    w = wworld
    r = w.run("-v", "run", check_rc=1)
    exp = w.assert_consistent()
    reqs = w.sandbox.requests()
    # Never a DELETE of an employee: it would wipe the journeys' data.
    assert not [x for x in reqs if x["method"] == "DELETE"]
    # Units: parents first, in one run, although every child's code sorts before its parent's.
    units = r.summary("workelo_units")
    assert units["created"] == len(exp["units"]) and units["deferred"] == 0 and units["failed"] == 0, units
    posted = [x["body"]["external_id"] for x in reqs if x["method"] == "POST" and x["path"] == "/unit_organizations"]
    assert posted.index("G") < min(posted.index(c) for c in posted if c.startswith("C-"))
    assert max(posted.index(c) for c in posted if c.startswith("C-")) < min(
        posted.index(c) for c in posted if c.startswith("D-"))
    assert not [x for x in reqs if x["path"] == "/unit_organizations" and x["status"] == 422]
    emp = r.summary("workelo_employees")
    assert emp["created"] == len(exp["employees"]) and emp["terminated"] == len(exp["dismissed"]), emp
    # The refused: Workelo's own rule (a unit of the lowest level) and its unique e-mail, with its message.
    fe = failures(w, "workelo_employees")
    assert exp["not_lowest"], "the mirror plants no employee on a unit above the lowest level"
    for k in exp["not_lowest"] - exp["map_errors"]:
        kind, _f, reason = fe[k]
        assert kind == "refused" and "must be a unit of the lowest level" in reason, fe[k]
    assert fe[exp["dup_loser"]][0] == "refused" and "email: has already been taken" in fe[exp["dup_loser"]][2]
    for k in exp["map_errors"]:
        assert fe[k][0] == "mapping", fe[k]
    # Journeys: a draft, then started (two requests, one record); those whose people are not on
    # Workelo wait, deferred, naming whom they wait for.
    tr = r.summary("workelo_tracks")
    assert tr["created"] == len(exp["tracks"]), tr
    posts = [x for x in reqs if x["method"] == "POST" and x["path"] == "/tracks"]
    starts = [x for x in reqs if x["method"] == "PUT" and re.fullmatch(r"/tracks/\d+/start", x["path"])]
    assert len(posts) == len(starts) == len(exp["tracks"])
    ft = failures(w, "workelo_tracks")
    assert ft and all(v[0] == "deferred" and "workelo_employees record" in v[2] for v in ft.values()), ft
    assert CLIENT_SECRET not in r.err and "wk_" not in "".join(x["query"] for x in reqs)
    # One token for the whole run.
    assert sum(1 for x in reqs if x["path"] == "/oauth/token") == 1


def test_no_change_run_sends_only_its_lookups(wworld):
    """The night after: every row hashes as when Workelo took it, so nothing is sent; what is
    read is the token, each lookup list once, one look per reference to a person who is not on
    Workelo (HR may have created them by hand), and the pull's pages."""
    w = wworld
    w.run("run", check_rc=1)
    seq = w.sandbox.last_seq()
    r = w.run("run", check_rc=1)
    after = w.sandbox.requests(since=seq)
    assert w.writes(after) == []
    paths = collections.Counter(x["path"] for x in after)
    waited_for = {re.search(r"record '([^']+)'", reason).group(1) for (reason,) in w.sql(
        "SELECT reason FROM hrsync.failures WHERE mapping = 'workelo_tracks' AND kind = 'deferred'")}
    assert paths.pop("/employees") == len(waited_for), after
    pull_pages = paths.pop("/tracks")
    assert paths == {"/oauth/token": 1, "/level_organizations": 1, "/user_roles": 1, "/templates": 1}, paths
    assert pull_pages == 2  # 113 journeys changed within the pull's hour of look-back: 2 pages of 100
    assert sum(r.summary(m)["requests"] for m in w.push_mappings) == 4 + len(waited_for)  # the token too


def test_a_run_killed_between_draft_and_start_starts_the_draft_next_time(wworld):
    """A journey is two requests (POST: a draft; PUT .../start) and one record for hrsync. Killed
    between the two, the next run finds the draft for that employee and mobility and starts it:
    never a second journey."""
    w = wworld
    w.run("run", "--mapping", "workelo_units", "--mapping", "workelo_employees", check_rc=1)
    seen = {"posts": 0}

    def drafts_made(start):
        new = w.sandbox.requests(since=start)
        seen["posts"] = sum(1 for x in new if x["method"] == "POST" and x["path"] == "/tracks" and x["status"] == 201)
        return seen["posts"] >= 5
    # Every start is lost on the way (the connection drops before Workelo acts): drafts pile up.
    with w.sandbox.faulted({"mode": "drop", "method": "PUT", "path": r"^/tracks/\d+/start$"}):
        kill_when(w, drafts_made, "5 drafts", poll=0.01)
    drafts = [t for t in w.sandbox.store()["tracks"] if t["status"] == "draft"]
    assert len(drafts) >= 5, drafts
    assert w.sql("SELECT count(*) FROM hrsync.links WHERE mapping = 'workelo_tracks'") == [(0,)]
    r = w.run("run", check_rc=1)
    assert len(re.findall(r"journey already on Workelo as draft \d+", r.err)) == len(drafts), r.err[-3000:]
    w.assert_consistent()
    store = w.sandbox.store()
    assert {t["id"] for t in store["tracks"]} >= {t["id"] for t in drafts}
    assert not [t for t in store["tracks"] if t["status"] == "draft"]


def test_units_parents_first_a_failed_parent_defers_and_a_cycle_is_named(wworld):
    """Parents before children in one run, whatever the order of the rows; a unit whose parent
    failed waits for it (deferred); a reference cycle cannot be created in any order: each of
    its records fails, naming the cycle, and nothing of it is sent."""
    w = wworld
    w.sql("INSERT INTO erp.org_units (code, parent_code, name, level_name) VALUES "
          "('A-BAD', 'G', 'Unknown level', 'Nowhere'), ('A-CHILD', 'A-BAD', 'Child of a bad unit', 'Region'), "
          "('A-X1', 'A-X2', 'Cycle one', 'Establishment'), ('A-X2', 'A-X1', 'Cycle two', 'Region')")
    # `plan` shows each unit once, as the run will treat it: parents planned first, so their
    # children are creates; the child of a failing unit waits; the cycle fails.
    plan = json.loads(w.run("-q", "plan", "--mapping", "workelo_units", "--format", "json", check_rc=1).out)
    acts = collections.Counter(r["key"] for r in plan["records"])
    assert max(acts.values()) == 1, acts
    by_key = {r["key"]: r["action"] for r in plan["records"]}
    assert (by_key["A-BAD"], by_key["A-CHILD"], by_key["A-X1"], by_key["A-X2"]) == ("fail", "defer", "fail", "fail")
    assert plan["totals"]["create"] == len(w.sql("SELECT code FROM erp.org_units")) - 4, plan["totals"]
    assert plan["totals"]["defer"] == 1 and plan["totals"]["fail"] == 3
    # `check --online` reads the source and names the cycle before any run.
    c = w.run("check", "--online")
    assert c.rc == 2 and re.search(r"units\.yaml:\d+:\d+: .*field 'parent_id': reference cycle in the source of mapping "
                                   r"workelo_units: A-X(1|2) -> A-X(2|1) -> A-X\1", c.err), c.err[-2000:]
    assert "A-CHILD" not in c.err and "A-BAD ->" not in c.err
    r = w.run("run", "--mapping", "workelo_units", check_rc=1)
    f = failures(w, "workelo_units")
    assert f["A-BAD"][0] == "mapping" and "Nowhere" in f["A-BAD"][2], f["A-BAD"]
    assert f["A-CHILD"][0] == "deferred" and "'A-BAD' is not on the platform yet" in f["A-CHILD"][2], f["A-CHILD"]
    for k in ("A-X1", "A-X2"):
        kind, _field, reason = f[k]
        assert kind == "mapping" and "reference cycle" in reason and "A-X1" in reason and "A-X2" in reason, f[k]
    s = r.summary("workelo_units")
    assert (s["failed"], s["deferred"]) == (3, 1), s
    sent = {x["body"]["external_id"] for x in w.sandbox.requests() if x["method"] == "POST"
            and x["path"] == "/unit_organizations"}
    assert not sent & {"A-BAD", "A-CHILD", "A-X1", "A-X2"}
    assert len(sent) == len(w.sql("SELECT code FROM erp.org_units")) - 4
    # The ERP fixed: the cycle broken, the bad level corrected; the next run sends them, parents first.
    w.sql("UPDATE erp.org_units SET parent_code = 'G' WHERE code = 'A-X2'")
    w.sql("UPDATE erp.org_units SET level_name = 'Region', parent_code = 'G' WHERE code = 'A-BAD'")
    w.sql("UPDATE erp.org_units SET level_name = 'Establishment' WHERE code IN ('A-CHILD')")
    seq = w.sandbox.last_seq()
    r = w.run("run", "--mapping", "workelo_units", check_rc=0)
    posted = [x["body"]["external_id"] for x in w.sandbox.requests(since=seq) if x["method"] == "POST"
              and x["path"] == "/unit_organizations"]
    assert sorted(posted) == ["A-BAD", "A-CHILD", "A-X1", "A-X2"] and posted.index("A-BAD") < posted.index("A-CHILD") \
        and posted.index("A-X2") < posted.index("A-X1"), posted
    assert failures(w, "workelo_units") == {}
    assert "reference cycle" not in w.run("check", "--online").err


@pytest.mark.parametrize("style", ["workelo", "teamtailor"])
def test_pacing_follows_the_rate_headers_of_a_shared_token(wworld, style):
    """The token is shared: another client spent most of the window before the run. hrsync is
    configured faster than the platform allows; the answers' rate headers (X-RateLimit-* with
    Reset in epoch seconds, or Teamtailor's X-Rate-Limit-* with seconds left) tell it what is
    left, and it paces to that: the work gets done without a single 429."""
    w = wworld
    w.write_config(rate="50/s")
    w.sandbox.config(hourly="20/2", rate_headers=style)
    w.sandbox.call("POST", "/consume", {"n": 15})
    r = w.run("-v", "run", "--mapping", "workelo_units", check_rc=0)
    reqs = w.sandbox.requests()
    assert [x for x in reqs if x["status"] == 429] == [], "throttled"
    assert r.summary("workelo_units")["created"] == len(w.sql("SELECT code FROM erp.org_units"))
    assert re.search(r"the platform says \d+ requests are left for \d+ s: pacing at", r.err), r.err[-2000:]
    # Without the headers, the same run meets the limit.
    w.run("run", "--mapping", "workelo_units", check_rc=0)
    w.sandbox.reset()
    w.sql("DROP SCHEMA hrsync CASCADE")
    w.sandbox.config(hourly="20/2", rate_headers="none", retry_after=True)
    w.sandbox.call("POST", "/consume", {"n": 15})
    w.run("run", "--mapping", "workelo_units", check_rc=0)
    assert [x for x in w.sandbox.requests() if x["status"] == 429], "no 429 without the headers: the test proves nothing"


def normalized(store):
    """The platform's records as the ERP knows them: ids replaced by external ids, so two
    syncs of the same mirror compare equal whatever order the platform numbered them in."""
    ext_unit = {u["id"]: u["external_id"] for u in store["unit_organizations"]}
    ext_emp = {e["id"]: e["external_id"] for e in store["employees"]}
    units = sorted((u["external_id"], u["name"], u["level_organization_id"], ext_unit.get(u["parent_id"]))
                   for u in store["unit_organizations"])
    emps = sorted((e["external_id"], e["email"], e["first_name"], e["last_name"], e["job_position"],
                   ext_unit[e["unit_organization_id"]], e["user_role_id"],
                   tuple(sorted((i["identification_resource_id"], i["value"]) for i in e["identifications"])))
                  for e in store["employees"])
    tracks = sorted((ext_emp[t["employee_id"]], t["mobility"], t["status"], t["start_date"], t["end_date"],
                     tuple(sorted((k, ext_emp.get(v)) for k, v in t["implications"].items())), tuple(t["template_ids"]))
                    for t in store["tracks"])
    return units, emps, tracks


def test_a_run_stopped_by_its_window_resumes_to_the_same_platform_as_one_run(wworld, tmp_path):
    """`run --until`: at the window's end nothing new is sent, what is in flight finishes and is
    recorded, the run exits 1 saying how many records are left; meanwhile its progress shows in
    `hrsync status` and systemd's STATUS=. The next run picks up the rest, and Workelo ends as
    after one uninterrupted run."""
    w = wworld
    w.write_config(rate="40/s")
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    p = w.start("run", "--until", "+13s", env=dict(w.env(), NOTIFY_SOCKET=sock_path))
    statuses, shown = [], []
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 60:
        try:
            statuses.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        if statuses and not shown:
            shown.append(w.run("status").out)
    p.wait()
    sock.close()
    log = open(os.path.join(w.dir, "background.log")).read()
    assert p.returncode == 1, log[-3000:]
    m = re.search(r"run stopped by its window after [\d.]+ s: the run window ended: ([\d,]+) record\(s\) left", log)
    assert m and int(m.group(1).replace(",", "")) > 0, log[-3000:]
    prog = [s for s in statuses if re.match(r"STATUS=workelo_\w+ [\d,]+/[\d,]+", s)]
    assert prog, statuses
    assert any(re.search(r"workelo_\w+ [\d,]+/[\d,]+(, (about \d+ (min|h)|less than a minute) left)?", s)
               for s in shown), shown
    assert w.sql("SELECT status, message FROM hrsync.runs ORDER BY id DESC LIMIT 1")[0][1].startswith(
        "the run window ended")
    w.write_config(rate="1000/s")
    w.run("run", check_rc=1)
    w.assert_consistent()
    resumed = normalized(w.sandbox.store())
    # The same mirror in one uninterrupted run.
    w.sandbox.reset()
    w.sql("DROP SCHEMA hrsync CASCADE")
    w.run("run", check_rc=1)
    assert normalized(w.sandbox.store()) == resumed


def test_plan_estimates_the_requests_and_time_of_the_run(wworld):
    """`plan` says, per connector, how many requests the run would send and how long they
    take at its rate; the run then sends about that many."""
    w = wworld
    w.write_config(rate="300/min")
    js = json.loads(w.run("-q", "plan", "--format", "json", check_rc=1).out)
    est = js["connectors"]["workelo"]
    assert est["rate_per_second"] == pytest.approx(5 * 0.985, rel=1e-3)
    assert est["seconds"] == pytest.approx(est["requests"] / est["rate_per_second"], rel=0.01)
    table = w.run("-q", "plan", check_rc=1).out
    m = re.search(r"connector workelo: about (\d+) request\(s\), about (\d+ h \d+ min|\d+ min|\d+ s) at ", table)
    assert m and int(m.group(1)) == est["requests"], table[-500:]
    w.write_config(rate="1000/s")
    r = w.run("run", *[a for m in w.push_mappings for a in ("--mapping", m)], check_rc=1)
    sent = sum(r.summary(m)["requests"] for m in w.push_mappings)
    assert abs(est["requests"] - sent) <= 0.1 * sent, (est, sent)


def test_changes_reach_workelo_the_right_way_and_journeys_come_back(wworld):
    """After a complete sync: a journey's new dates and manager are a PUT of the journey (its
    actions moved with it); a cancellation is PUT .../cancel; a changed grade is a PUT of that
    identification only; a leaver gets the archived role, never a DELETE. The pull brings each
    journey's status and progression back to the ERP."""
    w = wworld
    w.run("run", check_rc=1)
    exp = w.expected()
    store = w.sandbox.store()
    emp_id = {e["external_id"]: e["id"] for e in store["employees"]}
    jid, (pn, mob, mgr, hr, buddy) = sorted(exp["tracks"].items())[0]
    new_mgr = sorted(exp["employees"] - exp["dismissed"] - {pn, mgr})[0]
    w.sql("UPDATE erp.journeys SET start_date = start_date + 7, end_date = end_date + 7, manager_number = %s "
          "WHERE journey_id = %s", (new_mgr, jid))
    cancelled = sorted(exp["tracks"])[1]
    w.sql("UPDATE erp.journeys SET status = 'cancelled' WHERE journey_id = %s", (cancelled,))
    graded = sorted(k for k in exp["employees"] - exp["dismissed"] if k not in (pn, new_mgr))[0]
    w.sql("UPDATE erp.employees SET grade = 'Principal' WHERE personnel_number = %s", (graded,))
    leaver = sorted(exp["employees"] - exp["dismissed"] - {pn, new_mgr, graded, mgr, hr, buddy})[0]
    w.sql("UPDATE erp.employees SET dismissal_date = '2026-12-01' WHERE personnel_number = %s", (leaver,))
    # Workelo's dropdown has no 'Principal': the identification is refused with Workelo's message.
    seq = w.sandbox.last_seq()
    r = w.run("run", check_rc=1)
    writes = [(x["method"], x["path"], x["body"]) for x in w.writes(w.sandbox.requests(since=seq))]
    link = dict(w.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'workelo_tracks'"))
    t_id, c_id = link[jid], link[cancelled]
    put = [b for m, p, b in writes if m == "PUT" and p == f"/tracks/{t_id}"]
    assert len(put) == 1 and put[0]["apply_on_actions"] is True and put[0]["implications"]["manager_id"] == emp_id[new_mgr]
    assert "mobility" not in put[0] and "template_ids" not in put[0]
    assert ("PUT", f"/tracks/{c_id}/cancel", None) in [(m, p, b or None) for m, p, b in writes]
    ident_writes = [(m, p) for m, p, _b in writes if "identification" in p]
    assert len(ident_writes) == 1 and ident_writes[0][0] == "PUT", ident_writes
    arch = [b for m, p, b in writes if m == "PUT" and p == f"/employees/{emp_id[leaver]}"]
    assert arch and arch[-1]["user_role_id"] == ARCHIVED
    assert not [x for x in w.sandbox.requests() if x["method"] == "DELETE"]
    assert len(writes) == 4, writes   # and nothing else: the grade alone changed for that employee
    fe = failures(w, "workelo_employees")
    assert fe[graded][0] == "refused" and "value: is not one of the options of Grade" in fe[graded][2], fe[graded]
    t = next(t for t in w.sandbox.store()["tracks"] if str(t["id"]) == t_id)
    assert t["implications"]["manager_id"] == emp_id[new_mgr] and t["apply_on_actions"] is True
    assert next(t for t in w.sandbox.store()["tracks"] if str(t["id"]) == c_id)["status"] == "cancelled"
    assert r.summary("workelo_tracks")["terminated"] == 1 and r.summary("workelo_tracks")["updated"] == 1

    # Journeys move on in Workelo; the pull brings their status and progression to the ERP.
    w.sandbox.call("POST", f"/tracks/{t_id}", {"status": "in_progress", "progression": 40})
    w.run("run", "--mapping", "workelo_tracks_inbound", check_rc=0)
    rows = {pid: (p, m, st, float(pr), d) for pid, p, m, st, pr, d in w.sql(
        "SELECT platform_id, personnel_number, mobility, status, progression, start_date::text "
        "FROM erp_inbound.workelo_tracks WHERE platform = 'workelo'")}
    assert rows[t_id][:4] == (pn, mob, "in_progress", 40.0), rows[t_id]
    assert rows[c_id][2] == "cancelled"
    assert len(rows) == len(w.sandbox.store()["tracks"])


def test_a_windowed_run_sends_creates_and_terminations_before_updates(wworld):
    """With a window, what matters most goes first within each mapping: new people and
    leavers, then the updates, with whatever time is left."""
    w = wworld
    w.run("run", "--mapping", "workelo_units", "--mapping", "workelo_employees", check_rc=1)
    exp = w.expected()
    staff = sorted(exp["employees"] - exp["dismissed"])
    updated, leaver = staff[:6], staff[6]
    w.sql("UPDATE erp.employees SET job_title = job_title || ' (acting)' WHERE personnel_number = ANY(%s)", (updated,))
    w.sql("UPDATE erp.employees SET dismissal_date = '2026-12-01' WHERE personnel_number = %s", (leaver,))
    w.sql("INSERT INTO erp.employees (personnel_number, company, last_name, first_name, email, hire_date, "
          "department_name, job_title, grade) SELECT 'N' || personnel_number, company, last_name, first_name, "
          "'new.' || email, hire_date, department_name, job_title, grade FROM erp.employees "
          "WHERE personnel_number = ANY(%s)", (staff[7:11],))
    # One request at a time: the sandbox logs requests as they arrive, and two sent a
    # millisecond apart on two connections may arrive the other way round.
    w.write_config(max_in_flight=1)
    seq = w.sandbox.last_seq()
    r = w.run("run", "--mapping", "workelo_units", "--mapping", "workelo_employees", "--until", "+10min", check_rc=1)
    writes = [x for x in w.writes(w.sandbox.requests(since=seq)) if "identification" not in x["path"]]
    ids = {e["external_id"]: e["id"] for e in w.sandbox.store()["employees"]}
    creates = [i for i, x in enumerate(writes) if x["method"] == "POST" and x["path"] == "/employees"]
    term = [i for i, x in enumerate(writes) if x["path"] == f"/employees/{ids[leaver]}"]
    upd = [i for i, x in enumerate(writes) if x["method"] == "PUT" and x["path"] in {f"/employees/{ids[k]}" for k in updated}]
    assert len(creates) == 4 and len(term) == 1 and len(upd) == 6, writes
    assert max(creates) < term[0] < min(upd), [(x["method"], x["path"]) for x in writes]
    assert r.summary("workelo_employees")["updated"] == 6


def test_an_identification_whose_answer_was_lost_is_found_not_added_twice(wworld):
    """Workelo carried out the POST of an identification, and the answer was lost: hrsync lists
    the employee's identifications, finds it, and goes on; never a second one."""
    w = wworld
    w.run("run", "--mapping", "workelo_units", check_rc=0)
    with w.sandbox.faulted({"mode": "commit_then_drop", "method": "POST", "path": r"^/employees/\d+/identifications$",
                            "every": 5, "count": 6}):
        w.run("run", "--mapping", "workelo_employees", check_rc=1)
        lost = w.sandbox.fired()
    assert len(lost) == 6 and all(x["status"] == 201 for x in lost)
    w.run("run", "--mapping", "workelo_employees", check_rc=1)
    store = w.sandbox.store()
    for e in store["employees"]:
        res = [i["identification_resource_id"] for i in e["identifications"]]
        assert len(res) == len(set(res)), e
    assert not [x for x in w.sandbox.requests() if "identification" in x["path"] and x["status"] == 422]
    extra = dict(w.sql("SELECT erp_key, extra::text FROM hrsync.links WHERE mapping = 'workelo_employees'"))
    idents = {e["external_id"]: {str(i["id"]) for i in e["identifications"]} for e in store["employees"]}
    for k, ids in idents.items():
        assert {v for v in json.loads(extra[k]).values()} == ids, (k, extra[k], ids)


def test_a_leaver_rehired_gets_their_role_back(wworld):
    """A leaver is archived (never deleted); re-hired in the ERP, the same Workelo employee gets
    the role of the mapping back, with the same identifications."""
    w = wworld
    w.run("run", "--mapping", "workelo_units", "--mapping", "workelo_employees", check_rc=1)
    back = sorted(w.expected()["dismissed"])[0]
    w.sql("UPDATE erp.employees SET dismissal_date = NULL, dismissal_reason = NULL WHERE personnel_number = %s",
          (back,))
    r = w.run("run", "--mapping", "workelo_units", "--mapping", "workelo_employees", check_rc=1)
    e = next(e for e in w.sandbox.store()["employees"] if e["external_id"] == back)
    assert e["user_role_id"] == 234 and r.summary("workelo_employees")["updated"] == 1, e
    assert w.sql("SELECT status FROM hrsync.links WHERE mapping = 'workelo_employees' AND erp_key = %s",
                 (back,)) == [("active",)]
    assert sum(1 for x in w.sandbox.store()["employees"] if x["external_id"] == back) == 1


def test_run_until_in_the_configuration(wworld):
    """`run_until:` gives every run its window (the timer's runs, the daemon's); `--until`
    overrides it; a value that is neither HH:MM nor +DURATION is a configuration error."""
    w = wworld
    w.rate = "20/s"
    w.extra_top = 'run_until: "+2s"\n'
    w.write_config()
    r = w.run("run", check_rc=1)
    assert re.search(r"run stopped by its window after [\d.]+ s: the run window ended: [\d,]+ record\(s\) left", r.err)
    assert r.seconds < 20, r.seconds
    w.extra_top = 'run_until: "soon"\n'
    w.write_config()
    c = w.run("check", check_rc=2)
    assert re.search(r"hrsync\.yaml:\d+:\d+: run_until: 'soon' is not a time of day \(HH:MM\) nor a duration \(\+4h\)",
                     c.err), c.err
    r = w.run("run", "--until", "+1h", "--mapping", "workelo_units")
    assert r.rc == 2   # the configuration is checked first


def test_a_window_spent_for_longer_than_max_wait_stops_the_connector(wworld):
    """The rate headers say the hour is spent for ten more minutes: past max_wait (5 min by
    default), the connector stops with the reason, everything done is recorded (exit 3); within
    it, the connector waits for the reset instead of drawing 429s."""
    w = wworld
    w.sandbox.config(hourly="8/600")
    w.sandbox.call("POST", "/consume", {"n": 4})
    r = w.run("run", "--mapping", "workelo_units", check_rc=3)
    assert re.search(r"the platform's rate window is spent \(\d+ requests left\) for \d+ s more, more than max_wait "
                     r"\(300 s\)", r.err), r.err[-2000:]
    assert not [x for x in w.sandbox.requests() if x["status"] == 429]
