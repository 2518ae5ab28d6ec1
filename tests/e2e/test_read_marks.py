"""Read marks (issue 18, source.h): after a run in which every record of a mapping ended in
step or with its failure recorded, a night with no change reads the mirror alone, no join
with the links, and tries the failing records again; at the first stretch of rows that
differs from its mark, the read goes on joined, as without marks. A mark speaks for the links
and the set of failing records as that run left them: a link written or deleted, a failure
recorded for another record or cleared forget the mapping's marks (triggers), so a link
deleted by hand brings the joined read back, and nothing the state says is missed."""

import os
import time

from harness import items

MARK_ROWS = 500     # SOURCE_MARK_ROWS (source.h)


def link(world, key):
    r = world.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'employees' AND erp_key = %s", (key,))
    return r[0][0] if r else None


def platform_employees(world, number):
    return [e for e in items(world.sandbox.store()["employees"]) if e["employee_number"] == number]


def marks(world):
    return world.sql("SELECT seq, rows, last_key, digest, written_at FROM hrsync.read_marks "
                     "WHERE mapping = 'employees' ORDER BY seq")


def writes_since(world, seq):
    return world.writes(world.sandbox.requests(since=seq))


def settle(world, *mappings):
    """Run until every record of these shipped mappings is in step: the rows that fail or wait
    (and, for absences, those of an employee that is gone) are taken out of the mirror."""
    for _ in range(4):
        r = world.run("run")
        if r.rc == 0:
            return r
        for m, table, col in (("employees", "erp.employees", "personnel_number"),
                              ("absences", "erp.absences", "absence_id")):
            if m in mappings:
                world.sql(f"DELETE FROM {table} WHERE {col} IN "
                          "(SELECT erp_key FROM hrsync.failures WHERE mapping = %s)", (m,))
        if "absences" in mappings:
            world.sql("DELETE FROM erp.absences a WHERE NOT EXISTS (SELECT 1 FROM erp.employees e "
                      "WHERE e.personnel_number = a.personnel_number)")
        world.sql("DELETE FROM hrsync.failures")
    raise AssertionError("the mirror did not settle:\n" + r.err[-3000:])


def clean_employees(world, copies=3):
    """The demo mirror's employees, four times over with new keys and e-mails (more than
    two batches of marks), less the rows a run fails: a mapping whose every record is in step."""
    world.use_mappings("employees.yaml")
    world.write_config(rate="2000/s")
    for i in range(1, copies + 1):
        world.sql(f"""INSERT INTO erp.employees (personnel_number, company, last_name, first_name, patronymic, sex,
                          birth_date, email, personal_email, mobile_phone, nir, hire_date, dismissal_date,
                          dismissal_reason, department_name, job_title, grade, location_name)
                      SELECT 'M{i}' || personnel_number, company, last_name, first_name, patronymic, sex,
                          birth_date, 'm{i}.' || email, 'm{i}.' || personal_email, mobile_phone, NULL, hire_date,
                          dismissal_date, dismissal_reason, department_name, job_title, grade, location_name
                      FROM erp.employees WHERE personnel_number NOT LIKE 'M%%'""")
    settle(world, "employees")
    r = world.run("run", check_rc=0)      # the lookup lists it created are in its generation now
    n = world.sql("SELECT count(*) FROM erp.employees")[0][0]
    assert n > 2 * MARK_ROWS, n
    return n, r


def sessions_of(world, run):
    """The database sessions a run of hrsync made (pg_stat_database counts every session that
    has ended; the run's have when it exits, and their count is flushed within a moment)."""
    c = world.cluster.connect(world.db)
    c.autocommit = True
    try:
        cur = c.cursor()

        def count():
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
            return cur.fetchone()[0]
        before = count()
        r = run()
        deadline, n = time.time() + 5, count() - before
        while time.time() < deadline:
            time.sleep(0.2)
            n = count() - before
        return r, n
    finally:
        c.close()


def test_a_night_with_no_change_reads_the_mirror_alone_and_sends_nothing(world):
    n, r = clean_employees(world)
    m = marks(world)
    # after every full batch of rows, and at the end
    assert [s for s, *_ in m] == list(range(n // MARK_ROWS + 1)), [s for s, *_ in m]
    assert m[0][1] == n and m[-1][1] == (n // MARK_ROWS) * MARK_ROWS
    stamp = [w for *_, w in m]

    seq = world.sandbox.last_seq()
    r, made = sessions_of(world, lambda: world.run("run", check_rc=0))
    assert f"read marks: all {n} rows in step" in r.err, r.err[-3000:]
    s = r.summary("employees")
    assert (s["unchanged"], s["created"], s["updated"], s["failed"]) == (n, 0, 0, 0), s
    assert writes_since(world, seq) == []
    assert [w for *_, w in marks(world)] == stamp          # nothing changed: not written again
    # One database session: the source (the same role as the state's) read on the run's own,
    # the state needing none of its own while the read went on.
    assert made == 1, made


def test_a_changed_row_is_found_and_the_rows_before_its_stretch_are_not_joined(world):
    n, _ = clean_employees(world)
    keys = [k for k, in world.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NULL "
                                  "ORDER BY personnel_number")]
    before = {s: d for s, _, _, d, _ in marks(world)}
    # a row of the third batch
    k = world.sql("SELECT personnel_number FROM erp.employees ORDER BY personnel_number OFFSET %s LIMIT 1",
                  (2 * MARK_ROWS + 7,))[0][0]
    assert k in keys
    world.sql("UPDATE erp.employees SET last_name = last_name || '-Neuf' WHERE personnel_number = %s", (k,))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=0)
    assert f"read marks: the first {2 * MARK_ROWS} rows in step" in r.err, r.err[-3000:]
    s = r.summary("employees")
    assert (s["updated"], s["created"], s["unchanged"]) == (1, 0, n - 1), s
    w = writes_since(world, seq)
    assert len(w) == 1 and w[0]["method"] in ("PUT", "PATCH"), w
    (e,) = platform_employees(world, k)
    assert str(e["id"]) == link(world, k) and e["last_name"].endswith("-Neuf")
    after = {s: d for s, _, _, d, _ in marks(world)}
    assert after[1] == before[1] and after[2] == before[2]      # the stretch before: as it was
    assert set(after) == set(before)
    assert all(after[s] != before[s] for s in after if s == 0 or s >= 3)    # from the change on: new digests
    # and the night after reads the mirror alone again
    r = world.run("run", check_rc=0)
    assert f"read marks: all {n} rows in step" in r.err


def test_a_link_changed_forgets_the_marks_and_a_failing_record_is_tried_every_night(world):
    n, _ = clean_employees(world)
    assert marks(world)
    # A link deleted by hand (as `reconcile --repair` does for a record gone from the
    # platform), in a stretch of rows that did not change: the marks go with it ...
    k = world.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NULL "
                  "ORDER BY personnel_number OFFSET 3 LIMIT 1")[0][0]
    pid = link(world, k)
    world.sql("DELETE FROM hrsync.links WHERE mapping = 'employees' AND erp_key = %s", (k,))
    assert marks(world) == []
    # ... so the next run joins the links, sees the record unlinked, finds it on the platform
    # by its employee number and links it again: no second copy.
    r = world.run("run", check_rc=0)
    assert "read marks: all" not in r.err
    assert link(world, k) == pid
    assert len(platform_employees(world, k)) == 1
    assert len(marks(world)) == n // MARK_ROWS + 1

    # A record that fails: its new failure forgets the marks; the run that recorded it stores
    # the marks of its read, the failing record with them ...
    world.sql("UPDATE erp.employees SET last_name = NULL WHERE personnel_number = %s", (k,))
    r = world.run("run", check_rc=1)
    assert "read marks: the first 0 rows in step" in r.err, r.err[-3000:]
    assert r.summary("employees")["failed"] == 1
    stamp = [w for *_, w in marks(world)]
    assert len(stamp) == n // MARK_ROWS + 1
    # ... so the next night reads the mirror alone, and tries the failing record again (not
    # taken as in step): the same failure, rewritten, keeps the marks.
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    assert f"read marks: all {n} rows as the last run left them (the links were not read); " \
        "its 1 record(s) failing or waiting tried again" in r.err, r.err[-3000:]
    s = r.summary("employees")
    assert (s["failed"], s["unchanged"], s["updated"]) == (1, n - 1, 0), s
    assert f"{k}" in r.err and "last_name" in r.err
    assert writes_since(world, seq) == []
    assert [w for *_, w in marks(world)] == stamp
    assert world.sql("SELECT kind FROM hrsync.failures WHERE mapping = 'employees' AND erp_key = %s", (k,)) == \
        [("mapping",)]
    # ... and once fixed, the run that settles it stores them again.
    world.sql("UPDATE erp.employees SET last_name = 'Réparé' WHERE personnel_number = %s", (k,))
    r = world.run("run", check_rc=0)
    assert r.summary("employees")["updated"] == 1
    assert world.sql("SELECT count(*) FROM hrsync.failures")[0][0] == 0
    assert len(marks(world)) == n // MARK_ROWS + 1
    r = world.run("run", check_rc=0)
    assert f"read marks: all {n} rows in step" in r.err


def test_a_new_row_between_two_marks_is_created(world):
    n, _ = clean_employees(world)
    k = world.sql("SELECT personnel_number FROM erp.employees ORDER BY personnel_number OFFSET %s LIMIT 1",
                  (MARK_ROWS + 3,))[0][0]
    new = k + "A"     # sorts right after k: in the second batch
    world.sql("""INSERT INTO erp.employees (personnel_number, company, last_name, first_name, sex, birth_date, email,
                     hire_date, department_name, job_title, grade, location_name)
                 SELECT %s, company, 'Nouveau', first_name, sex, birth_date, 'nouveau.' || email, hire_date,
                     department_name, job_title, grade, location_name FROM erp.employees WHERE personnel_number = %s""",
              (new, k))
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=0)
    assert f"read marks: the first {MARK_ROWS} rows in step" in r.err, r.err[-3000:]
    s = r.summary("employees")
    assert (s["created"], s["unchanged"]) == (1, n), s
    assert link(world, new)
    assert any(w["method"] == "POST" for w in writes_since(world, seq))
    assert marks(world)[0][1] == n + 1


def test_cancelled_absences_count_skipped_on_a_night_read_by_the_marks(world):
    """A cancelled absence never sent is skipped (nothing to delete). A night read by the
    marks alone counts it skipped too, not unchanged: the summary is the joined read's."""
    world.use_mappings("employees.yaml", "absences.yaml")
    world.write_config(rate="2000/s")
    settle(world, "employees", "absences")
    cancelled = world.sql("SELECT count(*) FROM erp.absences a WHERE status = 'cancelled' AND NOT EXISTS "
                          "(SELECT 1 FROM hrsync.links l WHERE l.mapping = 'absences' AND l.erp_key = a.absence_id)")[0][0]
    assert cancelled > 0
    world.sql("DELETE FROM hrsync.read_marks")
    joined = world.run("run", check_rc=0)
    assert "read marks:" not in joined.err
    night = world.run("run", check_rc=0)
    n = world.sql("SELECT count(*) FROM erp.absences")[0][0]
    lines = [l for l in night.err.splitlines() if "read marks: all" in l]
    assert any(f"all {n} rows in step" in l for l in lines), night.err[-3000:]
    sj, sn = joined.summary("absences"), night.summary("absences")
    assert sj["skipped"] == cancelled, sj
    drop = ("seconds",)
    assert {k: v for k, v in sn.items() if k not in drop} == {k: v for k, v in sj.items() if k not in drop}, (sj, sn)


def test_no_marks_without_a_unique_key_or_for_a_mapping_that_references_itself(world):
    """Marks are kept in key order and resumed with `key > last`: a key the mirror does not
    keep unique could put two rows on either side of a mark, so such a mapping joins every
    night; so does a mapping whose records reference each other (the order it sends them in
    is not the key's)."""
    n, _ = clean_employees(world)
    assert marks(world)
    world.sql("ALTER TABLE erp.employees DROP CONSTRAINT employees_pkey")
    world.sql("DELETE FROM hrsync.read_marks")
    for _ in range(2):
        r = world.run("run", check_rc=0)
        assert "read marks:" not in r.err
        assert r.summary("employees")["unchanged"] == n
    assert marks(world) == []

    world.sql("ALTER TABLE erp.employees ADD PRIMARY KEY (personnel_number)")
    world.sql("ALTER TABLE erp.employees ADD COLUMN manager_number text")
    with open(os.path.join(world.mapping_dir, "employees.yaml")) as f:
        text = f.read()
    anchor = "    job_level_id:"
    assert anchor in text
    text = text.replace(anchor, '    reporting_to_id: { ref: "erp:{manager_number}", ref_mapping: employees }\n' + anchor, 1)
    path = os.path.join(world.dir, "employees.yaml")
    with open(path, "w") as f:
        f.write(text)
    world.mappings = [path]
    world.write_config(rate="2000/s")
    for _ in range(2):
        r = world.run("run", check_rc=0)
        assert "read marks:" not in r.err
    assert marks(world) == []


def test_failures_rewritten_each_night_run_no_trigger_and_a_moved_failure_forgets_the_marks(world):
    n, _ = clean_employees(world)
    k = world.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NULL "
                  "ORDER BY personnel_number OFFSET 7 LIMIT 1")[0][0]
    world.sql("UPDATE erp.employees SET last_name = NULL WHERE personnel_number = %s", (k,))
    world.run("run", check_rc=1)
    stamp = [w for *_, w in marks(world)]
    assert len(stamp) == n // MARK_ROWS + 1
    # The night that records the failing record again calls no trigger function on failures
    # (state v7: row triggers, the update's only for a failure moved to another record).
    world.cluster.admin(f'ALTER DATABASE "{world.db}" SET track_functions = \'pl\'')
    try:
        world.sql("SELECT pg_stat_reset()")
        r = world.run("run", check_rc=1)
        assert "its 1 record(s) failing or waiting tried again" in r.err, r.err[-3000:]
        assert world.sql("SELECT attempts FROM hrsync.failures WHERE erp_key = %s", (k,)) == [(2,)]
        calls = world.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
                          "WHERE schemaname = 'hrsync' AND funcname LIKE 'forget_read_marks%%'")[0][0]
        assert calls == 0, calls
    finally:
        world.cluster.admin(f'ALTER DATABASE "{world.db}" RESET track_functions')
    assert [w for *_, w in marks(world)] == stamp
    # A failure moved by hand to another record forgets the marks ...
    other = world.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NULL "
                      "ORDER BY personnel_number OFFSET 9 LIMIT 1")[0][0]
    world.sql("UPDATE hrsync.failures SET erp_key = %s WHERE erp_key = %s", (other, k))
    assert marks(world) == []
    # ... and so does a failure recorded by hand for a record that had none.
    world.run("run", check_rc=1)
    assert len(marks(world)) == n // MARK_ROWS + 1
    world.sql("INSERT INTO hrsync.failures (mapping, erp_key, kind, reason) "
              "VALUES ('employees', %s, 'mapping', 'by hand')", (other,))
    assert marks(world) == []
