#!/usr/bin/python3
"""
hrsync benchmark (issue 6): speed, memory and request economy at scale.

    make bench                                  # everything, the issue's sizes
    /usr/bin/python3 bench/run.py --help        # every knob (make passes BENCH_* variables)

Against a throwaway PostgreSQL cluster and the PeopleForce sandbox (tests/e2e/harness.py),
with the optimised binary (build/hrsync) and two tools linked from the daemon's own objects
(build/bench/seedlinks, build/bench/mapbench). Prints a table and writes
bench/results/results.md and bench/results/results.json (plus logs, EXPLAIN output and
profiles in bench/results/). Stages, in order (--only picks some):

  real      a mirror small enough to sync for real (--real-rows): the create rate at full
            speed; the seed check (seedlinks' links == what the run stored); then request
            economy (item 3): change --change-pct % of the rows, count the write requests.
  nochange  items 1 and 2: for each size, a mirror with every employee already in state
            (seeded by seedlinks), then no-change runs: time and peak RSS of `hrsync run`,
            against `COPY (SELECT <the mapping's columns> ...) TO STDOUT` in the same run.
  push      item 4: fresh creates against the sandbox limited to R req/s with answers
            delayed by L ms; hrsync's rate_limit at R (known), then above R (unknown).
  mapbench  item 5: rows/s through mapping_eval + fingerprint alone, and a callgrind
            profile of it; perf (cpu-clock) profile of the largest no-change run.

Every cluster, sandbox and temporary directory is removed at the end, also on error or ^C.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402  (Cluster, Sandbox, Hrsync)
from harness import Cluster, Hrsync, Sandbox  # noqa: E402

GEN = os.path.join(ROOT, "tests", "fixtures", "erp", "gen_erp.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "peopleforce", "seed.json")
EMPLOYEES_YAML = os.path.join(ROOT, "mappings", "peopleforce", "employees.yaml")
RESULTS = os.path.join(ROOT, "bench", "results")
PY = "/usr/bin/python3"
MIB = 1024 * 1024
STAGES = ("real", "nochange", "push", "mapbench")


def find_psql():
    """psql itself, from the server's binaries (as tests/setup/pgcluster.sh finds them). Debian's
    /usr/bin/psql is a Perl wrapper that adds ~55 ms to every call: timed against hrsync, a
    COPY through it would flatter hrsync by that much (a third of a 10,000-row COPY)."""
    dirs = [os.environ.get("PG_BINDIR", "")]
    try:
        dirs += sorted((os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
                       key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0), reverse=True)
    except OSError:
        pass
    for d in dirs:
        if d and os.access(os.path.join(d, "psql"), os.X_OK):
            return os.path.join(d, "psql")
    return "psql"


PSQL = find_psql()


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def fmt_n(n):
    return "{:,}".format(n)


def median(xs):
    return statistics.median(xs) if xs else None


# ------------------------------------------------------------------ world helpers

class World:
    """The cluster, the sandbox, and helpers bound to them."""

    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.bin = os.path.join(args.bin, "hrsync")
        self.seedlinks = os.path.join(args.bin, "bench", "seedlinks")
        self.mapbench = os.path.join(args.bin, "bench", "mapbench")
        self.cluster = None
        self.sandbox = None

    def start(self):
        t0 = time.time()
        self.cluster = Cluster()
        # --gc-off: a full collection of the sandbox's store (20,000 employees in item 4) stalls
        # it ~70 ms, and the requests that queue meanwhile would reach its rate limiter bunched.
        self.sandbox = Sandbox(extra=("--log-max", "1000000", "--gc-off"))
        log("cluster on port %s, sandbox on port %d (%.1f s)" % (self.cluster.port, self.sandbox.port,
                                                                  time.time() - t0))

    def stop(self):
        if self.sandbox:
            self.sandbox.stop()
            self.sandbox = None
        if self.cluster:
            self.cluster.stop()
            self.cluster = None

    def pgenv(self, db):
        c = self.cluster
        return dict(os.environ, PGHOST=c.host, PGPORT=str(c.port), PGUSER=c.user, PGDATABASE=db)

    def psql(self, db, sql, out=subprocess.DEVNULL, extra=()):
        return subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql], env=self.pgenv(db),
                              stdout=out, stderr=subprocess.PIPE, text=True, check=True)

    def sql(self, db, query):
        c = self.cluster.connect(db)
        try:
            cur = c.cursor()
            cur.execute(query)
            return cur.fetchall() if cur.description else None
        finally:
            c.close()

    def load(self, db, employees, seed=42):
        """A mirror of `employees` rows (no absences, assets or planted bad rows)."""
        t0 = time.time()
        self.cluster.admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db, 'CREATE DATABASE "%s"' % db)
        gen = subprocess.Popen([PY, GEN, "--employees", str(employees), "--absences", "0", "--assets", "0",
                                "--seed", str(seed), "--no-bad-rows"], stdout=subprocess.PIPE)
        subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=gen.stdout, env=self.pgenv(db),
                       stdout=subprocess.DEVNULL, check=True)
        gen.stdout.close()
        if gen.wait() != 0:
            raise RuntimeError("gen_erp.py failed")
        # A mirror as a night finds it, not minutes after a bulk load: autovacuum's first pass
        # over a freshly loaded table (every page written, the visibility map set) otherwise
        # lands on the measured nights, slowing hrsync's read and the reference COPY unevenly.
        self.psql(db, "VACUUM (ANALYZE)")
        secs = time.time() - t0
        log("mirror %s: %s employees loaded in %.1f s" % (db, fmt_n(employees), secs))
        return secs

    def drop(self, db):
        self.cluster.admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)

    def hrsync(self, db, name, rate="100000/s", max_in_flight=8, timeout="30s"):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        h = Hrsync(self.cluster, db, self.sandbox, d, mappings=[EMPLOYEES_YAML])
        h.write_config(rate=rate, max_in_flight=max_in_flight, timeout=timeout)
        return h

    def run(self, h, *args, label="run", rss=True):
        """hrsync with its peak RSS and CPU time; stderr to a log file.

        Peak RSS comes from GNU time (/usr/bin/time), not from this process's wait4(): Python
        starts children with vfork, and the kernel counts the parent's own high-water RSS into
        the child's ru_maxrss at exec, so wait4 would report Python's size. GNU time adds 10 to
        14 ms to the run's seconds here; rss=False (a timed night: no peak RSS wanted) runs
        hrsync directly and takes its CPU time from wait4."""
        logf = os.path.join(self.tmp, "%s.log" % label)
        timef = os.path.join(self.tmp, "%s.time" % label)
        env = dict(os.environ, PF_TOKEN=harness.TOKEN)
        cmd = [self.bin, "-c", h.path, *args]
        gnu_time = rss and os.access("/usr/bin/time", os.X_OK)
        if gnu_time:
            cmd = ["/usr/bin/time", "-o", timef, "-f", "%M %U %S %x", *cmd]
        before = self.stats()
        with open(logf, "w") as out:
            t0 = time.time()
            if gnu_time:
                rc = subprocess.run(cmd, stdout=out, stderr=out, env=env).returncode
            elif rss:
                rc, hwm = poll_hwm(subprocess.Popen(cmd, stdout=out, stderr=out, env=env))
            else:
                p = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = rc = os.waitstatus_to_exitcode(status)
            secs = time.time() - t0
        after = self.stats()
        if gnu_time:
            with open(timef) as f:
                tl = f.read().split()
            maxrss, utime, stime = int(tl[-4]), float(tl[-3]), float(tl[-2])
        elif rss:
            maxrss, utime, stime = hwm, 0.0, 0.0
        else:
            maxrss, utime, stime = 0, ru.ru_utime, ru.ru_stime
        with open(logf) as f:
            err = f.read()
        r = {"rc": rc, "seconds": secs, "maxrss_kib": maxrss, "utime": utime, "stime": stime,
             "requests": delta(before, after), "log": logf}
        for line in err.splitlines():
            if "summary" in line and "mapping=" in line:
                r["summary"] = {k: v for k, v in (kv.split("=", 1) for kv in line.split() if "=" in kv)
                                if k not in ("run", "mapping")}
            if "read marks:" in line:
                r["read_marks"] = line[line.index("read marks:"):]
        if rc not in (0, 1):
            log("hrsync %s exited %d; last lines of %s:\n%s" % (" ".join(args), rc, logf,
                                                                "\n".join(err.splitlines()[-15:])))
        return r

    def stats(self):
        return self.sandbox.call("GET", "/stats")

    def columns(self, h, mapping="employees"):
        out = subprocess.run([self.seedlinks, "-c", h.path, "-m", mapping, "--columns"], check=True,
                             capture_output=True, text=True, env=dict(os.environ, PF_TOKEN=harness.TOKEN)).stdout
        table, cols = out.strip().split("\t")
        return table, cols.split(",")

    def seed_links(self, h, db, mapping="employees", table="links"):
        """seedlinks | COPY into the state schema's links (or another table of the same shape)."""
        t0 = time.time()
        env = dict(os.environ, PF_TOKEN=harness.TOKEN)
        sl = subprocess.Popen([self.seedlinks, "-c", h.path, "-m", mapping], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
        cp = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                             "COPY hrsync.%s (mapping, erp_key, platform_id, status, fingerprint, payload, extra, "
                             "nir_hash) FROM STDIN" % table], stdin=sl.stdout, env=self.pgenv(db),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sl.stdout.close()
        err = sl.stderr.read().decode()
        rc = sl.wait()
        if cp.returncode != 0 or rc not in (0, 1):
            raise RuntimeError("seeding links failed: %s %s" % (err, cp.stderr))
        self.psql(db, "ANALYZE hrsync.%s" % table)
        secs = time.time() - t0
        log("%s (%.1f s)" % (err.strip(), secs))
        return secs, err.strip()


def poll_hwm(p):
    """Without GNU time: VmHWM of the process read every 20 ms (its last value before exit)."""
    hwm = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    return p.returncode, hwm


def delta(before, after):
    """Requests the sandbox saw between two /stats answers: total, writes, reads, 429s."""
    bm, am = before.get("by_method", {}), after.get("by_method", {})
    by_method = {k: am.get(k, 0) - bm.get(k, 0) for k in am if am.get(k, 0) - bm.get(k, 0)}
    bs, as_ = before.get("by_status", {}), after.get("by_status", {})
    by_status = {k: as_.get(k, 0) - bs.get(k, 0) for k in as_ if as_.get(k, 0) - bs.get(k, 0)}
    total = after["total"] - before["total"]
    reads = by_method.get("GET", 0) + by_method.get("HEAD", 0)
    return {"total": total, "writes": total - reads, "reads": reads, "by_method": by_method,
            "by_status": by_status, "429": by_status.get("429", 0)}


def timed(fn):
    t0 = time.time()
    fn()
    return time.time() - t0


# ------------------------------------------------------------------ stage: real

def stage_real(w, res):
    a = w.args
    n = a.real_rows
    db = "bench_real"
    w.load(db, n)
    w.sandbox.reset()
    h = w.hrsync(db, "real")
    r = w.run(h, "run", "--mapping", "employees", label="real-create")
    created = int(r.get("summary", {}).get("created", 0))
    out = {"rows": n, "create_run": strip(r), "created": created,
           "records_per_s": created / r["seconds"] if r["seconds"] else None,
           "requests_per_s": r["requests"]["total"] / r["seconds"] if r["seconds"] else None}
    if r["rc"] not in (0, 1) or not created:
        raise RuntimeError("the real sync failed (see %s)" % r["log"])
    rps = out["requests_per_s"]
    out["extrapolated_1m_create_s"] = 1_000_000 * r["requests"]["total"] / n / rps if rps else None
    log("real sync of %s rows: %s created in %.1f s, %s requests (%.0f req/s, %.0f records/s); "
        "1,000,000 would take ~%.0f s" % (fmt_n(n), fmt_n(created), r["seconds"], fmt_n(r["requests"]["total"]),
                                          rps, out["records_per_s"], out["extrapolated_1m_create_s"]))

    # Seed check: what seedlinks computes for this mirror == what the real run stored.
    w.psql(db, "CREATE TABLE hrsync.seedcheck (LIKE hrsync.links INCLUDING DEFAULTS)")
    w.seed_links(h, db, table="seedcheck")
    rows = w.sql(db, """
        SELECT count(*) AS linked,
               count(s.erp_key) AS seeded,
               count(*) FILTER (WHERE s.erp_key IS NOT NULL AND l.fingerprint = s.fingerprint) AS same_fp,
               count(*) FILTER (WHERE s.erp_key IS NOT NULL AND l.payload = s.payload) AS same_payload,
               count(*) FILTER (WHERE s.erp_key IS NOT NULL AND l.status = s.status) AS same_status,
               count(*) FILTER (WHERE s.erp_key IS NOT NULL AND l.nir_hash IS NOT DISTINCT FROM s.nir_hash)
                 AS same_nir,
               count(*) FILTER (WHERE s.erp_key IS NOT NULL AND
                 (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(coalesce(l.extra, '{}')) k) IS NOT DISTINCT
                 FROM (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(coalesce(s.extra, '{}')) k))
                 AS same_extra_keys,
               (SELECT count(*) FROM hrsync.seedcheck) AS seed_rows
        FROM hrsync.links l LEFT JOIN hrsync.seedcheck s USING (mapping, erp_key)
        WHERE l.mapping = 'employees'""")[0]
    keys = ("linked", "seeded", "same_fp", "same_payload", "same_status", "same_nir", "same_extra_keys",
            "seed_rows")
    chk = dict(zip(keys, rows))
    chk["ok"] = all(chk[k] == chk["linked"] for k in keys) and chk["linked"] == created
    out["seed_check"] = chk
    log("seed check: %s" % json.dumps(chk))
    w.psql(db, "DROP TABLE hrsync.seedcheck")

    # Item 3: a no-change run first (must send no write), then change pct % of the rows.
    r0 = w.run(h, "run", "--mapping", "employees", label="real-nochange")
    k = max(1, round(n * a.change_pct / 100.0))
    w.psql(db, """UPDATE erp.employees SET mobile_phone = mobile_phone || '9'
                  WHERE personnel_number IN (SELECT personnel_number FROM erp.employees
                      WHERE dismissal_date IS NULL AND mobile_phone IS NOT NULL
                      ORDER BY md5(personnel_number) LIMIT %d)""" % k)
    seq0 = w.sandbox.last_seq()
    r1 = w.run(h, "run", "--mapping", "employees", label="real-change")
    reqs = w.sandbox.requests(since=seq0)
    writes = [q for q in reqs if q["method"] not in ("GET", "HEAD")]
    by_route = {}
    for q in reqs:
        route = q["method"] + " " + re.sub(r"/\d+", "/{id}", q["path"])
        by_route[route] = by_route.get(route, 0) + 1
    touched = sorted({re.sub(r"^/employees/(\d+).*", r"\1", q["path"]) for q in writes})
    r2 = w.run(h, "run", "--mapping", "employees", label="real-after")
    out["economy"] = {"changed_rows": k, "nochange_before": strip(r0), "change_run": strip(r1),
                      "after_run": strip(r2), "write_requests": len(writes),
                      "read_requests": len(reqs) - len(writes), "by_route": by_route,
                      "distinct_records_written": len(touched),
                      "ok": len(writes) == k and r0["requests"]["writes"] == 0 and r2["requests"]["writes"] == 0}
    log("economy: %d rows changed -> %d write requests (%s), %d reads; no-change runs around it: %d and %d writes"
        % (k, len(writes), by_route, len(reqs) - len(writes), r0["requests"]["writes"], r2["requests"]["writes"]))
    w.drop(db)
    res["real"] = out


def strip(r):
    return {k: v for k, v in r.items() if k != "log"}


# ------------------------------------------------------------------ stage: nochange

def capture_query(w, db, h):
    """The SQL `hrsync run` streams with (from the server log of one run)."""
    logf = os.path.join(w.cluster.dir, "postgres.log")
    start = os.path.getsize(logf)
    w.cluster.admin("ALTER DATABASE \"%s\" SET log_statement = 'all'" % db)
    try:
        r = w.run(h, "run", "--mapping", "employees", label="capture-%s" % db)
    finally:
        w.cluster.admin("ALTER DATABASE \"%s\" RESET log_statement" % db)
    # The log may be large (the first run's hash updates are logged too): scan it line by line.
    sql, cont = None, False
    with open(logf, errors="replace") as f:
        f.seek(start)
        for line in f:
            if sql is None:
                # "statement:" (simple protocol) or "execute <unnamed>:" (PQexecParams)
                m = re.search(r"(?:statement|execute [^:]*): DECLARE \S+ NO SCROLL CURSOR FOR (.*)", line)
                if m:
                    sql, cont = m.group(1), True
            elif cont and line[:1] in ("\t", " "):
                sql += "\n" + line.rstrip("\n")
            else:
                break
    if not sql:
        log("could not find the DECLARE of hrsync's cursor in %s: its own query is not timed" % logf)
    return (sql.strip() if sql else None), r


def copy_time(w, db, sql):
    return timed(lambda: w.psql(db, "COPY (%s) TO STDOUT" % sql, out=subprocess.DEVNULL))


def cursor_time(w, db, sql):
    """The same query read like hrsync reads it: a cursor, FETCH FORWARD 2000 (psql FETCH_COUNT)."""
    def go():
        subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-v", "FETCH_COUNT=2000",
                        "-c", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "-c", sql, "-c", "COMMIT"],
                       env=w.pgenv(db), stdout=subprocess.DEVNULL, check=True)
    return timed(go)


def stage_nochange(w, res):
    a = w.args
    sizes = sorted(set(a.sizes) | {a.rows})
    anatomy_size = min(sizes, key=lambda x: abs(x - 100000))
    out = {"sizes": {}}
    res["nochange"] = out
    for n in sizes:
        db = "bench_%d" % n
        s = {"rows": n}
        s["load_s"] = w.load(db, n)
        w.sandbox.reset()
        h = w.hrsync(db, "nochange-%d" % n)
        t0 = time.time()
        m = w.run(h, "db", "migrate", label="migrate-%d" % n)
        if m["rc"] != 0:
            raise RuntimeError("db migrate failed: see %s" % m["log"])
        table, cols = w.columns(h)
        s["seed_s"], s["seed_note"] = w.seed_links(h, db)
        s["links"] = w.sql(db, "SELECT count(*) FROM hrsync.links")[0][0]
        s["state_mib"] = w.sql(db, "SELECT pg_total_relation_size('hrsync.links') / 1048576.0")[0][0]
        s["mirror_mib"] = w.sql(db, "SELECT pg_total_relation_size('erp.employees') / 1048576.0")[0][0]
        s["setup_s"] = time.time() - t0 + s["load_s"]
        # The first run after seeding (it may fill what seedlinks does not compute), with the query logged.
        s["query"], warm = capture_query(w, db, h)
        s["warmup"] = strip(warm)
        # That run rewrote every link to add its source hash, which seedlinks does not compute: a
        # real sync writes it with the link, so its links table is never twice its size. VACUUM FULL
        # gives the measured runs the table a real sync leaves (and no autovacuum mid-run).
        w.psql(db, "VACUUM (FULL, ANALYZE) hrsync.links")
        w.psql(db, "VACUUM hrsync.links")  # (FULL leaves the visibility map unset: index-only reads need it)
        s["state_mib_after_first_run"] = w.sql(db, "SELECT pg_total_relation_size('hrsync.links') / 1048576.0")[0][0]
        log("size %s: first run after seeding %.2f s, rc %d, %d write requests, peak RSS %.1f MiB"
            % (fmt_n(n), warm["seconds"], warm["rc"], warm["requests"]["writes"], warm["maxrss_kib"] / 1024))
        plain = "SELECT %s FROM %s ORDER BY %s" % (", ".join(cols), table, cols[0])
        s["copy_sql"] = plain
        runs, copies, qcopies, qcursors = [], [], [], []
        for i in range(a.repeat):
            copies.append(copy_time(w, db, plain))
            if s["query"]:
                qcopies.append(copy_time(w, db, s["query"]))
                qcursors.append(cursor_time(w, db, s["query"]))
            runs.append(strip(w.run(h, "run", "--mapping", "employees", label="nochange-%d-%d" % (n, i))))
            log("size %s, round %d: run %.2f s (rc %d, user %.2f s, peak RSS %.1f MiB, %d writes), COPY %.2f s%s"
                % (fmt_n(n), i + 1, runs[-1]["seconds"], runs[-1]["rc"], runs[-1]["utime"],
                   runs[-1]["maxrss_kib"] / 1024, runs[-1]["requests"]["writes"], copies[-1],
                   ", its own query: COPY %.2f s, cursor %.2f s" % (qcopies[-1], qcursors[-1]) if qcopies else ""))
        s["runs"] = runs
        s["copy_s"] = copies
        s["query_copy_s"] = qcopies
        s["query_cursor_s"] = qcursors
        s["run_median_s"] = median([r["seconds"] for r in runs])
        s["copy_median_s"] = median(copies)
        s["ratio"] = s["run_median_s"] / s["copy_median_s"]
        s["query_copy_median_s"] = median(qcopies)
        s["query_cursor_median_s"] = median(qcursors)
        s["user_median_s"] = median([r["utime"] for r in runs])
        s["sys_median_s"] = median([r["stime"] for r in runs])
        s["rss_median_mib"] = median([r["maxrss_kib"] for r in runs]) / 1024
        s["rss_max_mib"] = max(r["maxrss_kib"] for r in runs) / 1024
        s["writes"] = sum(r["requests"]["writes"] for r in runs)
        s["reads_per_run"] = median([r["requests"]["reads"] for r in runs])
        s["rc"] = sorted({r["rc"] for r in runs})
        s["unchanged"] = [r.get("summary", {}).get("unchanged") for r in runs]
        if s["query"] and n == max(sizes):
            try:
                s["explain"] = os.path.join(RESULTS, "explain-%d.txt" % n)
                with open(s["explain"], "w") as f:
                    w.psql(db, "EXPLAIN (ANALYZE, BUFFERS) %s" % s["query"], out=f)
            except subprocess.CalledProcessError as e:
                log("EXPLAIN failed: %s" % e.stderr)
        if n == anatomy_size:
            s["anatomy"] = anatomy(w, db, table, cols, a.repeat)
            if s["query"]:
                s["anatomy"].append({"what": "hrsync's own query", "seconds": s["query_copy_median_s"],
                                     "sql": s["query"]})
            ref = s["anatomy"][0]["seconds"]
            log("query anatomy at %s rows: %s" % (fmt_n(n), "; ".join("%s %.2f s (%.1f×)" % (
                v["what"], v["seconds"], v["seconds"] / ref) for v in s["anatomy"])))
        if a.perf and n == max(sizes) and shutil.which("perf"):
            s["perf"] = perf_profile(w, h, n)
        if a.profile_rows and n == min(sizes) and shutil.which("valgrind"):
            s["callgrind"] = callgrind_run(w, h, n)
        out["sizes"][str(n)] = s
        if n != a.rows:
            w.drop(db)
    big = out["sizes"][str(a.rows)]
    rss = [out["sizes"][str(n)]["rss_median_mib"] for n in sizes]
    out["item1"] = {"rows": a.rows, "run_s": big["run_median_s"], "copy_s": big["copy_median_s"],
                    "ratio": big["ratio"], "writes": big["writes"],
                    "ok_time": big["ratio"] <= 2.0, "ok_writes": big["writes"] == 0}
    out["item2"] = {"sizes": sizes, "rss_mib": rss, "growth_mib": max(rss) - min(rss),
                    "ok_under_64": max(out["sizes"][str(n)]["rss_max_mib"] for n in sizes) < 64,
                    # "beyond noise": more than 2 MiB or 10 % above the smallest size
                    "ok_flat": max(rss) - min(rss) <= max(2.0, 0.10 * min(rss))}
    w.drop("bench_%d" % a.rows)


def perf_top(data, pids, limit=20):
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--pid", ",".join(str(p) for p in pids),
                          "--sort", "dso,sym", "--percentage", "relative"], capture_output=True, text=True).stdout
    top = []
    for line in rep.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)", line)
        if m:
            top.append({"pct": float(m.group(1)), "dso": m.group(2), "symbol": m.group(4)})
    return rep, top[:limit]


def children_of(ppid):
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.add(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def perf_profile(w, h, n):
    """One no-change run, sampled system-wide (cpu-clock; the VM has no hardware counters), then
    split by process: hrsync itself and the backends of this benchmark's cluster (the machine is
    shared: other people's postgres and hrsync processes are left out by pid)."""
    data = os.path.join(w.tmp, "perf-%d.data" % n)
    with open(os.path.join(w.cluster.dir, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    perf = subprocess.Popen(["perf", "record", "-q", "-a", "-e", "cpu-clock", "-F", "499", "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    logf = os.path.join(w.tmp, "perf-%d.log" % n)
    backends = set()
    with open(logf, "w") as out:
        t0 = time.time()
        p = subprocess.Popen([w.bin, "-c", h.path, "run", "--mapping", "employees"], stdout=out, stderr=out,
                             env=dict(os.environ, PF_TOKEN=harness.TOKEN))
        while p.poll() is None:
            backends |= children_of(postmaster)
            time.sleep(0.05)
        secs = time.time() - t0
    perf.send_signal(signal.SIGINT)
    perf.wait()
    by_pid = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "pid"], capture_output=True,
                            text=True).stdout
    shares = {}
    for line in by_pid.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\d+):(\S+)", line)
        if m:
            shares[int(m.group(2))] = (float(m.group(1)), m.group(3))
    mine = {pid for pid in backends if pid in shares and shares[pid][1].startswith("postgres")}
    pg_share = sum(shares[pid][0] for pid in mine)
    hs_share = shares.get(p.pid, (0.0, ""))[0]
    pg_rep, pg_top = perf_top(data, sorted(mine) or [0])
    hs_rep, hs_top = perf_top(data, [p.pid])
    txt = os.path.join(RESULTS, "perf-nochange-%d.txt" % n)
    with open(txt, "w") as f:
        f.write("== samples by process (system-wide; this run: hrsync pid %d, backends %s) ==\n%s\n"
                "== this cluster's postgres backends ==\n%s\n== hrsync ==\n%s" % (
                    p.pid, sorted(mine), by_pid, pg_rep, hs_rep))
    log("perf of the %s-row no-change run (%.1f s): its postgres backends %.1f%%, hrsync %.1f%% of all samples; "
        "postgres top: %s" % (fmt_n(n), secs, pg_share, hs_share,
                              ", ".join("%s %.1f%%" % (t["symbol"], t["pct"]) for t in pg_top[:6])))
    return {"file": txt, "seconds": secs, "comms": {"postgres": pg_share, "hrsync": hs_share},
            "postgres": pg_top, "hrsync": hs_top}


def anatomy(w, db, table, cols, repeat):
    """What each ingredient of hrsync's query costs on the server (COPY into /dev/null, medians)."""
    c = ", ".join("s.%s" % x for x in cols)
    key = "s.%s" % cols[0]
    variants = [
        ("the mapping's columns (the reference)", "SELECT %s FROM %s s ORDER BY %s" % (c, table, key)),
        ("+ its links' status and source hash (index links_nochange, in key order: what `run` joins)",
         "SELECT %s, l.status, l.src_hash FROM %s s LEFT JOIN (SELECT erp_key, status, src_hash FROM hrsync.links "
         "WHERE mapping = 'employees' ORDER BY erp_key OFFSET 0) l ON l.erp_key = %s::text ORDER BY %s"
         % (c, table, key, key)),
        ("  (the whole link joined, as before v3: platform_id, status, fingerprint, extra, src_hash)",
         "SELECT %s, l.platform_id, l.status, encode(l.fingerprint, 'hex'), l.extra::text, l.src_hash FROM %s s "
         "LEFT JOIN hrsync.links l ON l.mapping = 'employees' AND l.erp_key = %s::text ORDER BY %s"
         % (c, table, key, key)),
        ("  (the hash computed by the server, as before: hash_record_extended(ROW(columns::text)))",
         "SELECT %s, hash_record_extended(ROW(%s), 0) FROM %s s ORDER BY %s"
         % (c, ", ".join("s.%s::text" % x for x in cols), table, key)),
        ("+ count(*) OVER (PARTITION BY key)", "SELECT %s, count(*) OVER (PARTITION BY %s) FROM %s s ORDER BY %s"
         % (c, key, table, key)),
    ]
    out = []
    for name, sql in variants:
        ts = [copy_time(w, db, sql) for _ in range(repeat)]
        out.append({"what": name, "seconds": median(ts), "sql": sql})
    return out


def annotate_top(text):
    """(total, [{pct, ir, fn}]) from callgrind_annotate output."""
    total, top = None, []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\(100\.0%\)\s+)?PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)\s*$", line)
        if m and total:
            ir = int(m.group(1).replace(",", ""))
            fn = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))
            path, _, func = fn.rpartition(":")
            fn = "%s:%s" % (os.path.basename(path), func) if path else fn
            top.append({"pct": round(100.0 * ir / total, 2), "ir": ir, "fn": fn})
    return total, top


def callgrind_annotate(outfile, txt):
    """Self and inclusive costs; the full listings go to txt."""
    self_ = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=99", outfile], capture_output=True,
                           text=True).stdout
    incl = subprocess.run(["callgrind_annotate", "--auto=no", "--threshold=99", "--inclusive=yes", outfile],
                          capture_output=True, text=True).stdout
    with open(txt, "w") as f:
        f.write("== self cost ==\n" + self_ + "\n\n== inclusive cost ==\n" + incl)
    total, top = annotate_top(self_)
    _, itop = annotate_top(incl)
    # the inclusive list starts with main, (below main)...: keep the engine's own functions
    seen, keep = set(), []
    for t in itop:
        if "below main" in t["fn"] or "libc_start" in t["fn"] or t["fn"].startswith("???") or t["pct"] >= 100.0:
            continue
        if t["fn"] not in seen:  # a function is listed once per file name spelling
            seen.add(t["fn"])
            keep.append(t)
    itop = keep
    return total, top, itop


def callgrind_run(w, h, n):
    """The no-change run under callgrind, counting inside sync_run only (not the config load)."""
    out = os.path.join(w.tmp, "callgrind.nochange.out")
    logf = os.path.join(w.tmp, "callgrind-nochange.log")
    env = dict(os.environ, PF_TOKEN=harness.TOKEN)
    t0 = time.time()
    with open(logf, "w") as lf:
        subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=sync_run", "--callgrind-out-file=" + out,
                        w.bin, "-c", h.path, "run", "--mapping", "employees"], stdout=lf, stderr=lf, env=env)
    txt = os.path.join(RESULTS, "callgrind-nochange-%d.txt" % n)
    total, top, itop = callgrind_annotate(out, txt)
    log("callgrind of the %s-row no-change run (%.0f s): %s Ir in sync_run, %s per row; top: %s" % (
        fmt_n(n), time.time() - t0, fmt_n(total or 0), fmt_n(int((total or 0) / n)),
        ", ".join("%s %.1f%%" % (t["fn"], t["pct"]) for t in top[:6])))
    return {"file": txt, "total_ir": total, "ir_per_row": (total or 0) / n, "top": top[:20], "inclusive": itop[:25]}


# ------------------------------------------------------------------ stage: push

def steady(reqs, trim=0.1):
    """Rates over the middle of the run (the first and last `trim` of its span left out)."""
    ts = sorted(q["ts"] for q in reqs)
    if len(ts) < 10:
        return None
    t0, t1 = ts[0], ts[-1]
    a, b = t0 + trim * (t1 - t0), t1 - trim * (t1 - t0)
    mid = [q for q in reqs if a <= q["ts"] <= b]
    span = b - a
    ok = [q for q in mid if q["status"] != 429]
    per_s = {}
    for q in reqs:
        sec = int(q["ts"] - t0)
        per_s.setdefault(sec, [0, 0])
        per_s[sec][0 if q["status"] != 429 else 1] += 1
    return {"span_s": t1 - t0, "window_s": span, "sent_per_s": len(mid) / span, "accepted_per_s": len(ok) / span,
            "per_second": [per_s.get(i, [0, 0]) for i in range(int(t1 - t0) + 1)]}


def max_in_window(ts, width=1.0):
    best, j = 0, 0
    for i in range(len(ts)):
        while ts[i] - ts[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


def push_mapping(w):
    """The demo's employees mapping without its `position` block: one request per create.

    (PeopleForce takes positions only through a second request per employee; item 4 measures
    how many requests per second get through, and its 20,000 creates fit the half hour this way.)"""
    out, skip = [], False
    with open(EMPLOYEES_YAML) as f:
        for line in f:
            if line.startswith("  position:"):
                skip = True
                continue
            if skip and line.startswith("    "):
                continue
            skip = False
            out.append(line)
    d = os.path.join(w.tmp, "push-mapping")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "employees.yaml")  # the mapping's name is its file's
    with open(path, "w") as f:
        f.writelines(out)
    return path


def arrival_gaps(reqs, q):
    """The gaps (ms) between the arrivals the sandbox's limiter counted in the second before
    the refused request q, on its own clock: one well under 1000/R shows where they bunched."""
    if q.get("arrived") is None:
        return []
    xs = sorted(p["arrived"] for p in reqs if p.get("arrived") is not None and
                q["arrived"] - 1.0 <= p["arrived"] <= q["arrived"])
    return [round(1000 * (b - a), 1) for a, b in zip(xs, xs[1:])]


def push_variant(w, db, label, conn_rate, max_in_flight):
    a = w.args
    w.psql(db, "DROP SCHEMA IF EXISTS hrsync CASCADE")
    w.sandbox.reset()
    w.sandbox.config(rate="%d/1" % a.push_rate, delay_ms=a.push_delay_ms)
    h = w.hrsync(db, "push-" + label, rate=conn_rate, max_in_flight=max_in_flight, timeout="30s")
    h.mappings = [push_mapping(w)]
    h.write_config(rate=conn_rate, max_in_flight=max_in_flight, timeout="30s")
    seq0 = w.sandbox.last_seq()
    r = w.run(h, "run", "--mapping", "employees", label="push-" + label)
    reqs = w.sandbox.requests(since=seq0)
    st = steady(reqs) or {}
    n429 = sum(1 for q in reqs if q["status"] == 429)
    summ = r.get("summary", {})
    v = {"hrsync_rate_limit": conn_rate, "max_in_flight": max_in_flight, "run": strip(r),
         "requests": len(reqs), "429s": n429, "created": int(summ.get("created", 0)),
         "failed": int(summ.get("failed", 0)), "hrsync_429s": int(summ.get("429s", 0)),
         "creates_per_s": int(summ.get("created", 0)) / r["seconds"] if r["seconds"] else None}
    v.update({k: st.get(k) for k in ("span_s", "window_s", "sent_per_s", "accepted_per_s")})
    v["per_second"] = st.get("per_second")
    # Each 429 (the first 5) with the requests the sandbox counted in the second before it.
    v["429_context"] = [
        {"at": round(q["ts"] - reqs[0]["ts"], 3),
         "window": [[round(p["ts"] - q["ts"], 4), p.get("method"), p.get("path"), p.get("status")]
                    for p in reqs if q["ts"] - 1.05 <= p["ts"] <= q["ts"]],
         "arrival_gaps_ms": arrival_gaps(reqs, q)}
        for q in [q for q in reqs if q["status"] == 429][:5]] if reqs else []
    # The most requests the sandbox's limiter counted in any 1 s (its monotonic arrival clock):
    # more than R means some were answered 429 (hrsync keeps any R + 1 sends 1 s + 15 ms apart).
    v["max_arrivals_1s"] = max_in_window(sorted(q["arrived"] for q in reqs if q.get("arrived") is not None))
    v["share_of_R"] = (v["accepted_per_s"] or 0) / a.push_rate
    log("push %s (rate_limit %s, max_in_flight %d): %.1f s, %d requests, %d 429s, %d created, %d failed; steady "
        "%.1f req/s accepted (%.0f%% of R=%d), %.1f sent" % (
            label, conn_rate, max_in_flight, r["seconds"], len(reqs), n429, v["created"], v["failed"],
            v["accepted_per_s"] or 0, 100 * v["share_of_R"], a.push_rate, v["sent_per_s"] or 0))
    return v


def stage_push(w, res):
    a = w.args
    db = "bench_push"
    w.load(db, a.push_creates, seed=7)
    mif = max(a.push_in_flight, int(a.push_rate * a.push_delay_ms / 1000.0) + 2)
    out = {"creates": a.push_creates, "R": a.push_rate, "L_ms": a.push_delay_ms, "max_in_flight": mif}
    out["known"] = push_variant(w, db, "known", "%d/s" % a.push_rate, mif)
    unknown_rate = a.push_unknown_rate or a.push_rate * 4
    out["unknown"] = push_variant(w, db, "unknown", "%d/s" % unknown_rate, mif)
    if a.push_margin:
        # Information: the known limit with a margin below R (what a sysadmin can configure today).
        out["margin"] = push_variant(w, db, "margin", "%d/s" % int(a.push_rate * a.push_margin), mif)
    k, u = out["known"], out["unknown"]
    out["ok_known_rate"] = k["share_of_R"] >= 0.95
    out["ok_known_429"] = k["429s"] == 0
    out["ok_unknown_rate"] = u["share_of_R"] >= 0.90
    w.sandbox.reset()
    w.drop(db)
    res["push"] = out


# ------------------------------------------------------------------ stage: mapbench

def stage_mapbench(w, res):
    a = w.args
    gen = subprocess.Popen([PY, GEN, "--employees", str(a.map_rows), "--absences", "0", "--assets", "0",
                            "--no-bad-rows"], stdout=subprocess.PIPE)
    mb = subprocess.run([w.mapbench, EMPLOYEES_YAML, SEED, "--passes", str(a.map_passes)], stdin=gen.stdout,
                        capture_output=True, text=True)
    gen.stdout.close()
    gen.wait()
    if mb.returncode != 0:
        raise RuntimeError("mapbench failed: %s" % mb.stderr)
    out = json.loads(mb.stdout)
    log("mapbench: %s rows/s of CPU time (%.2f us/row: eval %d ns, jv_dumps %d ns, sha256 %d ns; wall %s rows/s), "
        "digest %s" % (fmt_n(int(out["rows_per_s"])), out["us_per_row"], out["ns_per_row"]["eval"],
                       out["ns_per_row"]["dump"], out["ns_per_row"]["sha256"], fmt_n(int(out["wall_rows_per_s"])),
                       out["digest"][:16]))
    if a.profile_rows and shutil.which("valgrind"):
        cg = os.path.join(w.tmp, "callgrind.mapbench.out")
        gen = subprocess.Popen([PY, GEN, "--employees", str(a.profile_rows), "--absences", "0", "--assets", "0",
                                "--no-bad-rows"], stdout=subprocess.PIPE)
        subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=run_pass", "--callgrind-out-file=" + cg,
                        w.mapbench, EMPLOYEES_YAML, SEED, "--profile"], stdin=gen.stdout, capture_output=True,
                       text=True)
        gen.stdout.close()
        gen.wait()
        txt = os.path.join(RESULTS, "callgrind-mapbench.txt")
        total, top, itop = callgrind_annotate(cg, txt)
        out["callgrind"] = {"file": txt, "rows": a.profile_rows, "total_ir": total,
                            "ir_per_row": (total or 0) / a.profile_rows, "top": top[:25], "inclusive": itop[:30]}
        log("callgrind mapbench: %s Ir per row; self: %s" % (
            fmt_n(int(out["callgrind"]["ir_per_row"])), ", ".join("%s %.1f%%" % (t["fn"], t["pct"]) for t in top[:8])))
    elif a.profile_rows:
        out["callgrind"] = {"skipped": "valgrind is not installed (apt-get install valgrind)"}
    res["mapbench"] = out


# ------------------------------------------------------------------ report

def verdict(ok):
    return "pass" if ok else "MISS"


def report(res, args):
    rows = []
    nc = res.get("nochange")
    if nc:
        i1 = nc["item1"]
        big = nc["sizes"][str(args.rows)]
        rows.append(("1", "no-change run, %s employees in state: time vs COPY of the same columns" % fmt_n(args.rows),
                     "run %.2f s / COPY %.2f s = %.2f× (median of %d; hrsync's own query: COPY %s s, cursor %s s; "
                     "hrsync CPU %.2f s user)" % (
                         i1["run_s"], i1["copy_s"], i1["ratio"], args.repeat,
                         "%.2f" % big["query_copy_median_s"] if big["query_copy_median_s"] else "?",
                         "%.2f" % big["query_cursor_median_s"] if big["query_cursor_median_s"] else "?",
                         big["user_median_s"]),
                     "≤ 2×", verdict(i1["ok_time"])))
        rows.append(("1", "no-change run: write requests", "%d (reads: %d per run, the lookup lists)" % (
            i1["writes"], big["reads_per_run"]), "0", verdict(i1["ok_writes"])))
        i2 = nc["item2"]
        rows.append(("2", "peak RSS at %s rows" % " / ".join(fmt_n(n) for n in i2["sizes"]),
                     " / ".join("%.1f" % x for x in i2["rss_mib"]) + " MiB (median of %d)" % args.repeat,
                     "< 64 MiB", verdict(i2["ok_under_64"])))
        rows.append(("2", "RSS growth from smallest to largest", "%+.1f MiB" % (max(i2["rss_mib"]) - i2["rss_mib"][0]),
                     "flat (≤ max(2 MiB, 10 %))", verdict(i2["ok_flat"])))
    rl = res.get("real")
    if rl:
        e = rl["economy"]
        rows.append(("3", "request economy: %s of %s rows changed (mobile_phone)" % (
            fmt_n(e["changed_rows"]), fmt_n(rl["rows"])),
            "%d write requests (%s), %d reads; no-change runs before/after: %d/%d writes" % (
                e["write_requests"], ", ".join("%s ×%d" % kv for kv in sorted(e["by_route"].items())),
                e["read_requests"], e["nochange_before"]["requests"]["writes"], e["after_run"]["requests"]["writes"]),
            "= %d writes" % e["changed_rows"], verdict(e["ok"])))
        c = rl["seed_check"]
        rows.append(("-", "seed check: seedlinks vs a real run (%s records)" % fmt_n(c["linked"]),
                     "fingerprint %d, payload %d, status %d, nir_hash %d, extra keys %d identical" % (
                         c["same_fp"], c["same_payload"], c["same_status"], c["same_nir"], c["same_extra_keys"]),
                     "all %d" % c["linked"], verdict(c["ok"])))
        rows.append(("-", "real creates at full speed (sandbox unthrottled)",
                     "%.0f records/s, %.0f req/s; 1,000,000 creates ≈ %.0f min" % (
                         rl["records_per_s"], rl["requests_per_s"], rl["extrapolated_1m_create_s"] / 60),
                     "(info)", ""))
    p = res.get("push")
    if p:
        k, u = p["known"], p["unknown"]
        rows.append(("4", "throttled push, %s creates, R=%d/s, L=%d ms, rate_limit=R, max_in_flight %d" % (
            fmt_n(p["creates"]), p["R"], p["L_ms"], k["max_in_flight"]),
            "%.1f req/s accepted = %.1f%% of R (%d requests in %.0f s, %.1f creates/s)" % (
                k["accepted_per_s"] or 0, 100 * k["share_of_R"], k["requests"], k["run"]["seconds"],
                k["creates_per_s"] or 0), "≥ 95% of R", verdict(p["ok_known_rate"])))
        rows.append(("4", "throttled push, limit known: 429s", "%d (most requests counted in any 1 s: %d)" % (
            k["429s"], k["max_arrivals_1s"]), "0", verdict(p["ok_known_429"])))
        rows.append(("4", "throttled push, limit unknown (rate_limit=%s): recovered rate" % u["hrsync_rate_limit"],
                     "%.1f req/s accepted = %.1f%% of R; %d 429s, %d created, %d failed, %.0f s" % (
                         u["accepted_per_s"] or 0, 100 * u["share_of_R"], u["429s"], u["created"], u["failed"],
                         u["run"]["seconds"]), "≥ 90% of R", verdict(p["ok_unknown_rate"])))
        if p.get("margin"):
            g = p["margin"]
            rows.append(("-", "throttled push, rate_limit=%s (%.0f%% of R)" % (g["hrsync_rate_limit"], 100 * args.push_margin),
                         "%.1f req/s accepted = %.0f%% of R; %d 429s" % (g["accepted_per_s"] or 0, 100 * g["share_of_R"],
                                                                        g["429s"]), "(info)", ""))
    mb = res.get("mapbench")
    if mb:
        rows.append(("5", "mapping engine alone (mapping_eval + fingerprint), %s rows" % fmt_n(mb["rows"]),
                     "%s rows/s of CPU (%.2f µs/row: mapping_eval %d ns, jv_dumps %d ns, sha256 %d ns)%s" % (
                         fmt_n(int(mb["rows_per_s"])), mb["us_per_row"], mb["ns_per_row"]["eval"],
                         mb["ns_per_row"]["dump"], mb["ns_per_row"]["sha256"],
                         "; %s instructions/row" % fmt_n(int(mb["callgrind"]["ir_per_row"]))
                         if mb.get("callgrind", {}).get("ir_per_row") else ""),
                     "(profile)", ""))
    return rows


def write_results(res, args, rows):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump(res, f, indent=1, default=str)
    m = res["meta"]
    lines = ["# hrsync benchmark", "",
             "commit `%s`%s, %s, %s; %s; load average at the start of each stage: %s" % (
                 m["commit"], " (dirty: %s)" % (", ".join(m["dirty_files"]) or "bench files only") if m["dirty"] else "",
                 m["date"], m["host"], m["postgres"],
                 ", ".join("%s %.1f" % kv for kv in res.get("load_before", {}).items())), "",
             "| # | measurement | figure | target | result |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append("| %s |" % " | ".join(str(x).replace("|", "\\|") for x in r))
    nc = res.get("nochange")
    if nc:
        lines += ["", "## No-change runs by size", "",
                  "| rows | run (median) | COPY columns | ratio | its query: COPY / cursor | hrsync user+sys CPU "
                  "| peak RSS | writes | first run after seeding | links size: seeded → after that run |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for n, s in sorted(nc["sizes"].items(), key=lambda kv: int(kv[0])):
            lines.append("| %s | %.2f s | %.2f s | %.2f× | %s / %s s | %.2f + %.2f s | %.1f MiB | %d | %.2f s | %.0f → %.0f MiB |"
                         % (fmt_n(int(n)), s["run_median_s"], s["copy_median_s"], s["ratio"],
                            "%.2f" % s["query_copy_median_s"] if s["query_copy_median_s"] else "?",
                            "%.2f" % s["query_cursor_median_s"] if s["query_cursor_median_s"] else "?",
                            s["user_median_s"], s["sys_median_s"], s["rss_median_mib"], s["writes"],
                                   s["warmup"]["seconds"], s["state_mib"], s.get("state_mib_after_first_run") or 0))
        for n, s in sorted(nc["sizes"].items(), key=lambda kv: int(kv[0])):
            if s.get("anatomy"):
                ref = s["anatomy"][0]["seconds"]
                lines += ["", "## What the server spends on hrsync's query, %s rows" % fmt_n(int(n)), "",
                          "`COPY (...) TO STDOUT` into /dev/null, median of %d (the SQL is in results.json)" % args.repeat,
                          "", "| query | time | vs the reference |", "| --- | --- | --- |"]
                for v in s["anatomy"]:
                    lines.append("| %s | %.2f s | %.1f× |" % (v["what"], v["seconds"], v["seconds"] / ref))
            if s.get("perf", {}).get("postgres"):
                pf = s["perf"]
                lines += ["", "## perf (cpu-clock, system-wide) of one no-change run, %s rows" % fmt_n(int(n)), "",
                          "Share of all samples: this cluster's postgres backends %.1f%%, hrsync %.1f%% (the rest: other "
                          "processes of the shared machine). Self time within each; full report: %s" % (
                              pf["comms"].get("postgres", 0), pf["comms"].get("hrsync", 0),
                              os.path.relpath(pf["file"], ROOT)),
                          "", "| postgres | symbol | | hrsync | symbol |", "| --- | --- | --- | --- | --- |"]
                pg, hs = pf["postgres"][:15], pf["hrsync"][:15]
                for i in range(max(len(pg), len(hs))):
                    a_ = pg[i] if i < len(pg) else None
                    b_ = hs[i] if i < len(hs) else None
                    lines.append("| %s | %s | | %s | %s |" % (
                        "%.1f%%" % a_["pct"] if a_ else "", "%s (%s)" % (a_["symbol"], a_["dso"]) if a_ else "",
                        "%.1f%%" % b_["pct"] if b_ else "", "%s (%s)" % (b_["symbol"], b_["dso"]) if b_ else ""))
            if s.get("callgrind", {}).get("top"):
                lines += profile_md("callgrind of the no-change run, %s rows (inside sync_run)" % fmt_n(int(n)),
                                    s["callgrind"])
    p = res.get("push")
    if p:
        lines += ["", "## Throttled push: requests per second as the sandbox saw them", "",
                  "Each second of the run: accepted / answered 429 (first 40 s).", ""]
        for key in ("known", "unknown", "margin"):
            if key not in p:
                continue
            v = p[key]
            lines.append("- %s (rate_limit %s, max_in_flight %d): %s" % (
                key, v["hrsync_rate_limit"], v["max_in_flight"],
                " ".join("%d/%d" % tuple(x) for x in (v["per_second"] or [])[:40])))
    mb = res.get("mapbench")
    if mb and mb.get("callgrind", {}).get("top"):
        lines += profile_md("callgrind of mapbench, %s rows (inside run_pass: mapping_eval + fingerprint)"
                            % fmt_n(mb["callgrind"]["rows"]), mb["callgrind"])
    if mb:
        lines += ["", "mapbench digest (must not change while the engine is optimised): `%s`" % mb["digest"]]
    lines += ["", "Total wall time: %.0f s. Re-run: `make bench` (sizes: see bench/README.md)." % m["seconds"], ""]
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write("\n".join(lines))


def profile_md(title, cg):
    lines = ["", "## " + title, "",
             "%s instructions, %s per row; full listings: %s" % (fmt_n(cg["total_ir"] or 0), fmt_n(int(cg["ir_per_row"])),
                                                                os.path.relpath(cg["file"], ROOT)),
             "", "| self | function | | inclusive | function |", "| --- | --- | --- | --- | --- |"]
    top, inc = cg["top"][:20], cg.get("inclusive", [])[:20]
    for i in range(max(len(top), len(inc))):
        a = top[i] if i < len(top) else None
        b = inc[i] if i < len(inc) else None
        lines.append("| %s | %s | | %s | %s |" % ("%.1f%%" % a["pct"] if a else "", a["fn"] if a else "",
                                                  "%.1f%%" % b["pct"] if b else "", b["fn"] if b else ""))
    return lines


def print_table(rows, res):
    m = res["meta"]
    print("\nhrsync benchmark — commit %s%s — %s" % (m["commit"], " (dirty)" if m["dirty"] else "", m["date"]))
    w0 = max(len(r[1]) for r in rows)
    for r in rows:
        print("%-2s %-*s  %s\n%-2s %-*s  target %s: %s" % (r[0], w0, r[1], r[2], "", w0, "", r[3], r[4] or "-"))
    print("results: %s" % os.path.relpath(os.path.join(RESULTS, "results.md"), os.getcwd()))


def meta(args):
    def git(*a):
        return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    pgv = subprocess.run([PSQL, "--version"], capture_output=True, text=True).stdout.strip()
    ver = subprocess.run([os.path.join(args.bin, "hrsync"), "version"], capture_output=True, text=True).stdout.strip()
    status = [l[3:] for l in git("status", "--porcelain").splitlines()]
    others = [f for f in status if not (f.startswith("bench/") or f == "mk/bench.mk" or f == "mk/")]
    return {"commit": git("rev-parse", "--short", "HEAD") or os.environ.get("BENCH_COMMIT", "?"),
            "dirty": bool(status) or bool(os.environ.get("BENCH_DIRTY")),
            "dirty_files": others or os.environ.get("BENCH_DIRTY", "").split(),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "host": "%s, %d CPUs, %s" % (cpu or platform.machine(), os.cpu_count(), platform.release()),
            "postgres": pgv, "hrsync": ver, "args": vars(args)}


def on_sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(ROOT, "build"), help="build directory (hrsync, bench/*)")
    p.add_argument("--rows", type=int, default=1_000_000, help="item 1: employees in state (default 1,000,000)")
    p.add_argument("--sizes", default="10000 100000 1000000", help="item 2: mirror sizes (the largest = --rows)")
    p.add_argument("--repeat", type=int, default=3, help="runs per size (medians)")
    p.add_argument("--real-rows", type=int, default=10_000, help="rows synced for real (seed check, item 3)")
    p.add_argument("--change-pct", type=float, default=1.0, help="item 3: share of rows changed (%%)")
    p.add_argument("--push-creates", type=int, default=20000, help="item 4: creates per variant")
    p.add_argument("--push-rate", type=int, default=50, help="item 4: R, the sandbox's limit (req/s)")
    p.add_argument("--push-delay-ms", type=int, default=200, help="item 4: L, the sandbox's added latency")
    p.add_argument("--push-in-flight", type=int, default=16, help="item 4: hrsync max_in_flight (≥ R×L + 2)")
    p.add_argument("--push-unknown-rate", type=int, default=0, help="item 4: rate_limit when the limit is "
                   "unknown (default 4×R)")
    p.add_argument("--push-margin", type=float, default=0, help="item 4, for information: one more run with "
                   "rate_limit = this share of R (0: none)")
    p.add_argument("--map-rows", type=int, default=200_000, help="item 5: rows held in memory by mapbench")
    p.add_argument("--map-passes", type=int, default=3)
    p.add_argument("--profile-rows", type=int, default=20_000, help="rows under callgrind (0: no callgrind)")
    p.add_argument("--no-perf", dest="perf", action="store_false", help="no perf profile of the largest run")
    p.add_argument("--only", default="", help="stages: %s" % " ".join(STAGES))
    args = p.parse_args()
    args.sizes = [int(x) for x in args.sizes.replace(",", " ").split()]
    only = args.only.split() or list(STAGES)
    NIGHTS = ("nights", "pushcpu", "pace")  # bench/nights.py's stages (make bench runs it next)
    for s in only:
        if s not in STAGES and s not in NIGHTS:
            p.error("unknown stage %r (stages: %s; bench/nights.py: %s)" % (s, " ".join(STAGES), " ".join(NIGHTS)))
    only = [s for s in only if s in STAGES]
    if not only:
        return 0
    for tool in ("hrsync", "bench/seedlinks", "bench/mapbench"):
        if not os.access(os.path.join(args.bin, tool), os.X_OK):
            p.error("%s/%s is missing: run `make bench-tools` (or `make bench`)" % (args.bin, tool))
    os.makedirs(RESULTS, exist_ok=True)
    t0 = time.time()
    res = {"meta": meta(args)}
    log("commit %s%s; stages: %s" % (res["meta"]["commit"], " (dirty)" if res["meta"]["dirty"] else "",
                                     " ".join(only)))
    tmp = tempfile.mkdtemp(prefix="hrsync-bench-")
    w = World(args, tmp)
    # SIGTERM (e.g. a CI timeout) ends like ^C: the finally below cleans up.
    signal.signal(signal.SIGTERM, on_sigterm)
    failed = None
    try:
        w.start()
        for name in STAGES:
            if name not in only:
                continue
            st = time.time()
            res.setdefault("load_before", {})[name] = os.getloadavg()[0]
            try:
                globals()["stage_" + name](w, res)
            except (RuntimeError, subprocess.CalledProcessError, AssertionError, KeyError) as e:
                failed = "%s: %s" % (name, e)
                log("stage %s failed: %s" % (name, e))
                res.setdefault("errors", {})[name] = str(e)
            res.setdefault("stage_seconds", {})[name] = round(time.time() - st, 1)
            res.setdefault("load_after", {})[name] = os.getloadavg()[0]
            log("stage %s done in %.0f s" % (name, time.time() - st))
    finally:
        w.stop()
        logs = os.path.join(RESULTS, "logs")
        shutil.rmtree(logs, ignore_errors=True)
        os.makedirs(logs, exist_ok=True)
        for f in os.listdir(tmp):
            if f.endswith(".log"):
                shutil.copy(os.path.join(tmp, f), os.path.join(logs, f))
        shutil.rmtree(tmp, ignore_errors=True)
    res["meta"]["seconds"] = round(time.time() - t0, 1)
    rows = report(res, args)
    write_results(res, args, rows)
    if rows:
        print_table(rows, res)
    log("total %.0f s" % res["meta"]["seconds"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
