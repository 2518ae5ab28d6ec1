"""
End-to-end harness: a throwaway PostgreSQL cluster holding the demo ERP mirror, platform
sandboxes as subprocesses, and the real hrsync binary run against both.

What every connector shares is here:
  * `Cluster`: tests/setup/pgcluster.sh, one per pytest process (a worker under xdist);
  * `SandboxClient`: a tests/sandbox/<platform>.py subprocess on an ephemeral port and the
    admin API that tests/sandbox/sandbox_base.py gives every sandbox (reset, store,
    requests, stats, faults, config);
  * `World`: one mirror database, one sandbox, an hrsync config in a temp dir and the
    binary run against them, plus the hooks a connector fills in to be held to the
    contract of test_contract.py (see the class).

A connector's own client and world live in world_<connector>.py. Each test gets its own
database (cloned from a template loaded once per session) and a sandbox reset to its seed,
so tests do not see each other's records.
"""
import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import psycopg2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PGCLUSTER = os.path.join(ROOT, "tests", "setup", "pgcluster.sh")
GEN = os.path.join(ROOT, "tests", "fixtures", "erp", "gen_erp.py")
SANDBOXES = os.path.join(ROOT, "tests", "sandbox")
HRSYNC = os.environ.get("HRSYNC_BIN", os.path.join(ROOT, "build", "hrsync"))
PYTHON = "/usr/bin/python3"
# hrsync's comment marker on records that have no key field of their own (absences).
MARKER = re.compile(r"\[hrsync:(.*)#([0-9a-f]{16})\]")


class Cluster:
    """A throwaway PostgreSQL cluster (tests/setup/pgcluster.sh)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hrsync-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        os.rmdir(self.dir)  # pgcluster.sh creates it and marks it as its own
        out = subprocess.run([PGCLUSTER, "start", self.dir], check=True, capture_output=True, text=True).stdout
        self.env = dict(line.split("=", 1) for line in out.split() if "=" in line)
        self.host, self.port, self.user = self.env["PGHOST"], self.env["PGPORT"], self.env["PGUSER"]

    def conninfo(self, db):
        return f"host={self.host} port={self.port} dbname={db} user={self.user}"

    def connect(self, db="erp_mirror"):
        c = psycopg2.connect(host=self.host, port=self.port, dbname=db, user=self.user)
        c.autocommit = True
        return c

    def admin(self, *statements):
        """Statements that cannot run in a transaction (CREATE/DROP DATABASE)."""
        c = self.connect("postgres")
        try:
            cur = c.cursor()
            for s in statements:
                cur.execute(s)
        finally:
            c.close()

    def load(self, db, employees, absences, assets, seed=42, manifest=None):
        self.admin(f'DROP DATABASE IF EXISTS "{db}"', f'CREATE DATABASE "{db}"')
        args = [PYTHON, GEN, "--employees", str(employees), "--absences", str(absences), "--assets", str(assets),
                "--seed", str(seed)]
        if manifest:
            args += ["--manifest", manifest]
        gen = subprocess.Popen(args, stdout=subprocess.PIPE)
        env = dict(os.environ, PGHOST=self.host, PGPORT=self.port, PGUSER=self.user, PGDATABASE=db)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=gen.stdout, check=True, env=env,
                       stdout=subprocess.DEVNULL)
        gen.stdout.close()
        assert gen.wait() == 0

    def clone(self, template, db):
        self.admin(f'DROP DATABASE IF EXISTS "{db}"', f'CREATE DATABASE "{db}" TEMPLATE "{template}"')

    def stop(self):
        subprocess.run([PGCLUSTER, "stop", self.dir], check=False, capture_output=True)


class SandboxClient:
    """A platform sandbox (tests/sandbox/<script>) as a subprocess on an ephemeral port, with
    the admin API every sandbox has (sandbox_base.py: /_sandbox/...). A subclass names its
    script, its command-line arguments and where its API lives under the port."""

    script = None       # file name in tests/sandbox
    api_prefix = ""     # the platform's API root under http://127.0.0.1:PORT

    def __init__(self, extra=()):
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(SANDBOXES, self.script), "--port", "0", "--quiet", *self.args(), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])
        self.root = f"http://127.0.0.1:{self.port}"
        self.admin = self.root + "/_sandbox"
        self.base_url = self.root + self.api_prefix

    def args(self):
        """Command-line arguments: the credentials it accepts, its seed, its options."""
        raise NotImplementedError

    def call(self, method, path, body=None):
        """An admin request (no auth, never faulted, not logged)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def api(self, method, path, body=None):
        """A request to the platform's API itself, authenticated as the platform wants:
        (status, parsed body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers=dict(self.auth_headers(), **{"Content-Type": "application/json"}))
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def auth_headers(self):
        raise NotImplementedError

    def reset(self):
        self.call("POST", "/reset")

    def store(self):
        return self.call("GET", "/store")

    def requests(self, since=0):
        return self.call("GET", f"/requests?since={since}")

    def stats(self):
        return self.call("GET", "/stats")

    def last_seq(self):
        return self.stats()["total"]

    def faults(self, *rules):
        self.call("POST", "/faults", list(rules))

    def clear_faults(self):
        self.call("DELETE", "/faults")

    @contextlib.contextmanager
    def faulted(self, *rules):
        """The sandbox with these fault rules for the block, cleared after it whatever happens."""
        self.faults(*rules)
        try:
            yield
        finally:
            self.clear_faults()

    def fired(self, settle_s=30):
        """The logged requests a fault rule answered, once each request a rule caught is in
        the log: a 'timeout' is logged when the sandbox answers at last, after its delay,
        maybe after the run that sent it has ended. Call it before the rules are cleared."""
        deadline = time.time() + settle_s
        while True:
            caught = sum(r["fired"] for r in self.call("GET", "/faults")["faults"])
            fired = [x for x in self.requests() if x["fault"]]
            if len(fired) >= caught or time.time() > deadline:
                return fired
            time.sleep(0.05)

    def config(self, **kw):
        self.call("POST", "/config", kw)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def items(coll):
    return list(coll.values()) if isinstance(coll, dict) else list(coll)


class Result:
    def __init__(self, rc, out, err, seconds):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds

    def summary(self, mapping):
        """The summary line's counts for a mapping, as a dict."""
        for line in self.err.splitlines():
            if f"mapping={mapping} summary" in line:
                fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                return {k: float(v) if k == "seconds" else int(v) for k, v in fields.items()
                        if k not in ("run", "mapping")}
        raise AssertionError(f"no summary for {mapping} in:\n{self.err[-3000:]}")


WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")


class World:
    """hrsync configured for one connector's sandbox and one mirror database, and the real
    binary run against them.

    A connector subclasses it (world_<connector>.py) and fills in what differs; the
    contract tests (test_contract.py) use only what is declared here:

      name, connector_type    the connector's name and type in hrsync.yaml
      sandbox_class           its SandboxClient subclass
      mapping_dir             its shipped mappings (mappings/<platform>)
      push_mappings           the names of its push mappings, in run order
      employees_mapping       the one of them pushing erp.employees
      absences_mapping        the one pushing erp.absences (None: the platform takes none)
      contract_files          the shipped mapping files the contract tests run (None: all)
      credentials             config key -> (environment variable, value) hrsync reads it from
      secret_var              the variable of the secret that is refused when wrong (the
                              API key, the client secret): none of the values in
                              `credentials` under it ever shows, nor a wrong one
      issued_secret           regex of secrets the platform hands out (bearer tokens), or None
      creates                 regex of the API paths that create a main record
      lost_answer_rule(mode)  the fault rule that loses answers to writes of a first sync
      kill_plans              {id: ((how, n), ...)}: runs to SIGKILL in turn, then recover
      refusal_says            what a refused secret's message shows besides "credentials refused"
      credentials_expiring()  makes what the platform issued expire mid-run (a context)
      writes(requests)        the logged requests that are writes to the platform
      expected()              what must be on the platform after a complete sync: a dict
                              with at least `employees`, `dismissed` and `absences`, sets of
                              ERP keys (the contract picks a leaver and a cancellation there)
      assert_end_state()      every valid record once on the platform, links agreeing
      platform_ids(store)     {mapping: ids on the platform}, for assert_consistent
      assert_consistent()     assert_end_state plus what a run to the end also leaves
      first_run_rc            the exit code of a complete run over the demo mirror
      shared_reads            records search the same listing (no filter by their key): the
                              backoff check cannot tell another record's read from a retry
    """

    name = connector_type = None
    sandbox_class = None
    mapping_dir = None
    push_mappings = ()
    employees_mapping = absences_mapping = None
    contract_files = None
    credentials = {}
    secret_var = None
    issued_secret = None
    creates = None
    first_run_rc = 1   # the demo mirror's planted bad rows fail
    shared_reads = False
    # how: "requests" (SIGKILL once the sandbox saw n more API requests), "creates" (n more
    # requests on `creates`), "commit" (hrsync kills itself after the platform's nth answer,
    # before the state commit: HRSYNC_TEST_KILL_BEFORE_COMMIT). The next kill or the
    # recovery run starts where the killed run left off, and each must still find that much
    # to do in the conftest's mirror (300 employees, 700 absences): every kill is asserted.
    kill_plans = {"mixed": (("requests", 3), ("commit", 20), ("creates", 60), ("commit", 330), ("creates", 200),
                            ("commit", 150))}

    def __init__(self, cluster, db, sandbox, tmpdir, mappings=None, extra_conn="", extra_top=""):
        self.cluster, self.db, self.sandbox, self.dir = cluster, db, sandbox, str(tmpdir)
        self.mappings = mappings or [os.path.join(self.mapping_dir, "*.yaml")]
        self.extra_conn, self.extra_top = extra_conn, extra_top
        self.manifest = None
        self.write_config()

    # ---- config and runs -----------------------------------------------------------
    rate = "400/s"     # hrsync's rate_limit when write_config is not given one

    def write_config(self, rate=None, max_in_flight=8, timeout="5s"):
        rate = self.rate if rate is None else rate
        maps = ", ".join(json.dumps(m) for m in self.mappings)
        creds = "".join(f"    {k}: {{ env: {var} }}\n" for k, (var, _) in self.credentials.items())
        rate_line = f"    rate_limit: {rate}\n" if rate else ""
        self.path = os.path.join(self.dir, "hrsync.yaml")
        with open(self.path, "w") as f:
            f.write(f"""database:
  conninfo: "{self.cluster.conninfo(self.db)}"
  state_schema: hrsync
timezone: Europe/Paris
connectors:
  {self.name}:
    type: {self.connector_type}
    base_url: "{self.sandbox.base_url}"
    allow_insecure_http: true
{creds}{rate_line}    max_in_flight: {max_in_flight}
    timeout: {timeout}
{self.extra_conn}
mappings: [ {maps} ]
{self.extra_top}
""")

    def use_mappings(self, *files):
        """Only these files of the shipped mappings."""
        self.mappings = [os.path.join(self.mapping_dir, f) for f in files]
        self.write_config()

    def secret(self):
        """The value of the main secret (secret_var)."""
        return dict(self.credentials.values())[self.secret_var]

    def env(self):
        return dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
                    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", **dict(self.credentials.values()))

    def run(self, *args, timeout=600, check_rc=None, env=None):
        t0 = time.time()
        p = subprocess.run([HRSYNC, "-c", self.path, *args], capture_output=True, text=True, timeout=timeout,
                           env=env or self.env())
        r = Result(p.returncode, p.stdout, p.stderr, time.time() - t0)
        assert not any(s in r.err for s in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), r.err[-5000:]
        if check_rc is not None:
            assert r.rc == check_rc, f"exit {r.rc}, expected {check_rc}\n{r.err[-5000:]}"
        return r

    def start(self, *args, log=None, env=None):
        """Start hrsync without waiting; its output goes to a file (a full pipe would block it)."""
        out = open(log or os.path.join(self.dir, "background.log"), "a")
        p = subprocess.Popen([HRSYNC, "-c", self.path, *args], stdout=out, stderr=out, env=env or self.env())
        out.close()
        return p

    def sql(self, query, params=None):
        c = self.cluster.connect(self.db)
        try:
            cur = c.cursor()
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def has_state(self):
        return self.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'hrsync' "
                        "AND table_name = 'failures'")[0][0] == 1

    def state_dump(self):
        """Every row of every table of the state schema, as text."""
        tables = [t for (t,) in self.sql("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'hrsync' ORDER BY 1")]
        assert {"links", "failures", "runs"} <= set(tables), tables
        out = []
        for t in tables:
            out += [f"{t}: {r}" for (r,) in self.sql(f'SELECT x::text FROM hrsync."{t}" x')]
        return "\n".join(out)

    # ---- the contract's hooks ----------------------------------------------------------
    refusal_says = ()  # what the refusal of a wrong secret shows besides "credentials refused"

    @contextlib.contextmanager
    def credentials_expiring(self):
        """For the block, what the platform issued to hrsync (a token) expires in the middle
        of a run; yields a check of the run's Result that it was renewed. A platform that
        issues nothing has nothing to do."""
        yield lambda result: None

    def writes(self, reqs):
        """The logged requests that write to the platform."""
        return [r for r in reqs if r["method"] in WRITE_METHODS]

    def lost_answer_rule(self, mode):
        """A fault rule losing the answers to some writes of a first sync (`mode`: a sandbox
        fault mode in which the platform may have acted)."""
        rule = {"mode": mode, "method": "POST", "every": 7}
        if mode == "timeout":
            rule["delay_ms"] = 6000  # beyond the 5 s client timeout
            rule["count"] = 5
        return rule

    def expected(self):
        raise NotImplementedError

    # ---- the ERP edits the contract tests make, in the world's own tables -------------
    def dismiss(self, key):
        """The employee mapping's record `key` leaves (its terminate.when becomes true)."""
        self.sql("UPDATE erp.employees SET dismissal_date = '2026-11-20', dismissal_reason = 'DEM' "
                 "WHERE personnel_number = %s", (key,))

    def cancel_absence(self, key):
        """The absence mapping's record `key` is cancelled."""
        self.sql("UPDATE erp.absences SET status = 'cancelled' WHERE absence_id = %s", (key,))

    def duplicate_emails(self):
        """The employee keys planted with an e-mail another one has (one of them is refused)."""
        return set(self.manifest["duplicate_email"])

    def assert_end_state(self):
        raise NotImplementedError

    def platform_ids(self, store):
        """{mapping: ids of the records on the platform}, for assert_consistent."""
        raise NotImplementedError

    def assert_consistent(self):
        """assert_end_state, plus what any run that went to the end leaves: a link that is
        not deleted points at a record the platform has, and no transient failure is left
        (it was retried). A connector adds its own (terminations, deletions) by extending it."""
        exp = self.assert_end_state()
        ids = self.platform_ids(self.sandbox.store())
        for m, k, pid, st in self.sql("SELECT mapping, erp_key, platform_id, status FROM hrsync.links "
                                      "WHERE status IN ('active', 'terminated') AND platform_id IS NOT NULL"):
            if m in ids:
                assert pid in ids[m], f"{m} {k} ({st}): the state says {pid}, unknown to the platform"
        left = self.sql("SELECT mapping, erp_key, reason FROM hrsync.failures WHERE kind = 'transient'")
        assert not left, left[:5]
        return exp

    def mapping_totals(self, result, field):
        """A summary field added up over the push mappings of a run."""
        return sum(result.summary(m)[field] for m in self.push_mappings)


class TokenWorld(World):
    """A platform that issues client-credentials tokens at TOKEN_PATH (Personio, Workelo): its
    sandbox can expire every live token at once (POST /_sandbox/tokens/expire)."""
    TOKEN_PATH = None

    @contextlib.contextmanager
    def credentials_expiring(self):
        """Every live token dies once the run's first token is 1.5 s old (a token refused
        right after it was issued stops the connector: not what this is about), answers
        slowed so that the run outlives it."""
        self.sandbox.config(delay_ms=3)
        stop = threading.Event()
        seq = self.sandbox.last_seq()

        def expire():
            while not stop.wait(0.02):
                if any(x["path"] == self.TOKEN_PATH and x["status"] == 200 for x in self.sandbox.requests(seq)):
                    if not stop.wait(1.5):
                        self.sandbox.call("POST", "/tokens/expire")
                    return
        expirer = threading.Thread(target=expire)
        expirer.start()

        def renewed(result):
            assert result.seconds > 1.5 and "renewed" in result.err, "the token did not expire during the run"
        try:
            yield renewed
        finally:
            stop.set()
            expirer.join()
            self.sandbox.config(delay_ms=0)

    def writes(self, reqs):
        """Token requests are POSTs but write nothing."""
        return [r for r in super().writes(reqs) if r["path"] != self.TOKEN_PATH]


def __getattr__(name):
    """The names bench/run.py (and older code) import from here: the PeopleForce ones.
    Looked up when asked for, since world_peopleforce imports this module."""
    compat = {"Sandbox": "PeopleForceSandbox", "Hrsync": "PeopleForceWorld", "TOKEN": "TOKEN", "SEED": "SEED"}
    if name in compat:
        import world_peopleforce
        return getattr(world_peopleforce, compat[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
