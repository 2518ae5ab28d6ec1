"""Teamtailor in the end-to-end tests: the sandbox client (tests/sandbox/teamtailor.py),
hrsync configured for it, the ERP side of the connector (tests/fixtures/erp/gen_teamtailor.py)
added to each test's mirror, and what must be on the platform after a complete sync."""
import json
import os
import subprocess
import urllib.error
import urllib.request

from harness import PYTHON, ROOT, SandboxClient, World, items

TOKEN = "tt-admin-key-7d41b0"
GEN = os.path.join(ROOT, "tests", "fixtures", "erp", "gen_teamtailor.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "teamtailor", "seed.json")


class TeamtailorSandbox(SandboxClient):
    """tests/sandbox/teamtailor.py: one Admin key, the account as the group has it (240 users
    invited by hand: the users' index is read in 9 pages), no Retry-After (Teamtailor documents
    none: X-Rate-Limit-Reset says when the window opens). Its window is 5,000 requests a second
    unless a test asks for another: the sandbox always sends the live X-Rate-Limit-* headers, and
    hrsync paces itself by them; at Teamtailor's own 50 per 10 s every world would wait a minute."""

    script = "teamtailor.py"
    api_prefix = "/v1"

    def __init__(self, rate="5000/1", extra=()):
        self.rate = rate
        super().__init__(extra)

    def args(self):
        return ["--api-key", TOKEN, "--seed", SEED, "--rate", self.rate, "--no-retry-after"]

    def auth_headers(self):
        return {"Authorization": "Token token=" + TOKEN, "X-Api-Version": "20240904",
                "Accept": "application/vnd.api+json", "Content-Type": "application/vnd.api+json"}

    def jsonapi(self, method, path, body=None, headers=None):
        """A request to the API as Teamtailor wants it (JSON:API media type): (status, parsed body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers=dict(self.auth_headers(), **(headers or {})))
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def add(self, type_, attributes, relationships=None):
        """A record made on Teamtailor by hand (HR): its id."""
        data = {"type": type_, "attributes": attributes}
        if relationships:
            data["relationships"] = relationships
        st, body = self.jsonapi("POST", "/" + type_, {"data": data})
        assert st == 201, (st, body)
        return body["data"]["id"]

    def hire(self, first, last, email, job, department_id=None, stage="Hired"):
        return self.call("POST", "/hires", {
            "candidate": {"first-name": first, "last-name": last, "email": email, "phone": "+33 6 12 34 56 78"},
            "job": {"title": job, "department_id": department_id}, "stage-type": stage})["data"]


# Who hires: the users mapping's query (mappings/teamtailor/users.yaml).
STAFF = ("(lower(trim(grade)) IN ('middle', 'senior') "
         "OR trim(department_name) IN ('Отдел кадров', 'Ressources humaines'))")
# The demo mirror's planted bad rows that the users mapping refuses, and those it defers
# (a department name the ERP does not know).
BAD_KINDS = {"null_last_name", "malformed_email"}
DEFERRED_KINDS = {"unknown_department"}


class TeamtailorWorld(World):
    name = connector_type = "teamtailor"
    sandbox_class = TeamtailorSandbox
    mapping_dir = os.path.join(ROOT, "mappings", "teamtailor")
    push_mappings = ("teamtailor_departments", "teamtailor_locations", "teamtailor_users")
    employees_mapping, absences_mapping = "teamtailor_users", None
    contract_files = ("departments.yaml", "locations.yaml", "users.yaml", "hires_inbound.yaml")
    credentials = {"token": ("TT_TOKEN", TOKEN)}
    secret_var = "TT_TOKEN"
    refusal_says = ("bad key, or a key of another region",)
    creates = r"^/(departments|locations|users)$"
    # Teamtailor cannot filter departments or locations by name: each one whose create lost its
    # answer searches the same listing.
    shared_reads = True
    # A first sync of the tests' mirror: some 240 users, 12 departments, 4 locations, about
    # 280 requests (the platform's lists read once into indexes, then the creates and the
    # terminations): kills inside it, each leaving work for the next.
    kill_plans = {"mixed": (("requests", 3), ("commit", 20), ("creates", 40), ("commit", 60), ("creates", 50),
                            ("commit", 30)),
                  **{str(n): (("requests", n),) for n in (2, 12, 25, 90, 200)}}

    def __init__(self, cluster, db, sandbox, tmpdir, mappings=None, extra_conn="", extra_top=""):
        self._prepare_erp(cluster, db)
        # One in fourteen of the staff who hire has left (the demo mirror's dismissals): a first
        # sync killed between the creates and the terminations finds more than the default
        # 5% to terminate at once.
        super().__init__(cluster, db, sandbox, tmpdir, mappings, extra_conn,
                         extra_top or "guards:\n  max_terminations: 10%\n")

    @staticmethod
    def _prepare_erp(cluster, db):
        """The ERP side of the connector (gen_teamtailor.py) added to the test's mirror."""
        env = dict(os.environ, PGHOST=cluster.host, PGPORT=str(cluster.port), PGUSER=cluster.user, PGDATABASE=db)
        have = cluster.connect(db)
        try:
            cur = have.cursor()
            cur.execute("SELECT to_regclass('erp.departments') IS NOT NULL")
            done = cur.fetchone()[0]
        finally:
            have.close()
        if not done:
            gen = subprocess.run([PYTHON, GEN], check=True, capture_output=True)
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], input=gen.stdout, check=True, env=env,
                           stdout=subprocess.DEVNULL)

    # ---- what must be on the platform ------------------------------------------------
    def expected(self):
        m = self.manifest or {"bad": [], "duplicate_email": []}
        staff = {k: dd for k, dd in self.sql(
            f"SELECT personnel_number, dismissal_date FROM erp.employees WHERE {STAFF}")}
        bad = {b["key"] for b in m["bad"] if b["table"] == "employees" and b["kind"] in BAD_KINDS} & set(staff)
        deferred = {b["key"] for b in m["bad"] if b["table"] == "employees" and b["kind"] in DEFERRED_KINDS}
        deferred &= set(staff)
        # Two staff share an e-mail: the first to reach Teamtailor wins, the other is refused.
        refused = {k for (k,) in self.sql("SELECT erp_key FROM hrsync.failures WHERE mapping = 'teamtailor_users' "
                                          "AND kind = 'refused'")} if self.has_state() else set()
        dup = set(m["duplicate_email"]) & set(staff)
        losers = dup & refused
        dup_loser = losers.pop() if len(losers) == 1 else (max(dup) if len(dup) == 2 else None)
        users = set(staff) - bad - deferred - {dup_loser}
        dismissed = {k for k in users if staff[k] is not None}
        deps = {k for (k,) in self.sql("SELECT department_code FROM erp.departments WHERE trim(name) <> ''")}
        sites = {k for (k,) in self.sql("SELECT site_code FROM erp.sites WHERE trim(name) <> ''")}
        return dict(employees=users, dismissed=dismissed, absences=set(), departments=deps, locations=sites,
                    bad=bad, deferred=deferred, dup_loser=dup_loser)

    def assert_end_state(self):
        """Every valid record once on the sandbox, in the department its ERP row names, no
        user ever deleted, and the state's links agreeing with the sandbox."""
        exp = self.expected()
        store = self.sandbox.store()
        users = items(store["users"])
        assert not store["deleted_users"], f"users hard-deleted: {store['deleted_users']}"
        by_xid = {}
        for u in users:
            if u.get("external-id") is None:
                continue  # made by hand on Teamtailor, not the ERP's
            assert u["external-id"] not in by_xid, f"user {u['external-id']} twice"
            by_xid[u["external-id"]] = u
        assert set(by_xid) == exp["employees"], (
            f"missing {sorted(exp['employees'] - set(by_xid))[:10]}, extra {sorted(set(by_xid) - exp['employees'])[:10]}")
        no_access = {k for k, u in by_xid.items() if u["role"] == "no_access"}
        assert no_access == exp["dismissed"], sorted(no_access ^ exp["dismissed"])[:10]
        deps = {d["name"]: d["id"] for d in items(store["departments"])}
        assert len(deps) == len(items(store["departments"])), "departments created twice"
        dep_names = dict(self.sql("SELECT department_code, name FROM erp.departments"))
        assert set(deps) == {dep_names[c] for c in exp["departments"]}
        locs = {x["name"]: x["id"] for x in items(store["locations"])}
        assert len(locs) == len(items(store["locations"])), "locations created twice"
        site_names = dict(self.sql("SELECT site_code, name FROM erp.sites"))
        assert set(locs) == {site_names[c] for c in exp["locations"]}
        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
        for c in exp["departments"]:
            assert links[("teamtailor_departments", c)] == deps[dep_names[c]]
        for c in exp["locations"]:
            assert links[("teamtailor_locations", c)] == locs[site_names[c]]
        where = dict((k, (d, s)) for k, d, s in self.sql(
            "SELECT e.personnel_number, d.department_code, s.site_code FROM erp.employees e "
            "LEFT JOIN erp.departments d ON lower(d.name) = lower(trim(e.department_name)) "
            "LEFT JOIN erp.sites s ON lower(s.name) = lower(trim(e.location_name))"))
        for k, u in by_xid.items():
            assert links[("teamtailor_users", k)] == u["id"]
            d, s = where[k]
            assert u["department_id"] == (deps[dep_names[d]] if d else None), (k, u["department_id"], d)
            assert u["location_id"] == (locs[site_names[s]] if s else None), (k, u["location_id"], s)
        return exp

    def platform_ids(self, store):
        return {"teamtailor_users": {u["id"] for u in items(store["users"])},
                "teamtailor_departments": {d["id"] for d in items(store["departments"])},
                "teamtailor_locations": {x["id"] for x in items(store["locations"])}}
