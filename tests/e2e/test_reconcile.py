"""`hrsync reconcile` (issue #15): people edit records by hand on the platform; reconcile
reports exactly what they did, --repair fixes what is safe, and a second reconcile reports
only what a person must decide (the duplicate and the orphan that matches nothing)."""
import json
import os
import re

import pytest


def linked(world, mapping, status="active"):
    """ERP key -> platform id of the mapping's links in that status."""
    return dict(world.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = %s AND status = %s "
                          "AND payload IS NOT NULL ORDER BY erp_key", (mapping, status)))


def findings(result):
    doc = json.loads(result.out)
    return {(f["mapping"], f["key"], f["kind"], f["platform_id"]) for f in doc["findings"]}, doc


def new_erp_employee(world, like, key, email):
    """A row of erp.employees copied from `like` with another key and e-mail (a new hire)."""
    cols = [c for (c,) in world.sql("SELECT column_name FROM information_schema.columns WHERE table_schema = 'erp' "
                                    "AND table_name = 'employees' ORDER BY ordinal_position")]
    rest = [c for c in cols if c not in ("personnel_number", "email")]
    world.sql(f"INSERT INTO erp.employees (personnel_number, email, {', '.join(rest)}) "
              f"SELECT %s, %s, {', '.join(rest)} FROM erp.employees WHERE personnel_number = %s", (key, email, like))


# ---------------------------------------------------------------- PeopleForce

def pf_hand_edits(world):
    """The hand edits of the issue on PeopleForce; returns what reconcile must report."""
    emps = linked(world, "employees")
    keys = sorted(emps)
    drift_key, gone_key, dup_key, like = keys[3], keys[7], keys[11], keys[15]
    sb = world.sandbox
    # a changed value
    st, body = sb.api("PUT", f"/employees/{emps[drift_key]}", {"last_name": "Hand-Edited", "mobile_number": "+1 555"})
    assert st == 200, body
    # a deleted record
    sb.call("DELETE", f"/employees/{emps[gone_key]}")
    # a duplicate: the same person typed in again (same employee number, another e-mail)
    dup = sb.call("POST", "/employees", {"first_name": "Dup", "last_name": "Licate", "employee_number": dup_key,
                                         "email": "duplicate.by.hand@example.com"})["data"]["id"]
    # an orphan that matches: HR created a new hire by hand before the nightly run
    new_erp_employee(world, like, "HAND-0001", "hand.made@example.com")
    st, body = sb.api("POST", "/employees", {"first_name": "Hand", "last_name": "Made", "employee_number": "HAND-0001",
                                              "email": "hand.made@example.com"})
    assert st == 200, body
    adopt = body["data"]["id"]
    # an orphan that matches nothing
    st, body = sb.api("POST", "/employees", {"first_name": "Nobody", "last_name": "Known",
                                              "employee_number": "NOT-IN-ERP", "email": "nobody@example.com"})
    assert st == 200, body
    stray = body["data"]["id"]
    return {
        ("employees", drift_key, "drift", emps[drift_key]),
        ("employees", gone_key, "gone", emps[gone_key]),
        ("employees", dup_key, "duplicate", str(dup)),
        ("employees", "HAND-0001", "orphan", str(adopt)),
        ("employees", None, "orphan", str(stray)),
    }, dict(drift=drift_key, gone=gone_key, dup=dup_key, adopt=str(adopt), stray=str(stray), dup_id=str(dup))


def test_reconcile_after_a_sync_finds_nothing(world):
    world.run("run", check_rc=1)  # the planted bad rows fail
    before = world.sandbox.last_seq()
    r = world.run("reconcile", check_rc=0)
    assert "Nothing found" in r.out, r.out
    assert re.search(r"totals: 0 drift, 0 gone, 0 orphan \(0 adoptable\), 0 duplicate", r.out), r.out
    # every PeopleForce entity is listed; the leave requests' skip_approval is never read back
    assert "not reconciled" not in r.out, r.out
    assert "not compared (the platform does not return them): peopleforce absences: skip_approval" in r.out, r.out
    # read only: not one write, nothing in the state's runs
    reqs = world.sandbox.requests(before)
    assert reqs and all(q["method"] == "GET" for q in reqs), {q["method"] for q in reqs}
    assert world.sql("SELECT count(*) FROM hrsync.runs WHERE command = 'reconcile'")[0][0] == 0
    # the requests it costs are counted, and are what the sandbox saw
    m = re.search(r"requests: peopleforce (\d+) \((\d+) listing", r.out)
    assert m and int(m.group(1)) == len(reqs), (r.out, len(reqs))


def test_reconcile_reports_hand_edits_and_repair_fixes_the_safe_ones(world, tmp_path):
    world.extra_top = f"metrics: {{ textfile: {tmp_path / 'hrsync.prom'} }}"
    world.write_config()
    world.run("run", check_rc=1)
    want, k = pf_hand_edits(world)

    r = world.run("reconcile", "--mapping", "employees", "--format", "json", check_rc=1)
    got, doc = findings(r)
    assert got == want, (got ^ want)
    by_kind = {f["kind"] + ("+" if f.get("adoptable") else ""): f for f in doc["findings"]}
    drift = next(f for f in doc["findings"] if f["kind"] == "drift")
    fields = {d["field"]: d for d in drift["fields"]}
    assert set(fields) == {"last_name", "mobile_number"}, fields
    assert fields["last_name"]["platform"] == "Hand-Edited"
    assert fields["last_name"]["sent"] == fields["last_name"]["erp"] != "Hand-Edited"
    assert by_kind["orphan+"]["key"] == "HAND-0001"
    dup = next(f for f in doc["findings"] if f["kind"] == "duplicate")
    assert dup["linked_id"] == linked(world, "employees")[k["dup"]]
    # the NIR custom field is compared, and never shown unmasked; nothing is write-only here
    assert doc["write_only"] == {"employees": []}, doc["write_only"]
    assert doc["totals"] == {"drift": 1, "gone": 1, "orphan": 2, "duplicate": 1, "adoptable": 1}

    # the table says the same, one line per finding (drift: one line per field)
    t = world.run("reconcile", "--mapping", "employees", check_rc=1)
    assert re.search(r"employees +%s +drift +\S+ +last_name: sent \"[^\"]+\", platform \"Hand-Edited\", ERP" %
                     re.escape(k["drift"]), t.out), t.out
    assert "totals: 1 drift, 1 gone, 2 orphan (1 adoptable), 1 duplicate" in t.out
    prom = (tmp_path / "hrsync.prom").read_text()
    assert 'hrsync_drift_records{mapping="employees",kind="drift"} 1' in prom, prom
    assert 'hrsync_drift_records{mapping="employees",kind="orphan"} 2' in prom, prom

    before = world.sandbox.last_seq()
    rep = world.run("reconcile", "--mapping", "employees", "--repair", check_rc=1)
    assert "repaired 3, left 2" in rep.out, rep.out
    writes = [q for q in world.sandbox.requests(before) if q["method"] != "GET"]
    # the drifted record gets the ERP's values, the gone one is created again; nothing deleted
    assert not [q for q in writes if q["method"] == "DELETE"], writes
    assert any(q["method"] == "PUT" and q["path"].endswith("/employees/" + linked(world, "employees")[k["drift"]])
               for q in writes), writes
    assert any(q["method"] == "POST" and q["path"].endswith("/employees") for q in writes), writes
    # a normal write: recorded as a run of its own, counted, logged
    runs = world.sql("SELECT id, exit_code FROM hrsync.runs WHERE command = 'reconcile'")
    assert len(runs) == 1, runs
    counts = world.sql("SELECT created, updated FROM hrsync.run_mappings WHERE run_id = %s AND mapping = 'employees'",
                       (runs[0][0],))
    assert counts[0][0] >= 1 and counts[0][1] >= 1, counts
    # the orphan that matched is linked to the record HR made; the gone one has a new record
    emps = linked(world, "employees")
    assert emps["HAND-0001"] == k["adopt"]
    store = {str(e["id"]): e for e in world.sandbox.store()["employees"]}
    assert store[emps[k["drift"]]]["last_name"] != "Hand-Edited"
    assert store[emps[k["gone"]]]["employee_number"] == k["gone"]
    assert k["stray"] in store and k["dup_id"] in store  # never deleted
    prom = (tmp_path / "hrsync.prom").read_text()
    assert 'hrsync_drift_records{mapping="employees",kind="duplicate"} 1' in prom, prom
    assert 'hrsync_drift_records{mapping="employees",kind="drift"} 0' in prom, prom
    assert 'hrsync_records{mapping="employees",outcome="created"}' in prom, prom

    again = world.run("reconcile", "--mapping", "employees", "--format", "json", check_rc=1)
    got, _ = findings(again)
    assert got == {("employees", k["dup"], "duplicate", k["dup_id"]), ("employees", None, "orphan", k["stray"])}, got
    # the nightly run rewrites the metrics file and keeps what the last reconcile found
    world.run("run", check_rc=1)
    prom = (tmp_path / "hrsync.prom").read_text()
    assert 'hrsync_drift_records{mapping="employees",kind="duplicate"} 1' in prom, prom
    assert prom.count("# TYPE hrsync_drift_records gauge") == 1, prom


def test_reconcile_assets_drift_and_gone(world):
    world.use_mappings("employees.yaml", "assets.yaml")
    world.run("run", check_rc=1)
    assets = linked(world, "assets")
    keys = sorted(assets)
    st, body = world.sandbox.api("PUT", f"/assets/{assets[keys[0]]}", {"serial_number": "SN-BY-HAND"})
    assert st == 200, body
    world.sandbox.call("DELETE", f"/assets/{assets[keys[1]]}")
    r = world.run("reconcile", "--mapping", "assets", "--format", "json", check_rc=1)
    got, doc = findings(r)
    assert got == {("assets", keys[0], "drift", assets[keys[0]]), ("assets", keys[1], "gone", assets[keys[1]])}, got
    world.run("reconcile", "--mapping", "assets", "--repair", check_rc=0)
    world.run("reconcile", "--mapping", "assets", check_rc=0)


def test_reconcile_leave_requests_by_their_marker(world):
    """PeopleForce keeps no external id for leave requests: hrsync's marker in the description
    says which are the ERP's. One deleted by hand is gone, a copy of one is a duplicate, a
    request an employee made on PeopleForce (no marker) is none of reconcile's business."""
    world.use_mappings("employees.yaml", "absences.yaml")
    world.run("run", check_rc=1)
    leaves = linked(world, "absences")
    keys = sorted(leaves)
    sb = world.sandbox
    st, _ = sb.api("DELETE", f"/leave_requests/{leaves[keys[0]]}")
    assert st in (200, 204), st
    copy = next(x for x in sb.store()["leave_requests"] if str(x["id"]) == leaves[keys[1]])
    dup = sb.call("POST", "/leave_requests", {k: copy[k] for k in ("employee_id", "leave_type_id", "starts_on",
                                                                     "ends_on", "description")})["data"]["id"]
    own = dict((k, copy[k]) for k in ("employee_id", "leave_type_id", "starts_on", "ends_on"))
    sb.call("POST", "/leave_requests", dict(own, description="asked in PeopleForce", state="pending"))
    r = world.run("reconcile", "--mapping", "absences", "--format", "json", check_rc=1)
    got, doc = findings(r)
    assert got == {("absences", keys[0], "gone", leaves[keys[0]]), ("absences", keys[1], "duplicate", str(dup))}, got
    assert doc["write_only"]["absences"] == ["skip_approval"]
    rep = world.run("reconcile", "--mapping", "absences", "--repair", check_rc=1)
    assert "repaired 1, left 1" in rep.out, rep.out
    got, _ = findings(world.run("reconcile", "--mapping", "absences", "--format", "json", check_rc=1))
    assert got == {("absences", keys[1], "duplicate", str(dup))}, got


def test_a_repair_the_platform_refuses_is_left(world):
    """A repair is a normal write: when PeopleForce refuses the ERP's values (an e-mail another
    employee has), the record goes to `failures` and reconcile says it is left."""
    world.use_mappings("employees.yaml")
    world.run("run", check_rc=1)
    emps = linked(world, "employees")
    a, b = sorted(emps)[:2]
    st, body = world.sandbox.api("PUT", f"/employees/{emps[a]}", {"first_name": "Hand"})
    assert st == 200, body
    world.sql("UPDATE erp.employees SET email = (SELECT email FROM erp.employees WHERE personnel_number = %s) "
              "WHERE personnel_number = %s", (b, a))
    rep = world.run("reconcile", "--repair", "--format", "json", check_rc=1)
    doc = json.loads(rep.out)
    assert doc["totals"]["repaired"] == 0 and doc["totals"]["left"] == 1, doc["totals"]
    (f,) = doc["findings"]
    assert f["kind"] == "drift" and f["key"] == a and f["repaired"] is False, f
    fails = world.sql("SELECT kind, reason FROM hrsync.failures WHERE mapping = 'employees' AND erp_key = %s", (a,))
    assert fails and fails[0][0] == "refused" and "taken" in fails[0][1], fails


def test_reconcile_usage(world):
    assert world.run("reconcile", "--format", "xml").rc == 2
    assert world.run("reconcile", "--mapping", "nope").rc == 2
    assert world.run("reconcile", "--bogus").rc == 2


# ---------------------------------------------------------------- Personio

def test_personio_reconcile_reports_hand_edits_and_repair_fixes_the_safe_ones(pworld):
    w = pworld
    w.run("run", check_rc=1)
    emps = linked(w, "personio_employees")
    keys = sorted(emps)
    drift_key, gone_key, dup_key, like = keys[2], keys[5], keys[8], keys[12]
    sb = w.sandbox
    sb.call("POST", f"/employees/{emps[drift_key]}", {"last_name": "Hand-Edited"})
    sb.call("DELETE", f"/employees/{emps[gone_key]}")
    # the same person twice: typed in again, then given the e-mail the first record has
    dup_email = w.sql("SELECT payload->>'email' FROM hrsync.links WHERE mapping = 'personio_employees' "
                      "AND erp_key = %s", (dup_key,))[0][0]
    dup = str(sb.call("POST", "/employees", {"first_name": "Dup", "last_name": "Licate",
                                             "email": "dup.tmp@example.com"})["id"])
    sb.call("POST", f"/employees/{dup}", {"email": dup_email})
    new_erp_employee(w, like, "HAND-0001", "hand.made@example.com")
    adopt = str(sb.call("POST", "/employees", {"first_name": "Hand", "last_name": "Made",
                                               "email": "hand.made@example.com"})["id"])
    stray = str(sb.call("POST", "/employees", {"first_name": "Nobody", "last_name": "Known",
                                               "email": "nobody@example.com"})["id"])
    want = {
        ("personio_employees", drift_key, "drift", emps[drift_key]),
        ("personio_employees", gone_key, "gone", emps[gone_key]),
        ("personio_employees", dup_key, "duplicate", dup),
        ("personio_employees", "HAND-0001", "orphan", adopt),
        ("personio_employees", None, "orphan", stray),
    }
    r = w.run("reconcile", "--format", "json", check_rc=1)
    got, doc = findings(r)
    assert got == want, (got ^ want)
    drift = next(f for f in doc["findings"] if f["kind"] == "drift")
    assert [d["field"] for d in drift["fields"]] == ["last_name"], drift
    # Personio answers a date as a datetime, a department as an object: read back as sent, no false drift
    assert doc["totals"]["drift"] == 1

    rep = w.run("reconcile", "--repair", check_rc=1)
    assert "repaired 3, left 2" in rep.out, rep.out
    assert w.sql("SELECT count(*) FROM hrsync.runs WHERE command = 'reconcile'")[0][0] == 1
    assert linked(w, "personio_employees")["HAND-0001"] == adopt
    again = w.run("reconcile", "--format", "json", check_rc=1)
    got, _ = findings(again)
    assert got == {("personio_employees", dup_key, "duplicate", dup), ("personio_employees", None, "orphan", stray)}, got


# ---------------------------------------------------------------- every connector

WRITE_ONLY = {
    "peopleforce": {"absences": {"skip_approval"}}, "personio": {}, "troops": {},
    "teamtailor": {"teamtailor_users": {"relationships.department", "relationships.location"}},
    "workelo": {"workelo_employees": {"identifications.grade", "identifications.matricule"}},
}


def test_reconcile_after_a_complete_sync_finds_nothing_on_any_platform(cworld):
    """No false drift: what each platform answers reads back as what hrsync sent (dates as
    datetimes, names for ids, wrapped values, JSON:API relationships); an entity a connector
    cannot list is named, not reconciled."""
    w = cworld
    w.run("run", check_rc=w.first_run_rc)
    before = w.sandbox.last_seq()
    r = w.run("reconcile", "--format", "json")
    doc = json.loads(r.out)
    # what each platform does not return, listed once (the rest was compared)
    assert {m: set(f) for m, f in doc["write_only"].items() if f} == WRITE_ONLY[w.name], doc["write_only"]
    assert doc["findings"] == [] and r.rc == 0, (r.out[:3000], r.err[-3000:])
    reqs = w.sandbox.requests(before)
    assert all(q["method"] == "GET" or q["path"].endswith("/token") for q in reqs), {(q["method"], q["path"]) for q in reqs}
    listable = {m for m in doc["listed"]}
    unlisted = " ".join(doc["not_listed"])
    for m in w.push_mappings:
        assert m in listable or m in unlisted, (m, doc["listed"], doc["not_listed"])
