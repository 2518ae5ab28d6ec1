"""Issue #7, pull direction, PeopleForce: approved leave requests come back into the
mirror's inbound table once; a second pull adds nothing; a withdrawn one is marked; one
deleted on the platform is marked deleted; an unmapped type is parked."""
import os
import shutil

from harness import ROOT, items

MAPS = os.path.join(ROOT, "mappings", "peopleforce")


def _setup(world, tmp_path):
    """The shipped mappings, with a reverse map that lacks leave type 114 (to see it parked)."""
    d = tmp_path / "maps"
    d.mkdir()
    for f in os.listdir(MAPS):
        shutil.copy(os.path.join(MAPS, f), d / f)
    back = (d / "kinds_back.csv").read_text().splitlines()
    (d / "kinds_back.csv").write_text("\n".join(l for l in back if not l.startswith("114,")) + "\n")
    world.mappings = [str(d / "*.yaml")]
    world.write_config()


def _ask(world, emp_id, leave_type, start, end, state):
    return world.sandbox.call("POST", "/leave_requests", {
        "employee_id": emp_id, "leave_type_id": leave_type, "starts_on": start, "ends_on": end,
        "description": "asked in the web UI", "state": state})["data"]["id"]


def _inbound(world):
    return {r[0]: r[1:] for r in world.sql(
        "SELECT platform_id, personnel_number, kind_code, date_from::text, date_to::text, status, deleted "
        "FROM erp_inbound.absences WHERE platform = 'peopleforce'")}


def test_pull_approved_absences_once_and_follow_them(world, tmp_path):
    _setup(world, tmp_path)
    world.run("run", check_rc=1)
    assert _inbound(world) == {}  # what hrsync pushed is not pulled back
    emps = {e["employee_number"]: e["id"] for e in items(world.sandbox.store()["employees"]) if e["active"]}
    (k1, e1), (k2, e2), (k3, e3) = sorted(emps.items())[:3]
    a = _ask(world, e1, 101, "2026-12-21", "2026-12-24", "approved")
    b = _ask(world, e2, 111, "2026-12-28", "2026-12-31", "approved")
    c = _ask(world, e3, 103, "2026-12-01", "2026-12-02", "pending")
    parked = _ask(world, e3, 114, "2026-12-07", "2026-12-08", "approved")

    r = world.run("run", check_rc=1)
    s = r.summary("absences_inbound")
    assert (s["created"], s["failed"]) == (2, 1), s
    got = _inbound(world)
    assert got == {str(a): (k1, "ОТ", "2026-12-21", "2026-12-24", "approved", False),
                   str(b): (k2, "CP", "2026-12-28", "2026-12-31", "approved", False)}, got
    fail = world.sql("SELECT kind, field, rule, reason FROM hrsync.failures WHERE mapping = 'absences_inbound' "
                     "AND erp_key = %s", (str(parked),))
    assert fail and fail[0][:3] == ("mapping", "kind_code", "map") and "'114'" in fail[0][3]

    # A second pull adds nothing.
    r = world.run("run", check_rc=1)
    s = r.summary("absences_inbound")
    assert (s["created"], s["updated"], s["terminated"]) == (0, 0, 0), s
    assert _inbound(world) == got

    # Withdrawn on the platform: the row keeps its place with the new status; the pending one, approved, arrives.
    world.sandbox.call("POST", f"/leave_requests/{a}/state", {"state": "withdrawn"})
    world.sandbox.call("POST", f"/leave_requests/{c}/state", {"state": "approved"})
    r = world.run("run", check_rc=1)
    s = r.summary("absences_inbound")
    assert (s["created"], s["updated"]) == (1, 1), s
    got = _inbound(world)
    assert got[str(a)][4] == "withdrawn" and got[str(c)][4] == "approved"

    # Deleted on the platform: seen at the next full listing (about once a day; forced here).
    store_lr = {lr["id"] for lr in items(world.sandbox.store()["leave_requests"])}
    assert b in store_lr
    status, _ = world.sandbox.api("DELETE", f"/leave_requests/{b}")
    assert status in (200, 204), status
    world.sql("UPDATE hrsync.pull_cursors SET last_full = now() - interval '2 days'")
    r = world.run("run", check_rc=1)
    assert r.summary("absences_inbound")["terminated"] == 1
    assert _inbound(world)[str(b)][5] is True
    # Marked once: the next full listing has nothing more to say.
    world.sql("UPDATE hrsync.pull_cursors SET last_full = now() - interval '2 days'")
    r = world.run("run", check_rc=1)
    s = r.summary("absences_inbound")
    assert (s["created"], s["updated"], s["terminated"]) == (0, 0, 0), s
