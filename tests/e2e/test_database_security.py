"""Issue #19, the database side: what the roles hrsync connects as can do, and what the
mappings' SQL can do with them.

- 3: a pull mapping writes only to the schemas of database.inbound_schemas (default
  [erp_inbound]), never to the state schema: a mapping error (exit 2, file:line:col).
- 4: the mappings' SQL (where, terminate.when, query) runs in a read-only snapshot that is
  bounded (database.statement_timeout), cancelled on the server when the run is asked to stop,
  dropped by the server when hrsync is killed; `hrsync db grants` prints least-privilege roles
  (a source role that reads only, even large objects and pg_notify revoked), and
  `check --online` warns when the source's role can write.
- 13: `db migrate` and `run` work for a role that owns a state schema made for it by a DBA
  and has no CREATE on the database.

Roles are made in the test cluster (trust authentication on its socket) and dropped after.
"""
import os
import re
import shutil
import signal
import subprocess
import uuid

import pytest

from checks import wait_for
from harness import ROOT, items

MAPS = os.path.join(ROOT, "mappings", "peopleforce")
SLEEP_WHERE = "(SELECT pg_sleep(600)) IS NOT NULL"


@pytest.fixture
def roles(world):
    """make(prefix) creates a LOGIN role (no other privilege) and returns its name; every
    role made is dropped after the test, with what it owns in the test database."""
    made = []

    def make(prefix):
        name = f"{prefix}_{uuid.uuid4().hex[:6]}"
        world.cluster.admin(f'CREATE ROLE "{name}" LOGIN')
        made.append(name)
        return name

    yield make
    for name in reversed(made):
        try:
            world.sql(f'DROP OWNED BY "{name}" CASCADE')
        finally:
            world.cluster.admin(f'DROP ROLE IF EXISTS "{name}"')


def conninfo_as(world, role):
    return world.cluster.conninfo(world.db).replace(f"user={world.cluster.user}", f"user={role}")


def database_keys(world, *lines):
    """The world's config with these lines added to its database: section."""
    world.write_config()
    with open(world.path) as f:
        text = f.read()
    anchor = "  state_schema: hrsync\n"
    assert anchor in text
    text = text.replace(anchor, anchor + "".join(f"  {l}\n" for l in lines))
    with open(world.path, "w") as f:
        f.write(text)


def set_conninfo(world, role):
    with open(world.path) as f:
        text = f.read()
    text = text.replace(f'conninfo: "{world.cluster.conninfo(world.db)}"', f'conninfo: "{conninfo_as(world, role)}"')
    with open(world.path, "w") as f:
        f.write(text)


def employees_only(world, tmp_path, where=None):
    """The shipped employees mapping alone, its source narrowed by where."""
    with open(os.path.join(MAPS, "employees.yaml")) as f:
        text = f.read()
    if where:
        text = text.replace("  key: personnel_number\n", f"  key: personnel_number\n  where: \"{where}\"\n", 1)
    p = tmp_path / "employees.yaml"
    p.write_text(text)
    world.mappings = [str(p)]
    world.write_config()


def sleeping_backends(world):
    return world.sql("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event = 'PgSleep'", (world.db,))


# ---------------------------------------------------------------- 3: pull targets

PULL_INTO = """connector: peopleforce
entity: absences
direction: pull
filter: {{ state: approved }}
target: {{ table: {table}, key: [mapping, erp_key] }}
fields:
  mapping:     {{ value: employees }}
  erp_key:     {{ value: "{key}" }}
  platform_id: {{ value: "666" }}
"""


def test_pull_mapping_cannot_target_the_state_schema(world, tmp_path):
    world.run("run", check_rc=1)
    key, pid = world.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'employees' "
                         "AND status = 'active' ORDER BY erp_key LIMIT 1")[0]
    # A record for the pull to bring in: a leave request asked for and approved on the platform.
    emp = next(e["id"] for e in items(world.sandbox.store()["employees"]) if e["active"])
    world.sandbox.call("POST", "/leave_requests", {"employee_id": emp, "leave_type_id": 101, "starts_on": "2026-12-21",
                                                   "ends_on": "2026-12-24", "description": "asked in the web UI",
                                                   "state": "approved"})
    evil = tmp_path / "links_pull.yaml"
    evil.write_text(PULL_INTO.format(table="hrsync.links", key=key))
    world.mappings = [os.path.join(MAPS, "*.yaml"), str(evil)]
    world.write_config()
    r = world.run("check", check_rc=2)
    assert re.search(r"links_pull\.yaml:5:18: target table 'hrsync\.links': hrsync is hrsync's state schema", r.err), r.err
    r = world.run("run", check_rc=2)
    assert "links_pull.yaml:5:18:" in r.err, r.err[-2000:]
    assert world.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'employees' AND erp_key = %s",
                     (key,)) == [(pid,)]


def test_pull_target_must_be_in_an_inbound_schema(world, tmp_path):
    other = tmp_path / "employees_pull.yaml"
    other.write_text(PULL_INTO.format(table="erp.employees", key="000001"))
    world.mappings = [os.path.join(MAPS, "*.yaml"), str(other)]
    world.write_config()
    r = world.run("check", check_rc=2)
    assert re.search(r"employees_pull\.yaml:5:18: target table 'erp\.employees': schema erp is not an inbound "
                     r"schema \(database inbound_schemas: \[erp_inbound\], the default\); add it there", r.err), r.err
    assert "1 error(s)" in r.err, r.err  # the shipped pull mapping (erp_inbound.absences) is fine by default
    # A schema without a name, too.
    other.write_text(PULL_INTO.format(table="employees", key="000001"))
    r = world.run("check", check_rc=2)
    assert "target table 'employees': name its schema" in r.err, r.err
    # Named as inbound, it is one.
    other.write_text(PULL_INTO.format(table="erp.employees", key="000001"))
    database_keys(world, "inbound_schemas: [erp_inbound, erp]")
    world.run("check", check_rc=0)
    # The state schema can never be one.
    database_keys(world, "inbound_schemas: [erp_inbound, hrsync]")
    r = world.run("check", check_rc=2)
    assert re.search(r"hrsync\.yaml:4:\d+: database inbound_schemas: 'hrsync' is the state schema", r.err), r.err


# ---------------------------------------------------------------- 4: the source session

def test_statement_timeout_bounds_the_source_query(world, tmp_path):
    employees_only(world, tmp_path, where=SLEEP_WHERE)
    database_keys(world, "statement_timeout: 2s")
    r = world.run("run", timeout=120)
    assert r.rc == 3, r.err[-2000:]
    assert r.seconds < 60, r.seconds
    assert "database statement_timeout" in r.err and "statement timeout" in r.err, r.err[-2000:]
    assert not sleeping_backends(world)


def test_sigterm_cancels_the_running_source_query(world, tmp_path):
    employees_only(world, tmp_path, where=SLEEP_WHERE)
    log = tmp_path / "run.log"
    p = world.start("run", log=str(log))
    try:
        wait_for(lambda: sleeping_backends(world), 60, "the source query to start")
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = log.read_text()
    assert rc == 3, out[-2000:]
    assert "asked to stop" in out and "cancelled" in out, out[-2000:]
    assert "AddressSanitizer" not in out and "LeakSanitizer" not in out, out[-3000:]
    wait_for(lambda: not sleeping_backends(world), 5, "the source query to end")


def test_killed_run_leaves_no_source_query_running(world, tmp_path):
    employees_only(world, tmp_path, where=SLEEP_WHERE)
    p = world.start("run", log=str(tmp_path / "run.log"))
    try:
        wait_for(lambda: sleeping_backends(world), 60, "the source query to start")
    finally:
        p.kill()
        p.wait()
    # The server notices the client is gone (client_connection_check_interval) and ends the query.
    wait_for(lambda: not sleeping_backends(world), 30, "the server to end the query of a killed client")


def test_check_online_warns_when_the_source_role_can_write(world, roles):
    r = world.run("check", "--online", check_rc=0)
    assert re.search(r"hrsync\.yaml:2:\d+: warning: database: the mappings' SQL \(where, terminate\.when, query\) "
                     r"runs as a role that can write: hrsync is a superuser\. `hrsync db grants` prints", r.err), r.err
    # One ordinary role for everything: it owns the state schema, writes the inbound table, and
    # may still call the large-object functions.
    role = roles("hrsync_one")
    world.sql(f'CREATE SCHEMA hrsync AUTHORIZATION "{role}"; GRANT USAGE ON SCHEMA erp TO "{role}"; '
              f'GRANT SELECT ON ALL TABLES IN SCHEMA erp TO "{role}"; GRANT USAGE ON SCHEMA erp_inbound TO "{role}"; '
              f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA erp_inbound TO "{role}"')
    set_conninfo(world, role)
    r = world.run("check", "--online", check_rc=0)
    warning = next((l for l in r.err.splitlines() if "runs as a role that can write" in l), "")
    assert "erp_inbound.absences" in warning and "schema(s) hrsync" in warning and "lo_from_bytea" in warning \
        and "pg_notify" in warning, r.err


def test_source_role_from_db_grants_cannot_store_large_objects_or_notify(world, tmp_path, roles):
    state, reader = roles("hrsync_state"), roles("hrsync_reader")
    world.mappings = [os.path.join(MAPS, "*.yaml")]
    database_keys(world, f'source_conninfo: "{conninfo_as(world, reader)}"')
    set_conninfo(world, state)
    grants = world.run("db", "grants", check_rc=0).out
    assert f"CREATE SCHEMA IF NOT EXISTS hrsync AUTHORIZATION {state};" in grants, grants
    assert f"GRANT SELECT ON ALL TABLES IN SCHEMA erp TO {reader};" in grants, grants
    assert "lo_from_bytea(oid, bytea)" in grants and "pg_notify(text, text)" in grants, grants
    world.sql(grants)  # as the cluster's superuser, as a DBA would
    assert world.sql("SELECT has_database_privilege(%s, current_database(), 'CREATE')", (state,)) == [(False,)]

    # Both roles do their work: a whole run (push and pull) goes through, and check --online
    # finds nothing the source's role could write.
    world.run("run", check_rc=1)
    assert world.sql("SELECT count(*) FROM hrsync.links")[0][0] > 0
    r = world.run("check", "--online", check_rc=0)
    assert "runs as a role that can write" not in r.err, r.err

    # The mapping's SQL cannot store another schema's data in large objects, nor notify.
    for where, function in (("lo_from_bytea(0, convert_to(first_name, 'UTF8')) IS NOT NULL", "lo_from_bytea"),
                            ("pg_notify('hrsync_leak', first_name) IS NULL", "pg_notify")):
        employees_only(world, tmp_path, where=where)
        database_keys(world, f'source_conninfo: "{conninfo_as(world, reader)}"')
        set_conninfo(world, state)
        r = world.run("run")
        assert r.rc == 3, r.err[-2000:]
        assert f"permission denied for function {function}" in r.err, r.err[-2000:]
    assert world.sql("SELECT count(*) FROM pg_largeobject_metadata") == [(0,)]


def test_a_source_role_that_may_not_read_the_read_marks_reads_the_links_joined(world, roles):
    """The read marks (issue 18) are read with the source's snapshot, as its role: one that may
    read the links and failures but not read_marks (granted before an upgrade added it) still
    syncs, every row joined to its links, and says why."""
    state, reader = roles("hrsync_state"), roles("hrsync_reader")
    world.use_mappings("employees.yaml")
    database_keys(world, f'source_conninfo: "{conninfo_as(world, reader)}"')
    set_conninfo(world, state)
    world.sql(world.run("db", "grants", check_rc=0).out)
    first = world.run("run")
    assert first.rc in (0, 1), first.err[-2000:]
    night = world.run("run")
    assert night.rc == first.rc and "read marks: all" in night.err, night.err[-3000:]
    links = world.sql("SELECT mapping, erp_key, platform_id, status, fingerprint FROM hrsync.links ORDER BY 1, 2")

    world.sql(f'REVOKE SELECT ON hrsync.read_marks FROM "{reader}"')
    seq = world.sandbox.last_seq()
    r = world.run("run")
    assert r.rc == night.rc, r.err[-3000:]
    assert re.search(r"mapping employees: its read marks could not be read \(.*permission denied for table "
                     r"read_marks.*\): the links are joined to every row", r.err), r.err[-3000:]
    assert "read marks: all" not in r.err, r.err[-3000:]
    assert counts(r) == counts(night), (counts(r), counts(night))
    assert world.writes(world.sandbox.requests(since=seq)) == [], r.err[-3000:]
    assert world.sql("SELECT mapping, erp_key, platform_id, status, fingerprint FROM hrsync.links ORDER BY 1, 2") \
        == links


def counts(r):
    """The employees mapping's summary counts, less its seconds."""
    c = r.summary("employees")
    c.pop("seconds")
    return c


# ---------------------------------------------------------------- 13: a schema made by a DBA

def test_migrate_needs_no_create_on_the_database_for_a_role_owning_its_schema(world, roles):
    role = roles("hrsync_owner")
    world.sql(f'CREATE SCHEMA hrsync AUTHORIZATION "{role}"; GRANT USAGE ON SCHEMA erp TO "{role}"; '
              f'GRANT SELECT ON ALL TABLES IN SCHEMA erp TO "{role}"; GRANT USAGE ON SCHEMA erp_inbound TO "{role}"; '
              f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA erp_inbound TO "{role}"')
    assert world.sql("SELECT has_database_privilege(%s, current_database(), 'CREATE')", (role,)) == [(False,)]
    set_conninfo(world, role)
    r = world.run("db", "migrate", check_rc=0)
    assert "state schema hrsync is at version" in r.err, r.err
    world.run("run", check_rc=1)
    assert world.sql("SELECT count(*) FROM hrsync.links")[0][0] > 0
    assert world.sql("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'hrsync'") == [(role,)]
