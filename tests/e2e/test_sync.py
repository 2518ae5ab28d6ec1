"""The nightly sync against the PeopleForce sandbox: issue #2's acceptance tests. (The
night after a complete sync sends nothing: test_contract.py, for every connector.)"""
import collections
import os
import re
import shutil

from checks import retry_delays
from harness import ROOT, items


def test_full_sync_creates_every_valid_record_once(world):
    r = world.run("run", check_rc=1)  # planted bad rows fail: exit 1
    exp = world.assert_end_state()
    emp = r.summary("employees")
    assert emp["created"] == len(exp["employees"])
    assert emp["terminated"] == len(exp["dismissed"])
    assert r.summary("absences")["created"] == len(exp["absences"])
    assert r.summary("assets")["created"] == len(exp["assets"])

    # Every planted bad row is listed as a failure naming its field and reason.
    fails = {(m, k): (kind, field, reason) for m, k, kind, field, reason in
             world.sql("SELECT mapping, erp_key, kind, field, reason FROM hrsync.failures")}
    for b in world.manifest["bad"]:
        kind, field, reason = fails[(b["table"], b["key"])]
        assert reason, b
        if b["outcome"] == "mapping_error":
            # The manifest names the ERP column's meaning; the shipped mapping names the platform field.
            want = {"nir": "social_security_number"}.get(b["field"], b["field"])
            assert kind == "mapping" and field == want, (b, kind, field, reason)
        elif b["outcome"] == "deferred":
            assert kind == "deferred" and "not on the platform yet" in reason, (b, kind, reason)
        else:
            assert kind == "refused" and "422" in reason, (b, kind, reason)
    assert fails[("employees", exp["dup_loser"])][0] == "refused"
    assert "already been taken" in fails[("employees", exp["dup_loser"])][2]
    for k in world.manifest["absences_of_bad_employees"]:
        if k in exp["absences"]:
            continue  # the duplicate-email winner's
        assert fails[("absences", k)][0] == "deferred"
    # Nothing else failed.
    listed = {(b["table"], b["key"]) for b in world.manifest["bad"]} | {("employees", exp["dup_loser"])}
    listed |= {("absences", k) for k in world.manifest["absences_of_bad_employees"]} - exp["absences"]
    listed |= {("absences", k) for (k,) in world.sql(
        "SELECT absence_id FROM erp.absences WHERE personnel_number = %s AND status = 'posted'", (exp["dup_loser"],))}
    listed |= {("assets", k) for k in world.manifest["assets_of_bad_employees"]} - exp["assets"]
    assert set(fails) == listed, (set(fails) ^ listed)


def test_changes_send_exactly_what_changed(world):
    world.run("run", check_rc=1)
    exp = world.expected()
    active = sorted(exp["employees"] - exp["dismissed"])
    changed = active[:10]
    world.sql("UPDATE erp.employees SET mobile_phone = '+33 6 00 00 00 ' || right(personnel_number, 2) "
              "WHERE personnel_number = ANY(%s)", (changed,))
    leaver = active[-1]
    world.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
              "WHERE personnel_number = %s", (leaver,))
    cancelled = sorted(exp["absences"])[0]
    world.sql("UPDATE erp.absences SET status = 'cancelled' WHERE absence_id = %s", (cancelled,))
    returned = world.sql("SELECT inventory_number FROM erp.assets WHERE holder IS NOT NULL AND returned_on IS NULL "
                         "AND inventory_number = ANY(%s) ORDER BY 1 LIMIT 1", (sorted(exp["assets"]),))[0][0]
    world.sql("UPDATE erp.assets SET returned_on = '2026-11-21' WHERE inventory_number = %s", (returned,))

    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    emp = r.summary("employees")
    assert (emp["created"], emp["updated"], emp["terminated"]) == (0, 10, 1), emp
    ab = r.summary("absences")
    assert (ab["created"], ab["updated"], ab["terminated"]) == (0, 0, 1), ab
    asg = r.summary("assets")
    assert (asg["created"], asg["updated"], asg["terminated"]) == (0, 1, 0), asg

    w = world.writes(world.sandbox.requests(since=seq))
    kinds = collections.Counter((x["method"], x["path"].split("/")[1] + ("/terminate" if x["path"].endswith("/terminate") else ""))
                                for x in w)
    assert kinds == {("PUT", "employees"): 10, ("POST", "employees/terminate"): 1,
                     ("DELETE", "leave_requests"): 1, ("PUT", "asset_assignments"): 1}, kinds

    store = world.sandbox.store()
    emps = {e["employee_number"]: e for e in items(store["employees"])}
    for k in changed:
        assert emps[k]["mobile_number"] == "+33 6 00 00 00 " + k[-2:]
    assert not emps[leaver]["active"]
    assert emps[leaver]["termination"]["effective_from"] == "2026-11-20"
    assert emps[leaver]["termination"]["termination_reason_id"] == 14
    lr_link = world.sql("SELECT platform_id, status FROM hrsync.links WHERE mapping='absences' AND erp_key=%s",
                        (cancelled,))[0]
    assert lr_link[1] == "deleted"
    assert int(lr_link[0]) not in {lr["id"] for lr in items(store["leave_requests"])}
    aid = world.sql("SELECT platform_id FROM hrsync.links WHERE mapping='assets' AND erp_key=%s", (returned,))[0][0]
    got = [a for a in items(store["asset_assignments"]) if str(a["asset_id"]) == aid]
    assert len(got) == 1 and got[0]["returned_on"] == "2026-11-21"
    # And the night after, nothing again.
    seq = world.sandbox.last_seq()
    world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []


def test_awkward_keys_are_updated_not_created_again(world):
    """A changed record's link details are read back by key (one query per batch): keys that
    JSON and SQL must escape still find their link, so the record is updated, never re-created."""
    awkward = ['Q"1\\x', "é'2 ,(3)", "  lead"]
    cols = ("company, last_name, first_name, patronymic, sex, birth_date, mobile_phone, hire_date, "
            "department_name, job_title, grade, location_name")
    donor = sorted(world.expected()["employees"] - world.expected()["dismissed"])[0]
    for i, k in enumerate(awkward):
        world.sql("INSERT INTO erp.employees (personnel_number, email, %s) SELECT %%s, %%s, %s "
                  "FROM erp.employees WHERE personnel_number = %%s" % (cols, cols),
                  (k, "awkward%d@example.com" % i, donor))
    world.run("run", check_rc=1)
    ids = dict(world.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'employees' "
                         "AND erp_key = ANY(%s)", (awkward,)))
    assert sorted(ids) == sorted(awkward)
    world.sql("UPDATE erp.employees SET mobile_phone = '+33 6 99 99 99 99' WHERE personnel_number = ANY(%s)",
              (awkward,))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    w = world.writes(world.sandbox.requests(since=seq))
    assert sorted((x["method"], x["path"]) for x in w) == sorted(("PUT", "/employees/%s" % ids[k]) for k in awkward)
    assert r.summary("employees")["updated"] == 3


def test_source_hashes_of_another_format_cost_one_pass_and_no_write(world):
    """Hashes stored by an older hrsync (or with another seed) do not match: every record is
    mapped once more, nothing is sent (the fingerprints decide), and the new hashes are stored."""
    world.run("run", check_rc=1)
    world.sql("UPDATE hrsync.links SET src_hash = 'old' || src_hash WHERE src_hash IS NOT NULL")
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []
    assert r.summary("employees")["updated"] == 0
    # (records gone from the platform and out of scope stay as they are, whatever their hash)
    stale = world.sql("SELECT l.mapping, l.erp_key, l.status FROM hrsync.links l WHERE l.src_hash LIKE 'old%%' "
                      "AND NOT EXISTS (SELECT 1 FROM hrsync.failures f WHERE f.mapping = l.mapping "
                      "AND f.erp_key = l.erp_key)")
    assert [x for x in stale if x[2] == "active"] == []
    assert world.sql("SELECT count(*) FROM hrsync.links WHERE status = 'active' AND src_hash IS NOT NULL "
                     "AND src_hash NOT LIKE 'old%%'")[0][0] > 100
    # and they are the ones the night after finds in step: a record whose stored fingerprint and
    # payload no longer match is not even mapped (nothing sent for it) while its hash is in step ...
    key, pid = world.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'employees' "
                         "AND status = 'active' ORDER BY erp_key LIMIT 1")[0]
    world.sql("UPDATE hrsync.links SET fingerprint = '\\x00', payload = payload || '{\"last_name\": \"Changed\"}' "
              "WHERE mapping = 'employees' AND erp_key = %s", (key,))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []
    assert r.summary("employees")["updated"] == 0
    # ... and is mapped, found different and sent once its hash is not
    world.sql("UPDATE hrsync.links SET src_hash = 'old' WHERE mapping = 'employees' AND erp_key = %s", (key,))
    seq = world.sandbox.last_seq()
    world.run("run", check_rc=1)
    assert [(x["method"], x["path"]) for x in world.writes(world.sandbox.requests(since=seq))] == \
        [("PUT", "/employees/%s" % pid)]


def test_sync_completes_when_one_request_in_five_gets_429(world):
    # Retry-After: 0 keeps the test quick; the wait itself is checked on the first three.
    world.sandbox.faults({"mode": "429", "every": 5, "count": 3, "retry_after": 1},
                         {"mode": "429", "every": 5, "retry_after": 0})
    try:
        r = world.run("run", check_rc=1)
    finally:
        world.sandbox.clear_faults()
    throttled = sum(r.summary(m)["429s"] for m in ("employees", "absences", "assets"))
    assert throttled > 100
    # The three told Retry-After: 1 came back no sooner than a second later.
    delays = retry_delays(world.sandbox.requests())
    assert len([d for d in delays if d >= 0.95]) >= 3, sorted(delays)[-5:]
    world.assert_end_state()
    seq = world.sandbox.last_seq()
    world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []


def test_on_missing_terminate_deletes_what_left_the_erp(world, tmp_path):
    """source.on_missing: terminate — an absence deleted from the ERP (no trace left)
    deletes its leave request; the guard counts it like any termination."""
    d = tmp_path / "maps"
    shutil.copytree(os.path.join(ROOT, "mappings", "peopleforce"), d)
    ab = (d / "absences.yaml").read_text().replace("  key: absence_id\n", "  key: absence_id\n  on_missing: terminate\n")
    (d / "absences.yaml").write_text(ab)
    world.mappings = [str(d / "*.yaml")]
    world.write_config()
    world.run("run", check_rc=1)
    exp = world.expected()
    gone = sorted(exp["absences"])[:2]
    pid = dict(world.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'absences' "
                         "AND erp_key = ANY(%s)", (gone,)))
    world.sql("DELETE FROM erp.absences WHERE absence_id = ANY(%s)", (gone,))
    plan = world.run("-q", "plan", "--mapping", "absences", check_rc=1)
    assert plan.out.count(" delete ") == 2 and "gone from the source" not in plan.err
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    assert r.summary("absences")["terminated"] == 2
    w = world.writes(world.sandbox.requests(since=seq))
    assert sorted((x["method"], x["path"]) for x in w) == sorted(("DELETE", f"/leave_requests/{pid[k]}") for k in gone)
    left = {str(lr["id"]) for lr in items(world.sandbox.store()["leave_requests"])}
    assert not set(pid.values()) & left
    assert world.sql("SELECT count(*) FROM hrsync.links WHERE mapping = 'absences' AND status = 'deleted' "
                     "AND erp_key = ANY(%s)", (gone,)) == [(2,)]
    seq = world.sandbox.last_seq()
    world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []


def test_progress_of_a_long_mapping_counts_its_source_between_two_fetches(world):
    """A mapping that runs longer than 10 s reports its progress, counting its source rows
    once. The source connection has the cursor's next FETCH in flight (more rows than one
    FETCH, 2,000): the count waits for it. It once ran beside it and broke the connection
    ("reading the source of mapping employees: unknown database error", the run stopped)."""
    cols = ("company, last_name, first_name, patronymic, sex, birth_date, mobile_phone, hire_date, "
            "department_name, job_title, grade, location_name")
    donor = sorted(world.expected()["employees"] - world.expected()["dismissed"])[0]
    world.sql("INSERT INTO erp.employees (personnel_number, email, %s) "
              "SELECT 'BULK' || lpad(n::text, 5, '0'), 'bulk' || n || '@example.com', %s "
              "FROM erp.employees, generate_series(1, 2400) AS n WHERE personnel_number = %%s" % (cols, cols),
              (donor,))
    total = world.sql("SELECT count(*) FROM erp.employees")[0][0]
    assert total > 2000
    world.write_config(rate="300/s")
    r = world.run("run", "--mapping", "employees", check_rc=1)
    assert "database error" not in r.err, r.err[-3000:]
    shown = re.findall(r"progress: employees ([\d,]*\d)/([\d,]*\d)", r.err)
    assert shown and all(t == f"{total:,}" for _, t in shown), (shown, total)
    assert r.summary("employees")["created"] > 2400


def test_the_lookup_lists_are_read_side_by_side_before_the_first_mapping(world):
    """Every lookup list of the run's mappings is asked for at once: with each answer 300 ms
    late, one after the other they would hold the run 300 ms each before its first read."""
    world.sandbox.config(delay_ms=300)
    try:
        seq = world.sandbox.last_seq()
        world.run("-q", "plan", check_rc=None)
    finally:
        world.sandbox.config(delay_ms=0)
    lists = ("departments", "positions", "locations", "job_levels", "asset_categories")
    gets = [r for r in world.sandbox.requests(since=seq)
            if r["method"] == "GET" and r["path"].rsplit("/", 1)[-1] in lists]
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in gets) == sorted(lists), gets
    arrived = [r["arrived"] for r in gets]
    assert max(arrived) - min(arrived) < 0.2, arrived
