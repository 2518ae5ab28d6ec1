#!/usr/bin/python3
"""
Workelo's long runs, measured (issue 13): Workelo allows 1,000 requests per hour per token, so
a first load takes hours; here the sandbox's limit is scaled (1,000 per 60 s by default: the
same fixed window, 60 times faster) and hrsync is configured at that limit.

  1. rate: a first load of the demo-sized mirror and its Workelo part (units, employees,
     journeys). Achieved rate = requests / wall time, as a share of the limit, and the 429s.
  2. shared token: the same, another client of the token spending part of every window
     (--shared per window, at each window's start): the 429s again (goal: none).
  3. window: a first load stopped by `run --until +Ns`, then resumed without a window; the
     platform's store compared with the one an uninterrupted run left (ids aside).
  4. no change: a second run over the same mirror; its requests by path.

    /usr/bin/python3 bench/workelo.py [--employees 300 --limit 1000/60 --shared 300 --window 40]

Needs `make` (build/hrsync). Everything it starts is stopped and removed at the end.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
PY = "/usr/bin/python3"
BIN = os.environ.get("HRSYNC_BIN", os.path.join(ROOT, "build", "hrsync"))
CLIENT_ID, SECRET = "bench-client", "bench-secret-5b1e"
MAPS = [os.path.join(ROOT, "mappings", "workelo", f) for f in ("units.yaml", "employees.yaml", "tracks.yaml")]


def log(msg):
    sys.stderr.write("workelo-bench: %s\n" % msg)
    sys.stderr.flush()


class Sandbox:
    def __init__(self):
        self.proc = subprocess.Popen([PY, os.path.join(ROOT, "tests", "sandbox", "workelo.py"), "--port", "0",
                                      "--quiet", "--api-key", SECRET, "--client-id", CLIENT_ID, "--gc-off"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.proc.stdout.readline().split()[-1])
        self.url = "http://127.0.0.1:%d" % self.port

    def admin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/_sandbox" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def normalized(store):
    """Records as the ERP knows them (test_workelo.normalized): ids replaced by external ids."""
    from test_workelo import normalized as norm
    return norm(store)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--employees", type=int, default=300)
    ap.add_argument("--limit", default="1000/60", help="the sandbox's window: N requests per W seconds")
    ap.add_argument("--shared", type=int, default=300, help="requests another client spends per window (stage 2)")
    ap.add_argument("--window", type=int, default=40, help="seconds of the windowed run (stage 3)")
    ap.add_argument("--only", default="rate shared window nochange")
    a = ap.parse_args()
    n, w = a.limit.split("/")
    limit_rps = int(n) / float(w)
    rate = "%.6g/s" % limit_rps   # hrsync configured at the platform's limit
    work = tempfile.mkdtemp(prefix="hrsync-wkbench-", dir="/tmp")
    os.chmod(work, 0o755)
    pg = os.path.join(work, "pg")
    out = subprocess.run([os.path.join(ROOT, "tests", "setup", "pgcluster.sh"), "start", pg], check=True,
                         capture_output=True, text=True).stdout
    env_pg = dict(line.split("=", 1) for line in out.split() if "=" in line)
    sb = Sandbox()
    results = {"limit": a.limit, "employees": a.employees, "commit": subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()}
    try:
        env = dict(os.environ, **env_pg)

        def psql(sql, db):
            return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql], env=env,
                                  check=True, capture_output=True, text=True).stdout

        def load(db):
            subprocess.run(["psql", "-X", "-q", "-d", "postgres", "-c", 'DROP DATABASE IF EXISTS "%s"' % db,
                            "-c", 'CREATE DATABASE "%s"' % db], env=env, check=True, capture_output=True)
            gen = subprocess.Popen([PY, os.path.join(ROOT, "tests", "fixtures", "erp", "gen_erp.py"), "--employees",
                                    str(a.employees), "--absences", "0", "--assets", "0"], stdout=subprocess.PIPE)
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db], stdin=gen.stdout, env=env,
                           check=True, stdout=subprocess.DEVNULL)
            gen.wait()
            wk = subprocess.run([PY, os.path.join(ROOT, "tests", "fixtures", "erp", "gen_workelo.py")],
                                capture_output=True, text=True, check=True).stdout
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db], input=wk, env=env, check=True,
                           text=True, stdout=subprocess.DEVNULL)

        def configure(db, hr_rate):
            path = os.path.join(work, "hrsync-%s.yaml" % db)
            with open(path, "w") as f:
                f.write("database:\n  conninfo: \"host=%s port=%s dbname=%s user=%s\"\n  state_schema: hrsync\n"
                        "timezone: Europe/Paris\nconnectors:\n  workelo:\n    type: workelo\n"
                        "    base_url: \"%s/v1\"\n    token_url: \"%s/oauth/token\"\n    allow_insecure_http: true\n"
                        "    client_id: { env: WK_ID }\n    client_secret: { env: WK_SECRET }\n"
                        "    rate_limit: %s\n    max_in_flight: 4\n    timeout: 30s\nmappings: [ %s ]\n"
                        % (env_pg["PGHOST"], env_pg["PGPORT"], db, env_pg["PGUSER"], sb.url, sb.url, hr_rate,
                           ", ".join(json.dumps(m) for m in MAPS)))
            return path

        def run(cfg, *args):
            t0 = time.time()
            p = subprocess.run([BIN, "-c", cfg, "run", *args], capture_output=True, text=True,
                               env=dict(env, WK_ID=CLIENT_ID, WK_SECRET=SECRET), timeout=36000)
            with open(os.path.join(work, "last.log"), "w") as f:
                f.write(p.stderr)
            return p.returncode, p.stderr, time.time() - t0

        def fresh(db):
            sb.admin("POST", "/reset")
            sb.admin("POST", "/config", {"hourly": a.limit})
            psql("DROP SCHEMA IF EXISTS hrsync CASCADE", db)

        def requests_of(since=0):
            reqs = sb.admin("GET", "/requests?since=%d" % since)
            return reqs, collections.Counter(str(r["status"]) for r in reqs)

        load("wk")
        cfg = configure("wk", rate)
        stages = a.only.split()
        if "rate" in stages:
            fresh("wk")
            rc, err, secs = run(cfg)
            reqs, st = requests_of()
            span = reqs[-1]["ts"] - reqs[0]["ts"]
            achieved = (len(reqs) - 1) / span if span > 0 else 0
            results["rate"] = {"exit": rc, "requests": len(reqs), "seconds": round(span, 1),
                               "achieved_per_s": round(achieved, 3), "limit_per_s": round(limit_rps, 3),
                               "share": round(achieved / limit_rps, 4), "429s": st.get("429", 0)}
            log("rate: %s" % results["rate"])
            nochange_store = sb.admin("GET", "/store")
            if "nochange" in stages:
                seq = sb.admin("GET", "/stats")["total"]
                rc2, err2, secs2 = run(cfg)
                after, _ = requests_of(seq)
                results["nochange"] = {"exit": rc2, "requests": len(after), "seconds": round(secs2, 1),
                                       "writes": sum(1 for r in after if r["method"] != "GET"
                                                     and r["path"] != "/oauth/token"),
                                       "by_path": dict(collections.Counter(r["path"] for r in after))}
                log("no change: %s" % results["nochange"])
            uninterrupted = normalized(nochange_store)
        if "shared" in stages:
            fresh("wk")
            stop = threading.Event()

            def other_client():
                last_end = 0
                while not stop.wait(0.05):
                    store_win = sb.admin("GET", "/store")["window"]
                    if store_win["end"] != last_end and store_win["end"] > time.time():
                        last_end = store_win["end"]
                        sb.admin("POST", "/consume", {"n": a.shared})
            t = threading.Thread(target=other_client)
            t.start()
            try:
                rc, err, secs = run(cfg)
            finally:
                stop.set()
                t.join()
            reqs, st = requests_of()
            span = reqs[-1]["ts"] - reqs[0]["ts"]
            results["shared"] = {"exit": rc, "requests": len(reqs), "seconds": round(span, 1),
                                 "other_client_per_window": a.shared, "429s": st.get("429", 0),
                                 "share_of_what_was_left": round(((len(reqs) - 1) / span) / (
                                     limit_rps * (1 - a.shared / float(n))), 4) if span > 0 else 0}
            log("shared token: %s" % results["shared"])
        if "window" in stages:
            fresh("wk")
            rc1, err1, secs1 = run(cfg, "--until", "+%ds" % a.window)
            left = [l for l in err1.splitlines() if "run stopped by its window" in l]
            rc2, err2, secs2 = run(cfg)
            resumed = normalized(sb.admin("GET", "/store"))
            if "rate" not in stages:
                fresh("wk")
                run(cfg)
                uninterrupted = normalized(sb.admin("GET", "/store"))
            results["window"] = {"windowed_exit": rc1, "windowed_seconds": round(secs1, 1),
                                 "windowed_said": left[0].split("run stopped by its window", 1)[1] if left else None,
                                 "resumed_exit": rc2, "resumed_seconds": round(secs2, 1),
                                 "same_store_as_one_run": resumed == uninterrupted,
                                 "records": [len(x) for x in resumed]}
            log("window: %s" % results["window"])
        print(json.dumps(results, indent=1))
        return 0
    finally:
        sb.stop()
        subprocess.run([os.path.join(ROOT, "tests", "setup", "pgcluster.sh"), "stop", pg], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
