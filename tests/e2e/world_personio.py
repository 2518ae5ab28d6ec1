"""Personio in the end-to-end tests: the sandbox client (tests/sandbox/personio.py), hrsync
configured for it (client id and secret from the environment), and what must be on Personio
after a complete sync of the demo mirror (mappings/personio)."""
import collections
import json
import os
import urllib.request

from harness import MARKER, ROOT, SandboxClient, TokenWorld

SEED = os.path.join(ROOT, "tests", "fixtures", "personio", "seed.json")
MAPS = os.path.join(ROOT, "mappings", "personio")
CLIENT_ID = "hrsync-e2e-client"
CLIENT_SECRET = "pio-secret-7c1d0b33e5"
# kinds.csv: these ERP kinds go to hour-based types (absence periods), the rest to time-offs.
HOUR_KINDS = {"К", "RTT"}


class PersonioSandbox(SandboxClient):
    """tests/sandbox/personio.py: client credentials, 429s without Retry-After as documented."""

    script = "personio.py"

    def args(self):
        return ["--api-key", CLIENT_SECRET, "--client-id", CLIENT_ID, "--seed", SEED, "--no-retry-after"]

    def auth_headers(self):
        """A token of its own (client credentials), for each request."""
        form = f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}".encode()
        req = urllib.request.Request(self.base_url + "/v2/auth/token", data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return {"Authorization": "Bearer " + json.loads(r.read())["access_token"]}


def bad(manifest, table, kinds):
    return {b["key"] for b in manifest["bad"] if b["table"] == table and b["kind"] in kinds}


class PersonioWorld(TokenWorld):
    name = connector_type = "personio"
    sandbox_class = PersonioSandbox
    mapping_dir = MAPS
    push_mappings = ("personio_employees", "personio_absences")
    employees_mapping, absences_mapping = "personio_employees", "personio_absences"
    contract_files = ("employees.yaml", "absences.yaml")
    credentials = {"client_id": ("PIO_CLIENT_ID", CLIENT_ID), "client_secret": ("PIO_CLIENT_SECRET", CLIENT_SECRET)}
    secret_var = "PIO_CLIENT_SECRET"
    issued_secret = r"papi-[0-9a-f]{16,}"   # the bearer tokens the sandbox issues
    creates = r"^/v1/company/(employees|time-offs|absence-periods)$"
    TOKEN_PATH = "/v2/auth/token"

    refusal_says = ("invalid_client",)

    def lost_answer_rule(self, mode):
        return dict(super().lost_answer_rule(mode), path="^/v1/company/", every=9)

    # ---- what must be on Personio ----------------------------------------------------
    def expected(self):
        """Keys that must be on Personio after a complete sync, and why the others are not."""
        m = self.manifest
        # Rows the mapping refuses before anything is sent. A NIR with a wrong key fails its
        # check too (custom attribute dynamic_1003). Department and position are names in
        # Personio v1: an unknown department is created without it (and listed as refused),
        # an unknown position is free text.
        map_errors = bad(m, "employees", {"null_last_name", "blank_first_name", "malformed_email", "bad_nir_key"})
        refused = {k for (k,) in self.sql(
            "SELECT erp_key FROM hrsync.failures WHERE mapping = 'personio_employees' "
            "AND kind = 'refused' AND (reason LIKE '%%email has already been taken%%' "
            "OR reason LIKE '%%email is already used on Personio%%')")}
        losers = set(m["duplicate_email"]) & refused
        dup_loser = losers.pop() if len(losers) == 1 else max(m["duplicate_email"])
        emp = {k for (k,) in self.sql("SELECT personnel_number FROM erp.employees")} - map_errors - {dup_loser}
        dismissed = {k for (k,) in self.sql(
            "SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NOT NULL")} & emp
        absent = {k for k, p in self.sql("SELECT absence_id, personnel_number FROM erp.absences "
                                         "WHERE status = 'posted'") if p in emp}
        absent -= bad(m, "absences", {"unknown_leave_type", "platform_refuses"})
        return dict(employees=emp, dismissed=dismissed, absences=absent, dup_loser=dup_loser, map_errors=map_errors,
                    unknown_department=bad(m, "employees", {"unknown_department"}))

    def assert_end_state(self):
        """Every valid record exactly once on the sandbox, on the right employee and endpoint,
        and the state's links agreeing with the sandbox."""
        exp = self.expected()
        store = self.sandbox.store()
        emps = store["employees"]
        by_key = collections.Counter(e["custom_attributes"].get("dynamic_1001") for e in emps)
        assert not [k for k, c in by_key.items() if c > 1], "employees created twice"
        assert set(by_key) == exp["employees"], (
            f"missing {sorted(exp['employees'] - set(by_key))[:10]}, extra {sorted(set(by_key) - exp['employees'])[:10]}")
        emails = collections.Counter(e["email"] for e in emps)
        assert max(emails.values()) == 1
        emp_id = {e["custom_attributes"]["dynamic_1001"]: e["id"] for e in emps}
        inactive = {e["custom_attributes"]["dynamic_1001"] for e in emps if e["status"] == "inactive"}
        assert inactive == exp["dismissed"], f"inactive differ: {sorted(inactive ^ exp['dismissed'])[:10]}"

        rows = {k: (p, kind, str(d1), str(d2), h) for k, p, kind, d1, d2, h in self.sql(
            "SELECT absence_id, personnel_number, kind_code, date_from, date_to, hours_per_day FROM erp.absences")}
        got = collections.Counter()
        for unit, coll in (("day", store["time_offs"]), ("hour", store["absence_periods"])):
            for a in coll:
                mk = MARKER.search(a["comment"] or "")
                assert mk, a
                k = mk.group(1)
                got[k] += 1
                p, kind, d1, d2, hours = rows[k]
                assert a["employee"]["attributes"]["id"]["value"] == emp_id[p], f"absence {k} on the wrong employee"
                assert (unit == "hour") == (kind in HOUR_KINDS), f"absence {k} ({kind}) sent as {unit}s"
                if unit == "day":
                    assert (a["start_date"][:10], a["end_date"][:10]) == (d1, d2)
                    assert a["half_day_start"] == (d1 == d2 and hours is not None) and not a["half_day_end"], (k, a)
                else:
                    assert (a["breakdowns"][0]["date"], a["breakdowns"][-1]["date"]) == (d1, d2)
                    if d1 == d2:
                        want = int(float(hours) * 60) if hours is not None else 480
                        assert a["effective_duration"] == want, (k, a["effective_duration"], want)
        assert not [k for k, c in got.items() if c > 1], "absences created twice"
        assert set(got) == exp["absences"], (
            f"missing {sorted(exp['absences'] - set(got))[:10]}, extra {sorted(set(got) - exp['absences'])[:10]}")

        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links "
                                                       "WHERE status IN ('active', 'terminated')")}
        for k, i in emp_id.items():
            assert links[("personio_employees", k)] == str(i)
        for a in store["time_offs"] + store["absence_periods"]:
            assert links[("personio_absences", MARKER.search(a["comment"]).group(1))] == str(a["id"])
        return exp

    def platform_ids(self, store):
        return {"personio_employees": {str(e["id"]) for e in store["employees"]},
                "personio_absences": {str(a["id"]) for a in store["time_offs"] + store["absence_periods"]}}

    def assert_consistent(self):
        """World.assert_consistent, plus leavers terminated in the state as on Personio."""
        exp = super().assert_consistent()
        status = dict(self.sql("SELECT erp_key, status FROM hrsync.links WHERE mapping = 'personio_employees'"))
        for k in exp["employees"]:
            want = "terminated" if k in exp["dismissed"] else "active"
            assert status[k] == want, (k, status[k], want)
        return exp
