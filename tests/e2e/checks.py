"""Assertions about the end state shared by several tests: what the sandbox holds,
compared with what the mirror and the manifest of planted bad rows say it must hold."""
import collections
import re

from harness import items

MARKER = re.compile(r"\[hrsync:(.*)#([0-9a-f]{16})\]")


def bad_keys(manifest, table, outcomes=("mapping_error", "deferred", "platform_error")):
    return {b["key"] for b in manifest["bad"] if b["table"] == table and b["outcome"] in outcomes}


def expected(world):
    """Keys that must be on the platform after a complete sync, per entity."""
    m = world.manifest
    # Two employees share an email: the platform takes the first to arrive. Creates go
    # out in key order, but a fault can delay the first one: the loser is the one refused.
    refused = {k for (k,) in world.sql("SELECT erp_key FROM hrsync.failures WHERE mapping = 'employees' "
                                       "AND kind = 'refused'")} if _has_state(world) else set()
    losers = set(m["duplicate_email"]) & refused
    dup_loser = losers.pop() if len(losers) == 1 else max(m["duplicate_email"])
    emp = {k for (k,) in world.sql("SELECT personnel_number FROM erp.employees")}
    emp -= bad_keys(m, "employees") | {dup_loser}
    dismissed = {k for (k,) in world.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NOT NULL")}
    absent = {k for (k,) in world.sql("SELECT absence_id FROM erp.absences WHERE status = 'posted'")}
    # Absences and assets of the losing employee wait for it; the winner's go through.
    winner = (set(m["duplicate_email"]) - {dup_loser}).pop()
    absent -= bad_keys(m, "absences") | set(m["absences_of_bad_employees"])
    absent -= {k for (k,) in world.sql("SELECT absence_id FROM erp.absences WHERE personnel_number = %s", (dup_loser,))}
    absent |= {k for (k,) in world.sql("SELECT absence_id FROM erp.absences WHERE personnel_number = %s "
                                       "AND status = 'posted'", (winner,))}
    assets = {k for (k,) in world.sql("SELECT inventory_number FROM erp.assets")}
    assets -= bad_keys(m, "assets") | set(m["assets_of_bad_employees"])
    assets -= {k for (k,) in world.sql("SELECT inventory_number FROM erp.assets WHERE holder = %s", (dup_loser,))}
    assets |= {k for (k,) in world.sql("SELECT inventory_number FROM erp.assets WHERE holder = %s", (winner,))}
    return dict(employees=emp, dismissed=dismissed & emp, absences=absent, assets=assets, dup_loser=dup_loser)


def _has_state(world):
    return world.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'hrsync' "
                     "AND table_name = 'failures'")[0][0] == 1


def assert_end_state(world):
    """Every valid record exactly once on the sandbox, linked to the right employee,
    and the state's links agreeing with the sandbox."""
    exp = expected(world)
    store = world.sandbox.store()
    emps = items(store["employees"])
    by_number = collections.Counter(e["employee_number"] for e in emps)
    dups = [n for n, c in by_number.items() if c > 1]
    assert not dups, f"employees created twice: {dups[:10]}"
    assert set(by_number) == exp["employees"], (
        f"missing {sorted(exp['employees'] - set(by_number))[:10]}, extra {sorted(set(by_number) - exp['employees'])[:10]}")
    emp_id = {e["employee_number"]: e["id"] for e in emps}
    inactive = {e["employee_number"] for e in emps if not e["active"]}
    assert inactive == exp["dismissed"], f"terminated differ: {sorted(inactive ^ exp['dismissed'])[:10]}"

    lrs = items(store["leave_requests"])
    keys = collections.Counter(MARKER.search(lr["description"] or "").group(1) for lr in lrs)
    assert not [k for k, c in keys.items() if c > 1], "leave requests created twice"
    assert set(keys) == exp["absences"], (
        f"missing {sorted(exp['absences'] - set(keys))[:10]}, extra {sorted(set(keys) - exp['absences'])[:10]}")
    owner = dict(world.sql("SELECT absence_id, personnel_number FROM erp.absences"))
    for lr in lrs:
        k = MARKER.search(lr["description"]).group(1)
        assert lr["employee_id"] == emp_id[owner[k]], f"leave request {k} on the wrong employee"

    assets = items(store["assets"])
    codes = collections.Counter(a["code"] for a in assets)
    assert not [c for c, n in codes.items() if n > 1], "assets created twice"
    assert set(codes) == exp["assets"]
    holder = {k: (h, str(i) if i else None, str(r) if r else None)
              for k, h, i, r in world.sql("SELECT inventory_number, holder, issued_on, returned_on FROM erp.assets")}
    asg = collections.defaultdict(list)
    for a in items(store["asset_assignments"]):
        asg[str(a["asset_id"])].append(a)
    for a in assets:
        h, issued, returned = holder[a["code"]]
        got = asg.get(str(a["id"]), [])
        if h is None:
            assert not got, f"asset {a['code']} in stock has an assignment"
            continue
        assert len(got) == 1, f"asset {a['code']} has {len(got)} assignments"
        assert got[0]["user_id"] == emp_id[h] and got[0]["issued_on"] == issued and got[0]["returned_on"] == returned

    # The state agrees with the sandbox.
    links = {(m, k): pid for m, k, pid in world.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
    for num, i in emp_id.items():
        assert links[("employees", num)] == str(i)
    for lr in lrs:
        assert links[("absences", MARKER.search(lr["description"]).group(1))] == str(lr["id"])
    for a in assets:
        assert links[("assets", a["code"])] == str(a["id"])
    return exp


def writes(reqs):
    return [r for r in reqs if r["method"] in ("POST", "PUT", "DELETE", "PATCH")]


def retry_delays(reqs):
    """For each request answered 429: seconds until the same request (method, path, query,
    body) was sent again. docs/design.md: the throttled request waits Retry-After, else >= 1 s."""
    out = []
    for i, r in enumerate(reqs):
        if r["status"] != 429:
            continue
        again = next((x for x in reqs[i + 1:] if (x["method"], x["path"], x.get("query"), x.get("body")) ==
                      (r["method"], r["path"], r.get("query"), r.get("body"))), None)
        if again:
            out.append(again["ts"] - r["ts"])
    return out
