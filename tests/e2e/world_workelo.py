"""Workelo in the end-to-end tests: the sandbox client (tests/sandbox/workelo.py), hrsync
configured for it (client credentials from the environment, the token URL on the sandbox), the
Workelo part of the demo mirror (tests/fixtures/erp/gen_workelo.py, loaded into each test's
database) and what must be on Workelo after a complete sync (mappings/workelo)."""
import collections
import importlib.util
import json
import os
import urllib.request

from harness import ROOT, SandboxClient, TokenWorld

MAPS = os.path.join(ROOT, "mappings", "workelo")
CLIENT_ID = "hrsync-e2e-workelo"
CLIENT_SECRET = "wk-secret-3f9e1a77c2"
ARCHIVED = 239            # the sandbox seed's "Archived" role
COLLEAGUE = 234
IDENT = {5: "badge", 6: "matricule", 7: "phone_number", 8: "grade"}


def _gen_sql():
    spec = importlib.util.spec_from_file_location(
        "gen_workelo", os.path.join(ROOT, "tests", "fixtures", "erp", "gen_workelo.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SQL


GEN_SQL = _gen_sql()


class WorkeloSandbox(SandboxClient):
    """tests/sandbox/workelo.py: client credentials at /oauth/token, the API under /v1."""

    script = "workelo.py"
    api_prefix = "/v1"

    def args(self):
        return ["--api-key", CLIENT_SECRET, "--client-id", CLIENT_ID]

    def token(self):
        form = f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}".encode()
        req = urllib.request.Request(self.root + "/oauth/token", data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())["access_token"]

    def auth_headers(self):
        return {"Authorization": "Bearer " + self.token()}


class WorkeloWorld(TokenWorld):
    name = connector_type = "workelo"
    sandbox_class = WorkeloSandbox
    mapping_dir = MAPS
    push_mappings = ("workelo_units", "workelo_employees", "workelo_tracks")
    employees_mapping, absences_mapping = "workelo_employees", None
    contract_files = ("units.yaml", "employees.yaml", "tracks.yaml")
    credentials = {"client_id": ("WK_CLIENT_ID", CLIENT_ID), "client_secret": ("WK_CLIENT_SECRET", CLIENT_SECRET)}
    secret_var = "WK_CLIENT_SECRET"
    issued_secret = r"wk_[0-9a-f]{16,}"
    creates = r"^/(unit_organizations|employees|tracks)$"
    TOKEN_PATH = "/oauth/token"
    refusal_says = ("invalid_client",)
    # The Workelo part of the conftest's mirror is ~30 units, 300 employees, ~130 journeys.
    kill_plans = {"mixed": (("requests", 3), ("commit", 20), ("creates", 60), ("commit", 120), ("creates", 60),
                            ("commit", 40))}

    def __init__(self, cluster, db, sandbox, tmpdir, mappings=None, extra_conn="", extra_top=""):
        extra_conn = f'    token_url: "{sandbox.root}/oauth/token"\n' + extra_conn
        super().__init__(cluster, db, sandbox, tmpdir, mappings, extra_conn, extra_top)
        if not self.sql("SELECT to_regclass('erp.journeys') IS NOT NULL")[0][0]:
            self.sql(GEN_SQL)

    def lost_answer_rule(self, mode):
        return dict(super().lost_answer_rule(mode), path=self.creates)

    # ---- what must be on Workelo ------------------------------------------------------
    def expected(self):
        """Keys that must be on Workelo after a complete sync, and why the others are not."""
        m = self.manifest
        map_errors = {b["key"] for b in m["bad"] if b["table"] == "employees"
                      and b["kind"] in ("null_last_name", "blank_first_name", "malformed_email")}
        refused = {k for (k,) in self.sql(
            "SELECT erp_key FROM hrsync.failures WHERE mapping = 'workelo_employees' "
            "AND kind = 'refused' AND reason LIKE '%%email: has already been taken%%'")}
        losers = set(m["duplicate_email"]) & refused
        dup_loser = losers.pop() if len(losers) == 1 else max(m["duplicate_email"])
        not_lowest = {k for (k,) in self.sql("SELECT personnel_number FROM erp.workelo_staff "
                                             "WHERE unit_code LIKE 'C-%%'")}
        emp = {k for (k,) in self.sql("SELECT personnel_number FROM erp.employees")} - map_errors - {dup_loser} \
            - not_lowest
        dismissed = {k for (k,) in self.sql(
            "SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NOT NULL")} & emp
        units = {c: p for c, p in self.sql("SELECT code, parent_code FROM erp.org_units")}
        unit_of = dict(self.sql("SELECT personnel_number, unit_code FROM erp.workelo_staff"))
        tracks = {}
        for jid, pn, mob, mgr, hr, buddy, status in self.sql(
                "SELECT journey_id, personnel_number, mobility, manager_number, hr_number, buddy_number, status "
                "FROM erp.journeys"):
            if status == "planned" and all(p is None or p in emp for p in (pn, mgr, hr, buddy)):
                tracks[jid] = (pn, mob, mgr, hr, buddy)
        return dict(employees=emp, dismissed=dismissed, absences=set(), units=units, unit_of=unit_of,
                    tracks=tracks, dup_loser=dup_loser, map_errors=map_errors, not_lowest=not_lowest)

    def assert_end_state(self):
        """Every valid record exactly once on Workelo, in the right place, and the state's links
        agreeing with the sandbox; no employee ever deleted."""
        exp = self.expected()
        store = self.sandbox.store()
        assert store["deleted_employees"] == [], store["deleted_employees"][:3]
        units = store["unit_organizations"]
        by_ext = collections.Counter(u["external_id"] for u in units)
        assert max(by_ext.values()) == 1, "units created twice"
        assert set(by_ext) == set(exp["units"]), sorted(set(by_ext) ^ set(exp["units"]))[:10]
        unit_id = {u["external_id"]: u["id"] for u in units}
        for u in units:
            want = exp["units"][u["external_id"]]
            assert u["parent_id"] == (unit_id[want] if want else None), (u, want)

        emps = store["employees"]
        by_key = collections.Counter(e["external_id"] for e in emps)
        assert not [k for k, c in by_key.items() if c > 1], "employees created twice"
        assert set(by_key) == exp["employees"], (
            f"missing {sorted(exp['employees'] - set(by_key))[:10]}, extra {sorted(set(by_key) - exp['employees'])[:10]}")
        emp_id = {e["external_id"]: e["id"] for e in emps}
        archived = {e["external_id"] for e in emps if e["user_role_id"] == ARCHIVED}
        assert archived == exp["dismissed"], f"archived differ: {sorted(archived ^ exp['dismissed'])[:10]}"
        grades = dict(self.sql("SELECT personnel_number, nullif(trim(grade), '') FROM erp.employees"))
        for e in emps:
            assert e["unit_organization_id"] == unit_id[exp["unit_of"][e["external_id"]]], e
            assert e["user_role_id"] in (COLLEAGUE, ARCHIVED), e
            idents = {IDENT[i["identification_resource_id"]]: i["value"] for i in e["identifications"]}
            assert len(idents) == len(e["identifications"]), e["identifications"]
            want = {"matricule": e["external_id"]}
            if grades[e["external_id"]] is not None:
                want["grade"] = grades[e["external_id"]]
            assert idents == want, (e["external_id"], idents, want)

        key_of = {v: k for k, v in emp_id.items()}
        live = [t for t in store["tracks"] if t["status"] != "cancelled"]
        got = collections.Counter((key_of.get(t["employee_id"]), t["mobility"]) for t in live)
        assert not [k for k, c in got.items() if c > 1], "journeys created twice"
        want = {(pn, mob): jid for jid, (pn, mob, *_r) in exp["tracks"].items()}
        assert set(got) == set(want), (
            f"missing {sorted(set(want) - set(got))[:10]}, extra {sorted(set(got) - set(want))[:10]}")
        for t in live:
            assert t["status"] in ("invitation_sent", "scheduled"), ("a journey left as draft", t)
            pn, mob, mgr, hr, buddy = exp["tracks"][want[(key_of[t["employee_id"]], t["mobility"])]]
            imp = t["implications"]
            assert (imp.get("manager_id"), imp.get("hr_id"), imp.get("buddy_id")) == (
                emp_id.get(mgr), emp_id.get(hr), emp_id.get(buddy)), (t, mgr, hr, buddy)

        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links "
                                                       "WHERE status IN ('active', 'terminated')")}
        for k, i in emp_id.items():
            assert links[("workelo_employees", k)] == str(i)
        for k, i in unit_id.items():
            assert links[("workelo_units", k)] == str(i)
        for t in live:
            jid = want[(key_of[t["employee_id"]], t["mobility"])]
            assert links[("workelo_tracks", jid)] == str(t["id"]), jid
        return exp

    def platform_ids(self, store):
        return {"workelo_units": {str(u["id"]) for u in store["unit_organizations"]},
                "workelo_employees": {str(e["id"]) for e in store["employees"]},
                "workelo_tracks": {str(t["id"]) for t in store["tracks"]}}

    def assert_consistent(self):
        """World.assert_consistent, plus leavers terminated in the state as on Workelo."""
        exp = super().assert_consistent()
        status = dict(self.sql("SELECT erp_key, status FROM hrsync.links WHERE mapping = 'workelo_employees'"))
        for k in exp["employees"]:
            want = "terminated" if k in exp["dismissed"] else "active"
            assert status[k] == want, (k, status[k], want)
        return exp
