"""Issue #4, items 1-3 and 5: runs killed at many instants, platforms that fail in every way
the sandbox can, a database that goes away in the middle of a run, and the mass-change guard.

What test_faults.py covers (lock, bad config, database unreachable at start, the breaker
on POST /employees) and what test_contract.py holds every connector to (first syncs killed
after so many requests or creates and before a commit, credentials refused, answers to
creates lost, transient faults on reads and creates, 429s) is not repeated here. This file
adds, for PeopleForce, kills between the platform's answer and the state commit
(HRSYNC_TEST_KILL_BEFORE_COMMIT) at each kind of write, including terminations, deletions
and replacements in a later run; the fault modes on sub-resources and on the writes of a
later run; 401 in the middle of a run (and a Personio token that dies);
the breaker when the platform goes down mid-run; PostgreSQL restarted or hrsync's backends
terminated during a run; the guard on terminations, deletions, records gone from the
source and a source that becomes empty, with --force.

Tests that find a bug in hrsync are kept, marked xfail(strict=True) with the bug's name.
"""
import collections
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from checks import assert_backoff, finish, kill_before_commit, start_over
from harness import MARKER, items
from world_peopleforce import TOKEN

# One line per op_done() in a run's log, in order: the kill hook counts the same events.
COMMIT_LINE = re.compile(r"mapping=(\w+) key=(\S+) action=(\w+) (created \(id|updated \(id|restored \(id|"
                         r"terminated on the platform|deleted on the platform|refused:|transient:)")

# ---------------------------------------------------------------- helpers

def commits(err):
    """The op_done events of a run's log, in order, as (mapping, key, what)."""
    out = []
    for m in COMMIT_LINE.finditer(err):
        what = m.group(4)
        kind = {"created (id": "create", "updated (id": "update", "restored (id": "restore",
                "terminated on the platform": "terminate", "deleted on the platform": "delete"}.get(what, what[:-1])
        out.append((m.group(1), m.group(2), kind))
    return out


# ---------------------------------------------------------------- 1. killed runs

def test_first_sync_killed_before_each_kind_of_commit(world):
    """A first sync killed between a platform's answer and its state commit, at points
    spread over employees (creates, then-terminations of leavers, a refusal), absences
    (creates, a refusal) and assets; each time run again to the end."""
    world.write_config(timeout="30s")  # a loaded machine must not turn slow answers into a stopped run
    ref = finish(world)  # a reference run: where each kind of commit falls
    world.assert_consistent()
    events = commits(ref.err)
    n = len(events)
    assert n > 1000, n
    pos = collections.defaultdict(list)
    for i, (m, _k, kind) in enumerate(events, 1):
        pos[(m, kind)].append(i)
    # Concurrency shifts the order a little from run to run: the labels are where each
    # point falls in the reference run.
    points = {
        "first employee created": pos[("employees", "create")][0],
        "employee created, mid-mapping": pos[("employees", "create")][len(pos[("employees", "create")]) // 2],
        "leaver created then terminated (the terminate)": pos[("employees", "terminate")][3],
        "employee refused (failure commit)": pos[("employees", "refused")][0],
        "last employee commit": max(pos[("employees", "create")] + pos[("employees", "terminate")]),
        "first leave request": pos[("absences", "create")][0],
        "leave request, mid-mapping": pos[("absences", "create")][len(pos[("absences", "create")]) // 2],
        "leave request refused (failure commit)": pos[("absences", "refused")][-1],
        "first asset": pos[("assets", "create")][0],
        "last asset": pos[("assets", "create")][-1],
    }
    for label, at in points.items():
        start_over(world)
        kill_before_commit(world, at)
        finish(world)
        try:
            world.assert_consistent()
        except AssertionError as e:
            raise AssertionError(f"after a kill before commit {at} ({label}): {e}") from e
        # The state's history tells the sysadmin what happened to the killed run.
        runs = world.sql("SELECT status FROM hrsync.runs ORDER BY id")
        assert runs[0] == ("killed",) and runs[-1] != ("running",), runs
    # And the night after the last recovery sends nothing.
    seq = world.sandbox.last_seq()
    finish(world)
    assert world.writes(world.sandbox.requests(since=seq)) == []


def _change_pool(world, exp):
    """Records a later sync may change, a few per round: active employees (not the two that
    share an email), absences and held assets on the platform."""
    return {
        "employees": sorted(exp["employees"] - exp["dismissed"] - set(world.manifest["duplicate_email"])),
        "absences": sorted(exp["absences"]),
        "held": [k for (k,) in world.sql(
            "SELECT inventory_number FROM erp.assets WHERE holder IS NOT NULL AND returned_on IS NULL "
            "AND inventory_number = ANY(%s) ORDER BY 1", (sorted(exp["assets"]),))],
    }


def _change_set(world, pool, i):
    """The ERP changes of round i, each on records no earlier round touched:
    3 employee updates, 6 dismissals, 3 absence edits (PeopleForce replaces the leave
    request), 8 cancellations, 3 asset returns. 23 commits, in that order."""
    emp, ab, held = pool["employees"], pool["absences"], pool["held"]
    upd, dis = emp[9 * i:9 * i + 3], emp[9 * i + 3:9 * i + 9]
    edit, canc = ab[11 * i:11 * i + 3], ab[11 * i + 3:11 * i + 11]
    ret = held[3 * i:3 * i + 3]
    assert len(dis) == 6 and len(canc) == 8 and len(ret) == 3, "the mirror is too small for this many rounds"
    world.sql("UPDATE erp.employees SET mobile_phone = '+33 6 11 22 33 ' || lpad(%s::text, 2, '0') "
              "WHERE personnel_number = ANY(%s)", (i, upd))
    world.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
              "WHERE personnel_number = ANY(%s)", (dis,))
    world.sql("UPDATE erp.absences SET comment = coalesce(comment, '') || ' (corrigé ' || %s || ')' "
              "WHERE absence_id = ANY(%s)", (i, edit))
    world.sql("UPDATE erp.absences SET status = 'cancelled' WHERE absence_id = ANY(%s)", (canc,))
    world.sql("UPDATE erp.assets SET returned_on = '2026-11-21' WHERE inventory_number = ANY(%s)", (ret,))
    return dict(updated=upd, dismissed=dis, edited=edit, cancelled=canc, returned=ret)


def test_later_sync_killed_during_updates_terminations_deletions_and_returns(world):
    """After a complete first sync the ERP changes (updates, dismissals, edited and
    cancelled absences, returned assets); the second sync is killed before one of its
    commits, then run to the end. Each round changes other records."""
    world.write_config(timeout="30s")
    finish(world)
    exp = world.assert_consistent()
    pool = _change_pool(world, exp)
    # Commit numbers in a round: 1-3 employee updates, 4-9 terminations, 10-12 leave
    # requests replaced, 13-20 deleted, 21-23 assignments closed.
    rounds = [(2, "employee update"), (4, "first termination"), (7, "termination"), (9, "last termination"),
              (11, "leave request replaced (delete + create)"), (14, "leave request deleted"),
              (20, "last deletion"), (22, "asset returned")]
    for i, (at, label) in enumerate(rounds):
        ch = _change_set(world, pool, i)
        r = kill_before_commit(world, at)
        done = commits(r.err)
        assert len(done) == at - 1, (label, done)
        r = finish(world)
        try:
            world.assert_consistent()
        except AssertionError as e:
            raise AssertionError(f"round {i}, killed before commit {at} ({label}): {e}") from e
        # The rerun finished exactly what was left: nothing done twice, nothing forgotten.
        emp = r.summary("employees")
        assert emp["created"] == 0, emp
        store = world.sandbox.store()
        emps = {e["employee_number"]: e for e in items(store["employees"])}
        for k in ch["dismissed"]:
            assert not emps[k]["active"] and emps[k]["termination"]["effective_from"] == "2026-11-20", k
        for k in ch["updated"]:
            assert emps[k]["mobile_number"] == f"+33 6 11 22 33 {i:02d}", k
        lrs = collections.Counter(MARKER.search(lr["description"]).group(1) for lr in items(store["leave_requests"]))
        for k in ch["edited"]:
            assert lrs[k] == 1, (k, lrs[k])
        for k in ch["cancelled"]:
            assert lrs[k] == 0, k
    seq = world.sandbox.last_seq()
    finish(world)
    assert world.writes(world.sandbox.requests(since=seq)) == []


def test_later_sync_killed_after_n_requests_of_the_changes(world):
    """The second sync's few writes, with the kill landing between a leave request's
    DELETE and its new POST, or a termination and its check."""
    world.write_config(timeout="30s")
    finish(world)
    exp = world.assert_consistent()
    pool = _change_pool(world, exp)
    for i, nth_write in enumerate((3, 12, 17)):
        _change_set(world, pool, i)
        # Count writes rather than requests: the reads before them vary.
        start = world.sandbox.last_seq()
        p = world.start("run")
        deadline = time.time() + 60
        while p.poll() is None and time.time() < deadline:
            if len(world.writes(world.sandbox.requests(since=start))) >= nth_write:
                os.kill(p.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        p.wait()
        assert p.returncode == -signal.SIGKILL, f"round {i}: the run ended (exit {p.returncode}) first"
        finish(world)
        world.assert_consistent()


# ---------------------------------------------------------------- 2. failing platforms
# (test_contract.py: lost answers to creates, transient faults on reads and creates, 429s.)

def test_transient_faults_on_sub_resource_posts_are_retried_within_the_run(world):
    with world.sandbox.faulted({"mode": "502", "method": "POST", "path": r"^/employees/\d+/positions$", "every": 20},
                               {"mode": "503", "method": "POST", "path": r"^/asset_assignments$", "every": 10}):
        r = world.run("run", timeout=300)
    assert r.rc == 1, r.err[-3000:]
    assert world.sql("SELECT mapping, erp_key, reason FROM hrsync.failures WHERE kind = 'transient'") == []


@pytest.mark.parametrize("mode", ["html200", "malformed"])
def test_sub_resource_posts_that_failed_are_done_by_the_next_run(world, mode):
    """A sub-resource POST whose answer is garbled or lost is not sent again in the run (it may
    have been done): nothing lost, nothing doubled, the next run finishes."""
    with world.sandbox.faulted({"mode": mode, "method": "POST", "path": r"^/employees/\d+/positions$", "every": 20},
                               {"mode": "502", "method": "POST", "path": r"^/asset_assignments$", "every": 10},
                               {"mode": "408", "method": "POST", "path": r"^/employees/\d+/terminate$", "every": 5}):
        r = world.run("run", timeout=300)
    assert r.rc == 1, r.err[-3000:]
    finish(world)
    world.assert_consistent()


@pytest.mark.parametrize("mode", ["html200", "malformed"])
def test_one_non_json_answer_to_a_list_read_is_retried(world, mode):
    """Retried within the run: only the planted bad rows fail, all recorded, nothing lost."""
    with world.sandbox.faulted({"mode": mode, "method": "GET", "path": "^/departments$", "count": 1}):
        r = world.run("run", timeout=300)
    assert r.rc == 1, r.err[-2000:]
    world.assert_recorded()
    world.assert_consistent()


LATER_SYNC_FAULTS = [
    ("5xx-put-delete", [{"mode": "500", "method": "PUT", "every": 2, "count": 2},
                        {"mode": "503", "method": "DELETE", "every": 3, "count": 3}]),
    ("drop-put-delete", [{"mode": "drop", "method": "PUT", "every": 2, "count": 3},
                         {"mode": "drop", "method": "DELETE", "every": 3, "count": 3}]),
    ("timeout-delete", [{"mode": "timeout", "method": "DELETE", "every": 4, "count": 1, "delay_ms": 6000}]),
    ("commit_then_drop-writes", [{"mode": "commit_then_drop", "method": "PUT", "every": 2, "count": 2},
                                 {"mode": "commit_then_drop", "method": "DELETE", "every": 3, "count": 3},
                                 {"mode": "commit_then_drop", "method": "POST", "every": 2, "count": 4}]),
    ("html200+malformed-writes", [{"mode": "html200", "method": "PUT", "every": 2, "count": 2},
                                  {"mode": "malformed", "method": "POST", "every": 2, "count": 3}]),
]


@pytest.mark.parametrize("rules", [r for _, r in LATER_SYNC_FAULTS], ids=[i for i, _ in LATER_SYNC_FAULTS])
def test_faults_during_updates_terminations_and_deletions(world, rules):
    """The second night's writes (PUT, DELETE, POST terminate, replaced leave requests)
    under faults: the run does not stop, and the night after everything is in step,
    nothing doubled."""
    finish(world)
    exp = world.expected()
    pool = _change_pool(world, exp)
    _change_set(world, pool, 0)
    with world.sandbox.faulted(*rules):
        r = world.run("run", timeout=300)
        faulted = world.sandbox.fired()
    assert faulted, "the fault never fired"
    assert r.rc == 1, f"exit {r.rc}\n{r.err[-3000:]}"
    assert_backoff(world, [f for f in faulted if f["fault"] not in ("commit_then_drop", "html200", "malformed")])
    finish(world)
    world.assert_consistent()


def test_401_in_the_middle_of_a_run_stops_it_and_the_next_run_finishes(world):
    """The key is revoked while the run goes: exit 3 with 'credentials refused', what was
    done is recorded, the key never shows; with a good key again the next run finishes."""
    start = world.sandbox.last_seq()
    p = world.start("run", log=os.path.join(world.dir, "revoked.log"))
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline and world.sandbox.last_seq() - start < 400:
        time.sleep(0.005)
    with world.sandbox.faulted({"mode": "401"}):
        assert p.wait(timeout=120) == 3
    err = open(os.path.join(world.dir, "revoked.log")).read()
    assert "credentials refused (HTTP 401" in err, err[-2000:]
    assert TOKEN not in err
    # It stopped at once: a few requests in flight, not one 401 per record.
    refused = [x for x in world.sandbox.requests(since=start) if x["fault"] == "401"]
    assert 0 < len(refused) <= 12, len(refused)
    world.assert_recorded()
    finish(world)
    world.assert_consistent()


@pytest.mark.parametrize("where", ["employees", "absences"])
def test_platform_going_down_mid_run_trips_the_breaker(world, where):
    """Every request fails from some point on (503 pages): the connector is stopped after
    a few failures in a row, the run exits 3, what was done is recorded, and the next run
    finishes the job."""
    # Employees take about 620 requests in a first sync; absences the next 670.
    threshold = 150 if where == "employees" else 900
    start = world.sandbox.last_seq()
    log = os.path.join(world.dir, "down.log")
    p = world.start("run", log=log)
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline and world.sandbox.last_seq() - start < threshold:
        time.sleep(0.003)
    world.sandbox.faults({"mode": "503"})
    seq = world.sandbox.last_seq()
    try:
        assert p.wait(timeout=180) == 3, open(log).read()[-3000:]
    finally:
        world.sandbox.clear_faults()
    err = open(log).read()
    assert "stopped for this run" in err and "in a row failed" in err, err[-2000:]
    after = world.sandbox.requests(since=seq)
    assert len(after) < 60, f"{len(after)} requests after the platform went down"
    world.assert_recorded()
    finish(world)
    world.assert_consistent()


def test_personio_token_dying_right_after_it_was_issued_is_renewed(pworld):
    """A client-credentials token revoked a moment after it was issued (credentials rotated,
    the platform's sessions reset): hrsync fetches another and the run goes on."""
    pworld.use_mappings("employees.yaml", "absences.yaml")
    start = pworld.sandbox.last_seq()
    log = os.path.join(pworld.dir, "expired.log")
    p = pworld.start("run", log=log)
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline:
        if any(x["path"] != "/v2/auth/token" for x in pworld.sandbox.requests(since=start)):
            pworld.sandbox.call("POST", "/tokens/expire")
            break
        time.sleep(0.005)
    rc = p.wait(timeout=300)
    assert rc == 1, open(log).read()[-3000:]
    pworld.assert_end_state()


# ---------------------------------------------------------------- 3. failing database

def pg_ctl(cluster, *args):
    """pg_ctl on the test cluster, as its owner (tests/setup/pgcluster.sh runs it as hrsync-pg under root)."""
    bindir = None
    for cand in [subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip(),
                 "/usr/lib/postgresql/15/bin"]:
        if cand and os.path.exists(os.path.join(cand, "pg_ctl")):
            bindir = cand
            break
    if bindir is None:
        bindir = sorted(d for d in (f"/usr/lib/postgresql/{v}/bin" for v in os.listdir("/usr/lib/postgresql"))
                        if os.path.exists(os.path.join(d, "pg_ctl")))[-1]
    cmd = [os.path.join(bindir, "pg_ctl"), "-D", os.path.join(cluster.dir, "data"), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "hrsync-pg", "--"] + cmd
    subprocess.run(cmd, check=True, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def wait_until_requests(world, p, n, start):
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline and world.sandbox.last_seq() - start < n:
        time.sleep(0.003)
    assert p.poll() is None, "the run ended before the database could fail"


def terminate_backends(world, *purposes):
    """hrsync's sessions of these purposes, terminated in one statement (hrsync stops within
    milliseconds of losing one: a second statement would find the other gone already)."""
    c = world.cluster.connect("postgres")
    try:
        cur = c.cursor()
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                    "AND application_name = ANY(%s)", (world.db, [f"hrsync {p}" for p in purposes]))
        return len(cur.fetchall())
    finally:
        c.close()


@pytest.mark.parametrize("how", ["restart", "terminate-state", "terminate-source", "terminate-both"])
def test_database_lost_during_a_run(world, how):
    """PostgreSQL restarted (pg_ctl restart -m fast) or hrsync's backends terminated while
    the employees are being pushed: the run ends with exit 3 and says why, no link claims a
    record the platform does not have, and the next run completes without a duplicate."""
    log = os.path.join(world.dir, "db.log")
    start = world.sandbox.last_seq()
    p = world.start("run", log=log)
    # The employees' source rows are all read by now (one FETCH); the absences' are not.
    wait_until_requests(world, p, 200, start)
    if how == "restart":
        pg_ctl(world.cluster, "restart", "-m", "fast", "-w", "-t", "60", "-l",
               os.path.join(world.cluster.dir, "postgres.log"))
    else:
        purposes = {"terminate-state": ["state"], "terminate-source": ["source"],
                    "terminate-both": ["state", "source"]}[how]
        assert terminate_backends(world, *purposes) == len(purposes)
    rc = p.wait(timeout=180)
    err = open(log).read()
    assert rc == 3, f"exit {rc}\n{err[-3000:]}"
    assert "run stopped" in err, err[-2000:]
    if how in ("restart", "terminate-state", "terminate-both"):
        assert "lost the connection to the state database" in err, err[-2000:]
    else:
        # The employees' rows were all fetched: the next FETCH (or the absences' cursor) fails.
        assert re.search(r"reading the source of mapping \w+: server closed the connection|"
                         r"mapping \w+: the source query failed", err), err[-2000:]
    # What the state says was done, the platform has (a commit only after the platform's answer).
    store = world.sandbox.store()
    on_platform = {("employees", str(e["id"])) for e in items(store["employees"])}
    on_platform |= {("absences", str(lr["id"])) for lr in items(store["leave_requests"])}
    on_platform |= {("assets", str(a["id"])) for a in items(store["assets"])}
    for m, k, pid in world.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links WHERE status = 'active'"):
        assert (m, pid) in on_platform, (m, k, pid)
    finish(world)
    world.assert_consistent()


def test_a_state_write_the_database_refuses_stops_the_run(world):
    """The state database answers but will not record a confirmed write (a full disk, a lock
    held past lock_timeout; here a trigger): the run stops with exit 3 and names the error,
    instead of reporting every record in step with their links missing; the next run links
    what the platform has and creates nothing twice."""
    world.use_mappings("employees.yaml")
    finish(world)
    new = ["T9%03d" % i for i in range(5)]
    for k in new:
        world.sql("""INSERT INTO erp.employees (personnel_number, company, last_name, first_name, sex, birth_date,
                         email, hire_date, department_name, job_title, grade, location_name)
                     SELECT %s, company, 'Refused', first_name, sex, birth_date, lower(%s) || '.' || email,
                         hire_date, department_name, job_title, grade, location_name
                     FROM erp.employees WHERE email IS NOT NULL ORDER BY personnel_number LIMIT 1""", (k, k))
    world.sql("CREATE FUNCTION public.refuse_links() RETURNS trigger LANGUAGE plpgsql AS "
              "$$BEGIN RAISE EXCEPTION 'could not extend file (test: disk full)'; END$$; "
              "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON hrsync.links "
              "FOR EACH ROW EXECUTE FUNCTION public.refuse_links()")
    r = world.run("run")
    assert r.rc == 3, f"exit {r.rc}\n{r.err[-3000:]}"
    assert "could not extend file (test: disk full)" in r.err and "run stopped" in r.err, r.err[-3000:]
    assert "every record is in step" not in r.err
    # Created (the run stops at the first refused commit: on a slow machine before all five).
    posted = collections.Counter(e["employee_number"] for e in items(world.sandbox.store()["employees"]))
    assert all(posted[k] <= 1 for k in new) and sum(posted[k] for k in new) >= 1, posted
    assert world.sql("SELECT count(*) FROM hrsync.links WHERE erp_key LIKE 'T9%%'")[0][0] == 0
    world.sql("DROP TRIGGER refuse ON hrsync.links")
    finish(world)
    posted = collections.Counter(e["employee_number"] for e in items(world.sandbox.store()["employees"]))
    assert [posted[k] for k in new] == [1] * 5, posted
    assert world.sql("SELECT count(*) FROM hrsync.links WHERE erp_key LIKE 'T9%%' AND status = 'active'")[0][0] == 5


def test_database_gone_at_start_names_it_and_touches_nothing(world):
    """Unreachable database at start (test_faults.py: a closed port) — here a database that does
    not exist, and a server that is stopped: exit 3, a clear message, not one request sent."""
    db = world.db
    world.db = "no_such_db_" + db
    world.write_config()
    try:
        r = world.run("run", check_rc=3)
    finally:
        world.db = db
        world.write_config()
    assert "cannot connect to the database" in r.err and "does not exist" in r.err, r.err
    assert world.sandbox.requests() == []
    pg_ctl(world.cluster, "stop", "-m", "fast", "-w", "-t", "60")
    try:
        r = world.run("run", check_rc=3)
    finally:
        pg_ctl(world.cluster, "start", "-w", "-t", "60", "-l", os.path.join(world.cluster.dir, "postgres.log"))
    assert "cannot connect to the database" in r.err, r.err
    assert len([l for l in r.err.splitlines() if l.strip()]) <= 3, r.err  # one clear message, not a cascade
    assert world.sandbox.requests() == []
    finish(world)
    world.assert_consistent()


# ---------------------------------------------------------------- mass-change guard (README.md)

def _active_employees(world):
    exp = world.expected()
    return sorted(exp["employees"] - exp["dismissed"] - set(world.manifest["duplicate_email"]))


def test_mass_termination_guard_stops_the_run_and_force_goes_through(world):
    finish(world)
    active = world.sql("SELECT count(*) FROM hrsync.links WHERE mapping = 'employees' AND status = 'active'")[0][0]
    leavers = _active_employees(world)[:30]  # about 11% of the active employees
    assert len(leavers) / active > 0.05
    world.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
              "WHERE personnel_number = ANY(%s)", (leavers,))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=3)
    assert re.search(rf"mass-change guard: mapping employees would terminate 30 of its {active} records", r.err), r.err[-2000:]
    assert "--force" in r.err
    assert world.writes(world.sandbox.requests(since=seq)) == [], "the guard let a write through"
    emps = {e["employee_number"]: e for e in items(world.sandbox.store()["employees"])}
    assert all(emps[k]["active"] for k in leavers)
    # The held-back terminations wait in the failures, with the reason.
    held = dict(world.sql("SELECT erp_key, reason FROM hrsync.failures WHERE mapping = 'employees' "
                          "AND action = 'terminate'"))
    assert set(held) == set(leavers) and all("mass-change guard" in v for v in held.values()), held
    # Stopped again the night after: the guard does not wear off by itself.
    world.run("run", check_rc=3)
    # --force: through, and everything in step.
    r = world.run("run", "--force", check_rc=1)
    assert r.summary("employees")["terminated"] == 30
    world.assert_consistent()


def test_mass_termination_guard_threshold_comes_from_the_config(world):
    world.extra_top = "guards:\n  max_terminations: 20%\n"
    world.write_config()
    finish(world)
    leavers = _active_employees(world)[:30]
    world.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
              "WHERE personnel_number = ANY(%s)", (leavers,))
    r = finish(world)  # 11% < 20%: no --force needed
    assert r.summary("employees")["terminated"] == 30
    world.assert_consistent()
    # A few leavers under the default 5% never trip it (the demo's nightly reality).
    world.extra_top = ""
    world.write_config()
    few = _active_employees(world)[:5]
    world.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
              "WHERE personnel_number = ANY(%s)", (few,))
    assert finish(world).summary("employees")["terminated"] == 5


def test_mass_deletion_guard_on_cancelled_absences(world):
    finish(world)
    exp = world.expected()
    cancel = sorted(exp["absences"])[:80]  # about 12% of the leave requests
    world.sql("UPDATE erp.absences SET status = 'cancelled' WHERE absence_id = ANY(%s)", (cancel,))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=3)
    assert re.search(r"mass-change guard: mapping absences would delete 80 of its \d+ records", r.err), r.err[-2000:]
    assert [x for x in world.sandbox.requests(since=seq) if x["method"] == "DELETE"] == []
    r = world.run("run", "--force", check_rc=1)
    assert r.summary("absences")["terminated"] == 80
    world.assert_consistent()


def test_source_that_becomes_empty_stops_the_run(world):
    finish(world)
    world.sql("DELETE FROM erp.assets")
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=3)
    assert re.search(r"mass-change guard: the source of mapping assets is empty but had 120 rows last time", r.err), \
        r.err[-2000:]
    assert world.writes(world.sandbox.requests(since=seq)) == []
    world.run("run", check_rc=3)  # still refused: the last complete run had rows
    r = world.run("run", "--force")
    assert r.rc in (0, 1), r.err[-2000:]
    assert r.summary("assets")["created"] == 0
    r = world.run("run")  # empty is now what the ERP says: no --force needed any more
    assert r.rc in (0, 1), r.err[-2000:]


def test_records_gone_from_the_source_are_deleted_under_the_guard(tmp_path, world):
    """source.on_missing: terminate (mappings/README.md §2.2): absences deleted from the ERP are
    deleted on the platform; a mass disappearance trips the guard like any deletion; --force
    goes through."""
    src = os.path.join(os.path.dirname(__file__), "..", "..", "mappings", "peopleforce")
    d = tmp_path / "maps"
    d.mkdir()
    for name in ("employees.yaml", "assets.yaml", "kinds.csv"):
        shutil.copy(os.path.join(src, name), d / name)
    text = open(os.path.join(src, "absences.yaml")).read()
    assert "  key: absence_id\n" in text
    (d / "absences.yaml").write_text(text.replace("  key: absence_id\n", "  key: absence_id\n  on_missing: terminate\n"))
    world.mappings = [str(d / "*.yaml")]
    world.write_config()
    finish(world)
    gone = sorted(world.expected()["absences"])
    world.sql("DELETE FROM erp.absences WHERE absence_id = ANY(%s)", (gone[:10],))
    r = finish(world)
    assert r.summary("absences")["terminated"] == 10
    world.assert_consistent()
    world.sql("DELETE FROM erp.absences WHERE absence_id = ANY(%s)", (gone[10:90],))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=3)
    assert "mass-change guard: mapping absences would delete 80 of its" in r.err, r.err[-2000:]
    assert [x for x in world.sandbox.requests(since=seq) if x["method"] == "DELETE"] == []
    r = world.run("run", "--force", check_rc=1)
    assert r.summary("absences")["terminated"] == 80
    world.assert_consistent()
    st = dict(world.sql("SELECT erp_key, status FROM hrsync.links WHERE mapping = 'absences' AND erp_key = ANY(%s)",
                        (gone[:90],)))
    assert set(st.values()) == {"deleted"} and len(st) == 90, st
