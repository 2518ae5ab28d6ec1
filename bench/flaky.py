#!/usr/bin/python3
"""
A flaky platform, measured (issue 17): one first run of the demo-sized mirror against each
sandbox answering 15% of requests with a 500, 502 or 503 (and applying 5% of the creates
before answering 500), at a realistic pace; then a Personio run with 2-second tokens and
slow answers. Prints, per connector: requests, faults injected, records still missing after
the run, records on the platform twice; and the token run's renewals.

    /usr/bin/python3 bench/flaky.py [--employees 600 --absences 1500 --assets 200 --rate 10/s]

Needs `make` (build/hrsync). Everything it starts is stopped and removed at the end.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PY = "/usr/bin/python3"
BIN = os.environ.get("HRSYNC_BIN", os.path.join(ROOT, "build", "hrsync"))
MARKER = re.compile(r"\[hrsync:(.*)#([0-9a-f]{16})\]")
FLAKY = [{"mode": "commit_then_500", "method": "POST", "ratio": 0.05, "seed": 7},
         {"mode": "5xx", "ratio": 0.15, "seed": 11}]


def log(msg):
    sys.stderr.write("flaky: %s\n" % msg)
    sys.stderr.flush()


class Sandbox:
    def __init__(self, script, args):
        self.proc = subprocess.Popen([PY, os.path.join(ROOT, "tests", "sandbox", script), "--port", "0", "--quiet",
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.proc.stdout.readline().split()[-1])
        self.url = "http://127.0.0.1:%d" % self.port

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_sandbox" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def config(path, conninfo, connector, maps, rate):
    with open(path, "w") as f:
        f.write("database:\n  conninfo: \"%s\"\n  state_schema: hrsync\ntimezone: Europe/Paris\nconnectors:\n%s"
                "    rate_limit: %s\n    max_in_flight: 8\n    timeout: 10s\nmappings: [ %s ]\n"
                % (conninfo, connector, rate, ", ".join(json.dumps(m) for m in maps)))


def run(cfg, env):
    t0 = time.time()
    p = subprocess.run([BIN, "-c", cfg, "run"], capture_output=True, text=True, env=env, timeout=7200)
    return p.returncode, p.stderr, time.time() - t0


def faults_of(sb):
    reqs = sb.admin("GET", "/requests?since=0")
    return len(reqs), sum(1 for r in reqs if r.get("fault") in ("500", "502", "503", "commit_then_500"))


def missing(psql, failures_sql):
    return [row for row in psql(failures_sql).splitlines() if row]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--employees", type=int, default=600)
    ap.add_argument("--absences", type=int, default=1500)
    ap.add_argument("--assets", type=int, default=200)
    ap.add_argument("--rate", default="10/s")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hrsync-flaky-", dir="/tmp")
    os.chmod(work, 0o755)
    pgdir = os.path.join(work, "pg")
    sandboxes = []
    try:
        out = subprocess.run([os.path.join(ROOT, "tests", "setup", "pgcluster.sh"), "start", pgdir], check=True,
                             capture_output=True, text=True).stdout
        pg = dict(line.split("=", 1) for line in out.split() if "=" in line)
        penv = dict(os.environ, **pg)
        conninfo = "host=%s port=%s dbname=%s user=%s" % (pg["PGHOST"], pg["PGPORT"], pg["PGDATABASE"], pg["PGUSER"])

        def psql(sql):
            return subprocess.run(["psql", "-X", "-At", "-c", sql], env=penv, check=True, capture_output=True,
                                  text=True).stdout

        log("loading a mirror of %d employees, %d absences, %d assets" % (a.employees, a.absences, a.assets))
        gen = subprocess.Popen([PY, os.path.join(ROOT, "tests", "fixtures", "erp", "gen_erp.py"), "--employees",
                                str(a.employees), "--absences", str(a.absences), "--assets", str(a.assets)],
                               stdout=subprocess.PIPE)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=gen.stdout, env=penv, check=True,
                       stdout=subprocess.DEVNULL)
        gen.wait()
        env = dict(os.environ, PF_TOKEN="flaky-key", PIO_ID="flaky-client", PIO_SECRET="flaky-secret")
        rows = []

        pf = Sandbox("peopleforce.py", ["--api-key", "flaky-key", "--seed",
                                        os.path.join(ROOT, "tests", "fixtures", "peopleforce", "seed.json")])
        sandboxes.append(pf)
        cfg = os.path.join(work, "pf.yaml")
        config(cfg, conninfo, "  peopleforce:\n    type: peopleforce\n    base_url: \"%s/api/public/v3\"\n"
               "    allow_insecure_http: true\n    token: { env: PF_TOKEN }\n" % pf.url,
               [os.path.join(ROOT, "mappings", "peopleforce", m) for m in ("employees.yaml", "absences.yaml",
                                                                          "assets.yaml")], a.rate)
        pf.admin("POST", "/faults", FLAKY)
        log("PeopleForce: one run with 15%% 5xx at %s" % a.rate)
        rc, err, secs = run(cfg, env)
        nreq, nfault = faults_of(pf)
        store = pf.admin("GET", "/store")
        emps = list(store["employees"].values()) if isinstance(store["employees"], dict) else store["employees"]
        lrs = store["leave_requests"]
        lrs = list(lrs.values()) if isinstance(lrs, dict) else lrs
        assets = store["assets"]
        assets = list(assets.values()) if isinstance(assets, dict) else assets
        dup = sum(c - 1 for c in collections.Counter(e["employee_number"] for e in emps).values() if c > 1)
        dup += sum(c - 1 for c in collections.Counter(MARKER.search(x["description"] or "").group(1)
                                                      for x in lrs if MARKER.search(x["description"] or "")).values()
                   if c > 1)
        dup += sum(c - 1 for c in collections.Counter(x["code"] for x in assets).values() if c > 1)
        left = missing(psql, "SELECT mapping || ' ' || erp_key FROM hrsync.failures WHERE kind = 'transient'")
        rows.append(("PeopleForce", rc, secs, nreq, nfault, len(left), dup, err.count("tried again before the run ends")))
        pf.admin("DELETE", "/faults")
        psql("DROP SCHEMA hrsync CASCADE")

        pio = Sandbox("personio.py", ["--api-key", "flaky-secret", "--client-id", "flaky-client", "--no-retry-after",
                                      "--seed", os.path.join(ROOT, "tests", "fixtures", "personio", "seed.json")])
        sandboxes.append(pio)
        pio.admin("POST", "/config", {"v1_rate": "24000/60", "employees_rate": "24000/60", "token_rate": "24000/60"})
        cfg = os.path.join(work, "pio.yaml")
        conn = ("  personio:\n    type: personio\n    base_url: \"%s\"\n    allow_insecure_http: true\n"
                "    client_id: { env: PIO_ID }\n    client_secret: { env: PIO_SECRET }\n" % pio.url)
        maps = [os.path.join(ROOT, "mappings", "personio", m) for m in ("employees.yaml", "absences.yaml")]
        config(cfg, conninfo, conn, maps, a.rate)
        pio.admin("POST", "/faults", FLAKY)
        log("Personio: one run with 15%% 5xx at %s" % a.rate)
        rc, err, secs = run(cfg, env)
        nreq, nfault = faults_of(pio)
        store = pio.admin("GET", "/store")
        dup = sum(c - 1 for c in collections.Counter(e["custom_attributes"].get("dynamic_1001")
                                                    for e in store["employees"]).values() if c > 1)
        keys = [MARKER.search(x["comment"] or "").group(1) for x in store["time_offs"] + store["absence_periods"]
                if MARKER.search(x["comment"] or "")]
        dup += sum(c - 1 for c in collections.Counter(keys).values() if c > 1)
        left = missing(psql, "SELECT mapping || ' ' || erp_key FROM hrsync.failures WHERE kind = 'transient'")
        rows.append(("Personio", rc, secs, nreq, nfault, len(left), dup, err.count("tried again before the run ends")))
        pio.admin("DELETE", "/faults")
        psql("DROP SCHEMA hrsync CASCADE")

        log("Personio: 2-second tokens, 150 ms answers, 8 in flight at 25/s")
        pio.admin("POST", "/reset")
        pio.admin("POST", "/config", {"v1_rate": "24000/60", "employees_rate": "24000/60", "token_rate": "24000/60",
                                      "token_ttl": 2, "delay_ms": 150})
        config(cfg, conninfo, conn, maps, "25/s")
        rc_t, err_t, secs_t = run(cfg, env)
        tok = pio.admin("GET", "/store")["tokens"]
        left_t = missing(psql, "SELECT mapping || ' ' || erp_key FROM hrsync.failures WHERE kind = 'transient' "
                               "OR reason LIKE '%credentials%'")

        print("| connector | exit | seconds | requests | faults injected | transient left after run 1 | duplicates "
              "| records in the second pass |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print("| %s | %d | %.0f | %d | %d | %d | %d | %d |" % r)
        print()
        print("Token run: exit %d in %.0f s; %d tokens issued (%d renewals), %d requests refused with an expired token, "
              "%d records failing on credentials or transiently"
              % (rc_t, secs_t, tok["issued"], tok["issued"] - 1, tok["rejected_expired"], len(left_t)))
    finally:
        for sb in sandboxes:
            try:
                sb.stop()
            except Exception:
                pass
        subprocess.run([os.path.join(ROOT, "tests", "setup", "pgcluster.sh"), "stop", pgdir], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
