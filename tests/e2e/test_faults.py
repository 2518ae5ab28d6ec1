"""Exit codes and fault paths: lock held, bad config, database unreachable, a platform
that keeps failing. (Refused credentials, answers lost after the platform acted and runs
killed at any moment: test_contract.py, for every connector.)"""
import os


def test_another_run_holding_the_lock_exits_75(world):
    world.run("db", "migrate", check_rc=0)
    c = world.cluster.connect(world.db)
    log = os.path.join(world.cluster.dir, "postgres.log")
    start = os.path.getsize(log)
    try:
        c.cursor().execute("""SELECT pg_advisory_lock(hashtext('hrsync:' || '"hrsync"'))""")
        r = world.run("run", check_rc=75)
        assert "another hrsync run holds the lock" in r.err
        assert world.sandbox.requests() == []
    finally:
        c.close()
    # The source session begun beside the state's (so that the server starts it meanwhile)
    # was ended as a session ends, not left half-open: the server logged nothing about it.
    with open(log, errors="replace") as f:
        f.seek(start)
        said = [l for l in f if "unexpected EOF" in l or "incomplete startup" in l or "could not receive" in l]
    assert said == [], said


def test_a_state_schema_newer_than_this_hrsync_stops_the_run_before_anything_is_sent(world):
    # The version is read with the lock, in the same round trip: a newer schema is refused
    # there, the run neither recorded nor sent, the lock let go (a second try says the same).
    world.run("db", "migrate", check_rc=0)
    world.sql("INSERT INTO hrsync.schema_version (version) VALUES (99)")
    runs = world.sql("SELECT count(*) FROM hrsync.runs")
    for _ in range(2):
        r = world.run("run", check_rc=3)
        assert "the state schema is at version 99, newer than this hrsync" in r.err, r.err
    assert world.sandbox.requests() == []
    assert world.sql("SELECT count(*) FROM hrsync.runs") == runs
    world.sql("DELETE FROM hrsync.schema_version WHERE version = 99")
    world.run("run", check_rc=1)  # the demo's rows that fail (test_sync)
    assert world.sql("SELECT count(*) FROM hrsync.runs") == [(runs[0][0] + 1,)]
    assert world.sandbox.requests() != []


def test_mapping_error_exits_2_and_touches_nothing(world, tmp_path):
    bad = tmp_path / "employees.yaml"
    bad.write_text("connector: peopleforce\nentity: employees\nsource: { table: erp.employees, key: personnel_number }\n"
                   "fields:\n  first_name: { fromm: first_name }\n  last_name: { from: last_name, format: dat }\n")
    world.mappings = [str(bad)]
    world.write_config()
    r = world.run("run", check_rc=2)
    assert f"{bad}:5:17: field 'first_name': unknown rule 'fromm' (did you mean 'from'?)" in r.err
    assert f"{bad}:6:41: field 'last_name': unknown format 'dat' (did you mean 'date'?)" in r.err
    assert r.err.count(f"{bad}:") == 2, r.err  # exactly these two, nothing derived from them
    assert world.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hrsync'") == [(0,)]
    assert world.sandbox.requests() == []


def test_unreachable_database_exits_3_with_a_clear_message(world):
    world.cluster_port, world.cluster.port = world.cluster.port, "1"
    try:
        world.write_config()
        r = world.run("run", check_rc=3)
    finally:
        world.cluster.port = world.cluster_port
    assert "cannot connect to the database" in r.err
    assert world.sandbox.requests() == []


def test_platform_that_keeps_failing_trips_the_breaker_and_the_next_run_finishes(world):
    world.sandbox.faults({"mode": "503", "method": "POST", "path": "^/employees$"})
    try:
        r = world.run("run", check_rc=3)
    finally:
        world.sandbox.clear_faults()
    assert "stopped for this run" in r.err
    posts = [x for x in world.sandbox.requests() if x["method"] == "POST" and x["path"] == "/employees"]
    assert 0 < len(posts) < 40, len(posts)  # the breaker stopped it early
    world.run("run", check_rc=1)
    world.assert_end_state()
