"""Teamtailor in the end-to-end tests: the sandbox client (tests/sandbox/teamtailor.py),
hrsync configured for it, the ERP side of the connector (tests/fixtures/erp/gen_teamtailor.py)
added to each test's mirror, and what must be on the platform after a complete sync."""
import os
import subprocess

from harness import PYTHON, ROOT, SandboxClient, World, items

TOKEN = "tt-admin-key-7d41b0"
GEN = os.path.join(ROOT, "tests", "fixtures", "erp", "gen_teamtailor.py")


class TeamtailorSandbox(SandboxClient):
    """tests/sandbox/teamtailor.py: one Admin key, no rate limit unless asked, no Retry-After
    (Teamtailor documents none: X-Rate-Limit-Reset says when the window opens)."""

    script = "teamtailor.py"
    api_prefix = "/v1"

    def __init__(self, rate="0", extra=()):
        self.rate = rate
        super().__init__(extra)

    def args(self):
        return ["--api-key", TOKEN, "--rate", self.rate, "--no-retry-after"]

    def auth_headers(self):
        return {"Authorization": "Token token=" + TOKEN, "X-Api-Version": "20240904",
                "Accept": "application/vnd.api+json", "Content-Type": "application/vnd.api+json"}

    def hire(self, first, last, email, job, department_id=None, stage="Hired"):
        return self.call("POST", "/_sandbox/hires", {
            "candidate": {"first-name": first, "last-name": last, "email": email, "phone": "+33 6 12 34 56 78"},
            "job": {"title": job, "department_id": department_id}, "stage-type": stage})["data"]


# Who hires: the users mapping's query (mappings/teamtailor/users.yaml).
STAFF = ("(department_name IN ('Отдел кадров', 'Ressources humaines') "
         "OR job_title IN ('Главный бухгалтер', 'Directeur', 'Chef d''équipe'))")


class TeamtailorWorld(World):
    name = connector_type = "teamtailor"
    sandbox_class = TeamtailorSandbox
    mapping_dir = os.path.join(ROOT, "mappings", "teamtailor")
    push_mappings = ("departments", "locations", "users")
    employees_mapping, absences_mapping = "users", None
    contract_files = ("departments.yaml", "locations.yaml", "users.yaml")
    credentials = {"token": ("TT_TOKEN", TOKEN)}
    secret_var = "TT_TOKEN"
    refusal_says = ("bad key, or a key of another region",)
    creates = r"^/(departments|locations|users)$"
    # The demo mirror of the tests has about 40 staff who hire: kills inside a first sync of
    # about 100 requests (index reads, creates), and between answers and commits.
    kill_plans = {"mixed": (("requests", 3), ("commit", 5), ("creates", 8), ("commit", 6), ("creates", 6)),
                  **{str(n): (("requests", n),) for n in (2, 15, 40)}}

    def __init__(self, cluster, db, sandbox, tmpdir, **kw):
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
        super().__init__(cluster, db, sandbox, tmpdir, **kw)

    # ---- what must be on the platform ------------------------------------------------
    def expected(self):
        m = self.manifest or {"bad": [], "duplicate_email": []}
        staff = {k: (fn, ln, em, dd) for k, fn, ln, em, dd in self.sql(
            f"SELECT personnel_number, first_name, last_name, email, dismissal_date FROM erp.employees WHERE {STAFF}")}
        bad = {k for k, (fn, ln, em, _dd) in staff.items()
               if not (fn or "").strip() or not (ln or "").strip() or not em or "@" not in em
               or not em.strip().split("@")[-1].count(".")}
        # Two staff sharing an e-mail: the second is merged into the first by Teamtailor.
        emails = {}
        dup = set()
        for k in sorted(staff):
            em = (staff[k][2] or "").strip().lower()
            if k in bad:
                continue
            if em in emails:
                dup.add(k)
            emails.setdefault(em, k)
        users = set(staff) - bad
        dismissed = {k for k in users if staff[k][3] is not None}
        deps = {k for (k,) in self.sql("SELECT department_code FROM erp.departments WHERE trim(name) <> ''")}
        sites = {k for (k,) in self.sql("SELECT site_code FROM erp.sites WHERE trim(name) <> ''")}
        return dict(employees=users, dismissed=dismissed, absences=set(), departments=deps, locations=sites,
                    bad=bad, dup=dup)

    def assert_end_state(self):
        exp = self.expected()
        store = self.sandbox.store()
        users = items(store["users"])
        assert not store["deleted_users"], f"users hard-deleted: {store['deleted_users']}"
        by_xid = {}
        for u in users:
            assert u["external-id"] not in by_xid, f"user {u['external-id']} twice"
            by_xid[u["external-id"]] = u
        want = exp["employees"] - exp["dup"]
        assert set(by_xid) >= want, f"missing users {sorted(want - set(by_xid))[:10]}"
        assert set(by_xid) <= exp["employees"], f"extra users {sorted(set(by_xid) - exp['employees'])[:10]}"
        no_access = {k for k, u in by_xid.items() if u["role"] == "no_access"}
        assert no_access == exp["dismissed"] & set(by_xid), sorted(no_access ^ (exp["dismissed"] & set(by_xid)))[:10]
        deps = {d["name"]: d["id"] for d in items(store["departments"])}
        assert len(deps) == len(items(store["departments"])), "departments created twice"
        dep_names = dict(self.sql("SELECT department_code, name FROM erp.departments"))
        assert set(deps) == {dep_names[c] for c in exp["departments"]}
        locs = {l_["name"] for l_ in items(store["locations"])}
        assert len(locs) == len(items(store["locations"])), "locations created twice"
        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
        for c in exp["departments"]:
            assert links[("departments", c)] == deps[dep_names[c]]
        # every user in the department its ERP row names
        code_of = dict(self.sql(
            "SELECT e.personnel_number, d.department_code FROM erp.employees e "
            "LEFT JOIN erp.departments d ON lower(d.name) = lower(trim(e.department_name))"))
        for k, u in by_xid.items():
            assert links[("users", k)] == u["id"]
            c = code_of.get(k)
            assert u["department_id"] == (deps[dep_names[c]] if c else None), (k, u["department_id"], c)
        return exp

    def platform_ids(self, store):
        return {"users": {u["id"] for u in items(store["users"])},
                "departments": {d["id"] for d in items(store["departments"])},
                "locations": {x["id"] for x in items(store["locations"])}}
