"""
End-to-end harness: a throwaway PostgreSQL cluster holding the demo ERP mirror, the
PeopleForce sandbox, and the real hrsync binary run against both.

Each test gets its own database (cloned from a template loaded once per session) and a
sandbox reset to its seed, so tests do not see each other's records.
"""
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

import psycopg2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PGCLUSTER = os.path.join(ROOT, "tests", "setup", "pgcluster.sh")
GEN = os.path.join(ROOT, "tests", "fixtures", "erp", "gen_erp.py")
SANDBOX = os.path.join(ROOT, "tests", "sandbox", "peopleforce.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "peopleforce", "seed.json")
HRSYNC = os.environ.get("HRSYNC_BIN", os.path.join(ROOT, "build", "hrsync"))
TOKEN = "test-api-key-5f2c9e"
PYTHON = "/usr/bin/python3"


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


class Sandbox:
    """The PeopleForce sandbox as a subprocess, with its admin API."""

    def __init__(self, rate="0", extra=()):
        self.proc = subprocess.Popen(
            [PYTHON, SANDBOX, "--port", "0", "--api-key", TOKEN, "--seed", SEED, "--rate", rate, "--quiet", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])
        self.admin = f"http://127.0.0.1:{self.port}/_sandbox"
        self.base_url = f"http://127.0.0.1:{self.port}/api/public/v3"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def reset(self):
        self.call("POST", "/reset")

    def store(self):
        return self.call("GET", "/store")

    def requests(self, since=0):
        return self.call("GET", f"/requests?since={since}")

    def last_seq(self):
        return self.call("GET", "/stats")["total"]

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


class Hrsync:
    """A config in a temp dir and the real binary run against it."""

    def __init__(self, cluster, db, sandbox, tmpdir, mappings=None, extra_conn="", extra_top=""):
        self.cluster, self.db, self.sandbox, self.dir = cluster, db, sandbox, str(tmpdir)
        self.mappings = mappings or [os.path.join(ROOT, "mappings", "peopleforce", "*.yaml")]
        self.extra_conn, self.extra_top = extra_conn, extra_top
        self.write_config()

    def write_config(self, rate="400/s", max_in_flight=8, timeout="5s"):
        maps = ", ".join(json.dumps(m) for m in self.mappings)
        self.path = os.path.join(self.dir, "hrsync.yaml")
        with open(self.path, "w") as f:
            f.write(f"""database:
  conninfo: "{self.cluster.conninfo(self.db)}"
  state_schema: hrsync
timezone: Europe/Paris
connectors:
  peopleforce:
    type: peopleforce
    base_url: "{self.sandbox.base_url}"
    allow_insecure_http: true
    token: {{ env: PF_TOKEN }}
    rate_limit: {rate}
    max_in_flight: {max_in_flight}
    timeout: {timeout}
{self.extra_conn}
mappings: [ {maps} ]
{self.extra_top}
""")

    def env(self):
        return dict(os.environ, PF_TOKEN=TOKEN, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
                    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")

    def run(self, *args, timeout=600, check_rc=None):
        t0 = time.time()
        p = subprocess.run([HRSYNC, "-c", self.path, *args], capture_output=True, text=True, timeout=timeout,
                           env=self.env())
        r = Result(p.returncode, p.stdout, p.stderr, time.time() - t0)
        assert not any(s in r.err for s in ("AddressSanitizer", "LeakSanitizer", "runtime error:")), r.err[-5000:]
        if check_rc is not None:
            assert r.rc == check_rc, f"exit {r.rc}, expected {check_rc}\n{r.err[-5000:]}"
        return r

    def start(self, *args, log=None):
        """Start hrsync without waiting; its output goes to a file (a full pipe would block it)."""
        out = open(log or os.path.join(self.dir, "background.log"), "a")
        p = subprocess.Popen([HRSYNC, "-c", self.path, *args], stdout=out, stderr=out, env=self.env())
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
