"""PeopleForce in the end-to-end tests: the sandbox client (tests/sandbox/peopleforce.py),
hrsync configured for it, and what must be on the platform after a complete sync of the
demo mirror (mappings/peopleforce)."""
import collections
import os

from harness import MARKER, ROOT, SandboxClient, World, items

TOKEN = "test-api-key-5f2c9e"
SEED = os.path.join(ROOT, "tests", "fixtures", "peopleforce", "seed.json")


class PeopleForceSandbox(SandboxClient):
    """tests/sandbox/peopleforce.py: one API key, no rate limit unless asked."""

    script = "peopleforce.py"
    api_prefix = "/api/public/v3"

    def __init__(self, rate="0", extra=()):
        self.rate = rate
        super().__init__(extra)

    def args(self):
        return ["--api-key", TOKEN, "--seed", SEED, "--rate", self.rate]

    def auth_headers(self):
        return {"X-API-KEY": TOKEN}


def bad_keys(manifest, table, outcomes=("mapping_error", "deferred", "platform_error")):
    return {b["key"] for b in manifest["bad"] if b["table"] == table and b["outcome"] in outcomes}


class PeopleForceWorld(World):
    name = connector_type = "peopleforce"
    sandbox_class = PeopleForceSandbox
    mapping_dir = os.path.join(ROOT, "mappings", "peopleforce")
    push_mappings = ("employees", "absences", "assets")
    employees_mapping, absences_mapping = "employees", "absences"
    credentials = {"token": ("PF_TOKEN", TOKEN)}
    secret_var = "PF_TOKEN"
    # The main records' creates. Sub-resources (positions, assignments, terminations) are
    # POSTs too: lost_answer_rule loses answers to those as well.
    creates = r"^/(employees|leave_requests|assets)$"
    # Request counts of a first sync (about 1,400 requests): inside a record's several
    # requests (an employee created but not its position, an asset but not its
    # assignment), during the reference-list lookups, during the platform index reads.
    kill_plans = dict(World.kill_plans, **{str(n): (("requests", n),) for n in (3, 120, 470, 800, 1150, 1350)},
                      **{"260+700": (("requests", 260), ("requests", 700))})

    # ---- what must be on the platform ------------------------------------------------
    def expected(self):
        """Keys that must be on the platform after a complete sync, per entity."""
        m = self.manifest
        # Two employees share an email: the platform takes the first to arrive. Creates go
        # out in key order, but a fault can delay the first one: the loser is the one refused.
        refused = {k for (k,) in self.sql("SELECT erp_key FROM hrsync.failures WHERE mapping = 'employees' "
                                          "AND kind = 'refused'")} if self.has_state() else set()
        losers = set(m["duplicate_email"]) & refused
        dup_loser = losers.pop() if len(losers) == 1 else max(m["duplicate_email"])
        emp = {k for (k,) in self.sql("SELECT personnel_number FROM erp.employees")}
        emp -= bad_keys(m, "employees") | {dup_loser}
        dismissed = {k for (k,) in self.sql("SELECT personnel_number FROM erp.employees "
                                            "WHERE dismissal_date IS NOT NULL")}
        absent = {k for (k,) in self.sql("SELECT absence_id FROM erp.absences WHERE status = 'posted'")}
        # Absences and assets of the losing employee wait for it; the winner's go through.
        winner = (set(m["duplicate_email"]) - {dup_loser}).pop()
        absent -= bad_keys(m, "absences") | set(m["absences_of_bad_employees"])
        absent -= {k for (k,) in self.sql("SELECT absence_id FROM erp.absences WHERE personnel_number = %s",
                                          (dup_loser,))}
        absent |= {k for (k,) in self.sql("SELECT absence_id FROM erp.absences WHERE personnel_number = %s "
                                          "AND status = 'posted'", (winner,))}
        assets = {k for (k,) in self.sql("SELECT inventory_number FROM erp.assets")}
        assets -= bad_keys(m, "assets") | set(m["assets_of_bad_employees"])
        assets -= {k for (k,) in self.sql("SELECT inventory_number FROM erp.assets WHERE holder = %s", (dup_loser,))}
        assets |= {k for (k,) in self.sql("SELECT inventory_number FROM erp.assets WHERE holder = %s", (winner,))}
        return dict(employees=emp, dismissed=dismissed & emp, absences=absent, assets=assets, dup_loser=dup_loser)

    def assert_end_state(self):
        """Every valid record exactly once on the sandbox, linked to the right employee,
        and the state's links agreeing with the sandbox."""
        exp = self.expected()
        store = self.sandbox.store()
        emps = items(store["employees"])
        by_number = collections.Counter(e["employee_number"] for e in emps)
        dups = [n for n, c in by_number.items() if c > 1]
        assert not dups, f"employees created twice: {dups[:10]}"
        assert set(by_number) == exp["employees"], (
            f"missing {sorted(exp['employees'] - set(by_number))[:10]}, "
            f"extra {sorted(set(by_number) - exp['employees'])[:10]}")
        emp_id = {e["employee_number"]: e["id"] for e in emps}
        inactive = {e["employee_number"] for e in emps if not e["active"]}
        assert inactive == exp["dismissed"], f"terminated differ: {sorted(inactive ^ exp['dismissed'])[:10]}"

        lrs = items(store["leave_requests"])
        keys = collections.Counter(MARKER.search(lr["description"] or "").group(1) for lr in lrs)
        assert not [k for k, c in keys.items() if c > 1], "leave requests created twice"
        assert set(keys) == exp["absences"], (
            f"missing {sorted(exp['absences'] - set(keys))[:10]}, extra {sorted(set(keys) - exp['absences'])[:10]}")
        owner = dict(self.sql("SELECT absence_id, personnel_number FROM erp.absences"))
        for lr in lrs:
            k = MARKER.search(lr["description"]).group(1)
            assert lr["employee_id"] == emp_id[owner[k]], f"leave request {k} on the wrong employee"

        assets = items(store["assets"])
        codes = collections.Counter(a["code"] for a in assets)
        assert not [c for c, n in codes.items() if n > 1], "assets created twice"
        assert set(codes) == exp["assets"]
        holder = {k: (h, str(i) if i else None, str(r) if r else None) for k, h, i, r in self.sql(
            "SELECT inventory_number, holder, issued_on, returned_on FROM erp.assets")}
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
        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
        for num, i in emp_id.items():
            assert links[("employees", num)] == str(i)
        for lr in lrs:
            assert links[("absences", MARKER.search(lr["description"]).group(1))] == str(lr["id"])
        for a in assets:
            assert links[("assets", a["code"])] == str(a["id"])
        return exp

    def platform_ids(self, store):
        return {"employees": {str(e["id"]) for e in items(store["employees"])},
                "absences": {str(lr["id"]) for lr in items(store["leave_requests"])},
                "assets": {str(a["id"]) for a in items(store["assets"])}}

    def assert_consistent(self):
        """World.assert_consistent, plus terminations and deletions as the state records
        them, and no sub-resource written twice."""
        exp = super().assert_consistent()
        store = self.sandbox.store()
        links = collections.defaultdict(dict)
        for m, k, pid, st in self.sql("SELECT mapping, erp_key, platform_id, status FROM hrsync.links"):
            links[m][k] = (pid, st)
        # Employees: terminated exactly when dismissed in the ERP, in the state as on the platform.
        for k in exp["employees"]:
            want = "terminated" if k in exp["dismissed"] else "active"
            assert links["employees"][k][1] == want, (k, links["employees"][k], want)
        # Absences: a cancelled one is deleted, and its old id is gone from the platform.
        lr_ids = self.platform_ids(store)["absences"]
        cancelled = {k for (k,) in self.sql("SELECT absence_id FROM erp.absences WHERE status = 'cancelled'")}
        for k, (pid, st) in links["absences"].items():
            if k in cancelled:
                assert st == "deleted", (k, pid, st)
                assert pid not in lr_ids, f"cancelled absence {k} still on the platform as {pid}"
        # One position per employee: a position written twice is a duplicate too.
        per_emp = collections.Counter(p["employee_id"] for p in items(store["employee_positions"]))
        assert not [e for e, c in per_emp.items() if c > 1], f"positions written twice: {per_emp.most_common(3)}"
        return exp

    def assert_recorded(self):
        """Everything the platform holds is linked in the state, to the same id: what a
        stopped run did is recorded. (Kills are the exception; this is for runs that stop.)"""
        store = self.sandbox.store()
        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
        for e in items(store["employees"]):
            assert links.get(("employees", e["employee_number"])) == str(e["id"]), \
                f"employee {e['employee_number']} not recorded"
        for lr in items(store["leave_requests"]):
            k = MARKER.search(lr["description"]).group(1)
            assert links.get(("absences", k)) == str(lr["id"]), f"leave request {k} not recorded"
        for a in items(store["assets"]):
            assert links.get(("assets", a["code"])) == str(a["id"]), f"asset {a['code']} not recorded"
