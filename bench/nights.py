#!/usr/bin/python3
"""
hrsync benchmark, issue 18: nights as they happen, a plan in flat memory, cheap pushes, the
pace under a known limit. Part of `make bench` (after bench/run.py); alone:

    /usr/bin/python3 bench/nights.py [--sizes "10000 200000 1000000"] [--only "nights pushcpu pace"]

Stages (--only picks some):

  nights  goals 1 and 2. For each size: a mirror; `plan` and `run --dry-run` with no state
          (every record to create): peak RSS, seconds, and that the totals line comes last.
          Then `db migrate`, the links seeded (seedlinks | COPY, as a first load leaves them
          but without the source hashes), and the run that writes every link (it adds the hash:
          a night of many changes). Right after it, with no manual VACUUM: the COPY of the
          mapped columns and a no-change run, --repeat times (three times that up to 20,000
          rows). Then 1% of the rows changed, the run that sends them, and right after it
          again COPY and no-change runs. Then 0.1% of the active rows made to fail (last name
          NULL: a mapping error, tried every night), the run that records them, and COPY and
          no-change runs again. EXPLAIN (ANALYZE, BUFFERS) of hrsync's query after the first
          no-change run (heap fetches).
  pushcpu goal 3. A fresh mirror of --push-rows employees (the full shipped mapping: a create
          and its position, two requests), pushed to the sandbox answering at once, 8 in flight:
          requests/s and hrsync's CPU (user + system) per 1,000 requests, a `perf` profile;
          then bench/onebyone.py, one request at a time, on the same sandbox and payloads.
  pace    goal 4. --pace-rows creates against the sandbox limited to R = 50/1 s (sliding window,
          200 ms answers), hrsync at rate_limit R: accepted requests/s over the middle 80 % of
          the run as a share of R, and 429s.

The figures before issue 18's changes are constants below (BEFORE), measured at commit
9fff614 with these same commands. Prints a table of each goal, its figure, the figure
before; writes bench/results/nights.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as B  # noqa: E402  (World, helpers)

PY = B.PY
MIB = B.MIB
STAGES = ("nights", "pushcpu", "pace")
SMALL_NIGHT = 20000  # rows: up to this size a night gets 3 x --repeat rounds

# Measured at 9fff614 (before issue 18) with this script and the binary built at that commit
# (`--bin` of a copy of its build/), on the same 2-core machine, shared with other test runs
# (load average 2 to 11: compare the ratios, not the seconds). 10,000 and 200,000 rows, push
# 5,000 rows and pace 3,000 creates in one run; 1,000,000 rows and pace 5,000 in another.
BEFORE = {
    # The nights (goal 1) were measured with the COPY through Debian's Perl psql wrapper and the
    # runs through GNU time (about 55 and 12 ms a call): at 10,000 rows they flatter both sides.
    "commit": "9fff614",
    "nights_10000_after_write": "1.65×; 1.55×", "nights_10000_after_change": "1.71×; 1.71×",
    "nights_200000_after_write": "2.20×; 2.99×", "nights_200000_after_change": "2.79×; 2.72×",
    "nights_1000000_after_write": "3.17×; 4.45×", "nights_1000000_after_change": "1.72×; 2.25×",
    "plan_1000000": "110.0 MiB (20.6 s)", "dry_run_1000000": "110.0 MiB (12.7 s)",
    "plan_growth": "95.4 MiB", "dry_run_growth": "95.5 MiB",
    "plan_10000": "14.6 MiB (0.2 s)", "dry_run_10000": "14.5 MiB (0.2 s)",
    "plan_200000": "34.0 MiB (2.3 s)", "dry_run_200000": "33.9 MiB (2.3 s)",
    # goal 3 measured again on the sandbox that renders an employee from its own positions
    # (the earlier one walked every position per answer): 10,000 and 200,000 rows
    "push_cpu": "292 ms (10,000 rows); 300 ms (200,000)",
    "push_rps": "1,111 vs 1,647 (10,000 rows); 1,043 vs 1,490 (200,000)",
    "pace": "94.8 %, 0 (3,000 creates); 89.2 %, 3 (5,000, load 8); 97.0 %, 0 in bench/README.md (20,000)",
}


def log(msg):
    B.log(msg)


def run_out(w, h, args, label, keep_tail=3):
    """hrsync with stdout to a file: its peak RSS, times, and the last lines it printed."""
    outf = os.path.join(w.tmp, label + ".out")
    timef = os.path.join(w.tmp, label + ".time")
    logf = os.path.join(w.tmp, label + ".log")
    env = dict(os.environ, PF_TOKEN=B.harness.TOKEN)
    cmd = ["/usr/bin/time", "-o", timef, "-f", "%M %U %S", w.bin, "-c", h.path, *args]
    t0 = time.time()
    with open(outf, "w") as out, open(logf, "w") as err:
        rc = subprocess.run(cmd, stdout=out, stderr=err, env=env).returncode
    secs = time.time() - t0
    with open(timef) as f:
        tl = f.read().split()
    with open(outf, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 4096))
        tail = f.read().decode(errors="replace").splitlines()[-keep_tail:]
    os.unlink(outf)
    return {"rc": rc, "seconds": secs, "maxrss_mib": int(tl[-3]) / 1024, "utime": float(tl[-2]),
            "stime": float(tl[-1]), "out_bytes": size, "tail": tail}


def links_visibility(w, db):
    r = w.sql(db, "SELECT c.relpages, c.relallvisible, s.n_live_tup, s.n_dead_tup, "
                  "s.last_vacuum IS NOT NULL OR s.last_autovacuum IS NOT NULL, s.vacuum_count, s.autovacuum_count "
                  "FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid "
                  "WHERE c.oid = 'hrsync.links'::regclass")[0]
    return dict(zip(("relpages", "relallvisible", "live", "dead", "vacuumed", "vacuum_count",
                     "autovacuum_count"), r))


def night(w, h, db, sql, label, rounds):
    """COPY of the mapped columns and a no-change run, `rounds` times: medians and each."""
    vis = links_visibility(w, db)
    runs, copies = [], []
    for i in range(rounds):
        copies.append(B.copy_time(w, db, sql))
        r = w.run(h, "run", "--mapping", "employees", label="%s-%d" % (label, i), rss=False)
        runs.append(B.strip(r))
        log("%s round %d: run %.3f s (user %.2f, rc %d, %d writes), COPY %.3f s; %s" % (
            label, i + 1, r["seconds"], r["utime"], r["rc"], r["requests"]["writes"], copies[-1],
            r.get("read_marks", "no read marks used")))
    # Each round pairs a COPY with the run right after it; the figure is the median of the
    # rounds' ratios. One round alone says little on a shared 2-core machine: back to back,
    # the same COPY took 0.41 and 0.56 s; the first and the worst round are kept beside it.
    ratios = [r["seconds"] / c for r, c in zip(runs, copies)]
    first = ratios[0]
    med = B.median(ratios)
    worst = max(ratios)
    return {"visibility_before": vis, "runs": runs, "copy_s": copies, "ratio_first": first, "ratio_median": med,
            "ratio_worst": worst, "writes": sum(r["requests"]["writes"] for r in runs)}


def stage_nights(w, res):
    a = w.args
    out = res.setdefault("nights", {})
    for n in a.sizes:
        db = "nights_%d" % n
        s = {"rows": n}
        w.load(db, n)
        w.sandbox.reset()
        h = w.hrsync(db, "nights-%d" % n)
        # Goal 2: no state yet, every record to create.
        for what, args in (("plan", ["plan", "--mapping", "employees"]),
                           ("dry_run", ["run", "--dry-run", "--mapping", "employees"])):
            r = run_out(w, h, args, "%s-%d" % (what, n))
            r["totals_last"] = any(l.startswith("totals:") for l in r["tail"]) and \
                not r["tail"][-1].startswith(("MAPPING", "employees "))
            s[what] = r
            log("size %s: %s %.1f s, peak RSS %.1f MiB, rc %d, tail %r" % (
                B.fmt_n(n), what, r["seconds"], r["maxrss_mib"], r["rc"], r["tail"][-2:]))
        m = w.run(h, "db", "migrate", label="nights-migrate-%d" % n)
        if m["rc"] != 0:
            raise RuntimeError("db migrate failed: see %s" % m["log"])
        table, cols = w.columns(h)
        sql = "SELECT %s FROM %s ORDER BY %s" % (", ".join(cols), table, cols[0])
        s["copy_sql"] = sql
        w.seed_links(h, db)
        # The run that writes every link (adds the source hash to each): what a first load or
        # a night of many changes leaves. Its query is captured for EXPLAIN.
        query, wr = B.capture_query(w, db, h)
        s["writing_run"] = B.strip(wr)
        log("size %s: writing run %.1f s, rc %d" % (B.fmt_n(n), wr["seconds"], wr["rc"]))
        # A night of 10,000 rows lasts a tenth of a second: one round moves by 20% with the
        # machine, and medians of 5 rounds of the same build ranged from 1.19x to 1.45x between
        # sessions. Small nights get three times the rounds (3 s more), the large ones --repeat.
        rounds = a.repeat * 3 if n <= SMALL_NIGHT else a.repeat
        s["rounds"] = rounds
        s["after_write"] = night(w, h, db, sql, "nights-%d-after-write" % n, rounds)
        if query:
            f = os.path.join(B.RESULTS, "nights-explain-%d.txt" % n)
            with open(f, "w") as fh:
                w.psql(db, "EXPLAIN (ANALYZE, BUFFERS) %s" % query, out=fh)
            with open(f) as fh:
                s["explain_after_write"] = [l.strip() for l in fh if "Heap Fetches" in l or "Execution Time" in l]
        # A night of 1% changes, then the no-change night after it.
        k = max(1, round(n * a.change_pct / 100.0))
        w.psql(db, """UPDATE erp.employees SET mobile_phone = mobile_phone || '8'
                      WHERE personnel_number IN (SELECT personnel_number FROM erp.employees
                          WHERE dismissal_date IS NULL AND mobile_phone IS NOT NULL
                          ORDER BY md5(personnel_number) LIMIT %d)""" % k)
        cr = w.run(h, "run", "--mapping", "employees", label="nights-%d-change" % n)
        s["change_run"] = B.strip(cr)
        s["changed"] = k
        log("size %s: 1%% night: %d rows changed, %.1f s, %d writes" % (B.fmt_n(n), k, cr["seconds"],
                                                                       cr["requests"]["writes"]))
        s["after_change"] = night(w, h, db, sql, "nights-%d-after-change" % n, rounds)
        # Records that keep failing, as real mirrors have: 0.1% of the active rows lose their
        # last name (a mapping error, tried again every night), one run records the failures,
        # then the no-change nights with them.
        kb = max(1, n // 1000)
        w.psql(db, """UPDATE erp.employees SET last_name = NULL
                      WHERE personnel_number IN (SELECT personnel_number FROM erp.employees
                          WHERE dismissal_date IS NULL ORDER BY md5(personnel_number || 'bad') LIMIT %d)""" % kb)
        br = w.run(h, "run", "--mapping", "employees", label="nights-%d-failing" % n)
        s["failing_run"] = B.strip(br)
        s["failing"] = kb
        log("size %s: %d records made to fail: run %.1f s, rc %d, summary %s" % (
            B.fmt_n(n), kb, br["seconds"], br["rc"], br.get("summary")))
        s["with_failing"] = night(w, h, db, sql, "nights-%d-with-failing" % n, rounds)
        if a.perf and n == max(a.sizes) and shutil.which("perf"):
            # Where a no-change night's time goes: hrsync and its backends, sampled system-wide
            # (bench/results/perf-nochange-<rows>.txt).
            s["perf"] = B.perf_profile(w, h, n)
        out[str(n)] = s
        w.drop(db)


def perf_push(w, h, label):
    """perf record of a whole run (cpu-clock, this process only): the top symbols."""
    data = os.path.join(w.tmp, label + ".perf")
    env = dict(os.environ, PF_TOKEN=B.harness.TOKEN)
    logf = os.path.join(w.tmp, label + ".log")
    with open(logf, "w") as lf:
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", data, "--",
                        w.bin, "-c", h.path, "run", "--mapping", "employees"], stdout=lf, stderr=lf, env=env)
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,symbol",
                          "-g", "none", "--percent-limit", "1"], capture_output=True, text=True).stdout
    incl = subprocess.run(["perf", "report", "-i", data, "--stdio", "--children", "--sort", "symbol", "-g", "none",
                           "--percent-limit", "2"], capture_output=True, text=True).stdout
    lines = [l for l in rep.splitlines() if l.strip() and not l.startswith("#")][:30]
    # inclusive shares of hrsync's own functions and the libraries' entry points
    keep = ("sync_run", "run_mapping", "op_done", "state_", "PQ", "curl_", "http_run", "dispatch", "completed",
            "mapping_eval", "cursor_next", "jv_", "poll", "send", "recv")
    inclusive = [l for l in incl.splitlines() if l.strip() and not l.startswith("#") and any(k in l for k in keep)]
    with open(os.path.join(B.RESULTS, "nights-perf-push.txt"), "w") as f:
        f.write("== self (dso, symbol) ==\n%s\n== inclusive (children) ==\n%s" % (rep, incl))
    return {"self": lines, "inclusive": inclusive[:25]}


def stage_pushcpu(w, res):
    a = w.args
    db = "nights_push"
    w.load(db, a.push_rows, seed=11)
    out = {"rows": a.push_rows}
    w.sandbox.reset()
    w.sandbox.config(rate=None, delay_ms=0)
    h = w.hrsync(db, "nights-push", rate="100000/s", max_in_flight=8)
    r = w.run(h, "run", "--mapping", "employees", label="nights-push")
    req = r["requests"]["total"]
    cpu = r["utime"] + r["stime"]
    out["hrsync"] = {"run": B.strip(r), "requests": req, "requests_per_s": req / r["seconds"],
                     "cpu_s": cpu, "cpu_ms_per_1000": 1000.0 * cpu / req * 1000 if req else None}
    log("push: %d requests in %.1f s (%.0f/s), CPU %.2f s (%.1f ms per 1,000 requests), rc %d" % (
        req, r["seconds"], req / r["seconds"], cpu, out["hrsync"]["cpu_ms_per_1000"], r["rc"]))
    # The payloads hrsync sent, for the one-at-a-time client.
    payloads = os.path.join(w.tmp, "payloads.jsonl")
    with open(payloads, "w") as f:
        subprocess.run([w.bin, "-c", h.path, "preview", "employees", "--limit", "0"], stdout=f,
                       stderr=subprocess.DEVNULL, env=dict(os.environ, PF_TOKEN=B.harness.TOKEN))
    if shutil.which("perf") and a.perf:
        w.psql(db, "DROP SCHEMA IF EXISTS hrsync CASCADE")
        w.sandbox.reset()
        out["perf"] = perf_push(w, h, "nights-push-perf")
    w.sandbox.reset()
    c = w.cluster
    before = w.stats()
    p = subprocess.run([PY, os.path.join(HERE, "onebyone.py"), "--base-url", w.sandbox.base_url, "--token",
                        B.harness.TOKEN, "--dsn", c.conninfo(db), payloads], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("onebyone.py failed: %s" % p.stderr[-2000:])
    ref = json.loads(p.stdout.strip().splitlines()[-1])
    ref["sandbox_requests"] = B.delta(before, w.stats())["total"]
    out["onebyone"] = ref
    log("one at a time: %d requests in %.1f s (%.0f/s)" % (ref["requests"], ref["seconds"], ref["requests_per_s"]))
    res["push"] = out
    w.sandbox.reset()
    w.drop(db)


def stage_pace(w, res):
    a = w.args
    db = "nights_pace"
    w.load(db, a.pace_rows, seed=7)
    w.args.push_rate, w.args.push_delay_ms = a.pace_rate, 200
    mif = max(16, int(a.pace_rate * 0.2) + 2)
    v = B.push_variant(w, db, "pace-known", "%d/s" % a.pace_rate, mif)
    res["pace"] = {k: v[k] for k in ("requests", "429s", "accepted_per_s", "sent_per_s", "share_of_R",
                                     "max_arrivals_1s", "created", "window_s")}
    res["pace"]["R"] = a.pace_rate
    w.sandbox.reset()
    w.drop(db)


def table(res, before):
    rows = []
    b = before or {}

    def row(goal, what, now, was, target, ok):
        rows.append((goal, what, now, was, target, "pass" if ok else ("MISS" if ok is not None else "")))

    for n, s in sorted(res.get("nights", {}).items(), key=lambda kv: int(kv[0])):
        for phase, label in (("after_write", "right after the writing run"), ("after_change", "after a 1% night"),
                             ("with_failing", "with 0.1% of the records failing")):
            v = s.get(phase)
            if not v:
                continue
            key = "nights_%s_%s" % (n, phase)
            row("1", "%s rows, no-change run / COPY, %s (median of %d rounds; first; worst)" % (
                B.fmt_n(int(n)), label, len(v["runs"])),
                "%.2f×; %.2f×; %.2f×" % (v["ratio_median"], v["ratio_first"], v["ratio_worst"]),
                b.get(key, "—"), "≤ 1.3×", v["ratio_median"] <= 1.3)
        for what in ("plan", "dry_run"):
            key = "%s_%s" % (what, n)
            row("2", "%s rows to create: `%s` peak RSS" % (B.fmt_n(int(n)), what.replace("_", " ")),
                "%.1f MiB (%.1f s)" % (s[what]["maxrss_mib"], s[what]["seconds"]), b.get(key, "—"), "≤ 32 MiB, flat",
                s[what]["maxrss_mib"] <= 32 and s[what]["totals_last"])
    if res.get("nights"):
        for what in ("plan", "dry_run"):
            rss = [s[what]["maxrss_mib"] for s in res["nights"].values()]
            row("2", "`%s` peak RSS, largest − smallest size" % what.replace("_", " "), "%.1f MiB" % (max(rss) - min(rss)),
                b.get("%s_growth" % what, "—"), "≤ 2 MiB", max(rss) - min(rss) <= 2.0)
    p = res.get("push")
    if p:
        hh, ref = p["hrsync"], p["onebyone"]
        row("3", "full push (%s rows): hrsync CPU per 1,000 requests" % B.fmt_n(p["rows"]),
            "%.0f ms" % hh["cpu_ms_per_1000"], b.get("push_cpu", "—"), "report", None)
        row("3", "full push: requests/s, hrsync vs one at a time", "%.0f vs %.0f" % (hh["requests_per_s"],
                                                                                  ref["requests_per_s"]),
            b.get("push_rps", "—"), "≥ the script", hh["requests_per_s"] >= ref["requests_per_s"])
    q = res.get("pace")
    if q:
        row("4", "known limit R = %d/s: accepted share of R, 429s" % q["R"],
            "%.1f %%, %d" % (100 * q["share_of_R"], q["429s"]), b.get("pace", "—"), "≥ 98 %, 0",
            q["share_of_R"] >= 0.98 and q["429s"] == 0)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(B.ROOT, "build"))
    p.add_argument("--sizes", default="10000 200000 1000000")
    p.add_argument("--repeat", type=int, default=5,
                   help="rounds of each night (COPY, then the run); three times as many up to %d rows" % SMALL_NIGHT)
    p.add_argument("--change-pct", type=float, default=1.0)
    p.add_argument("--push-rows", type=int, default=20000)
    p.add_argument("--pace-rows", type=int, default=5000)
    p.add_argument("--pace-rate", type=int, default=50)
    p.add_argument("--no-perf", dest="perf", action="store_false")
    p.add_argument("--only", default="")
    p.add_argument("--out", default=os.path.join(B.RESULTS, "nights.json"))
    a = p.parse_args()
    a.sizes = [int(x) for x in a.sizes.replace(",", " ").split()]
    only = a.only.split() or list(STAGES)
    for s in only:
        if s not in STAGES and s not in B.STAGES:
            p.error("unknown stage %r (stages: %s; bench/run.py: %s)" % (s, " ".join(STAGES), " ".join(B.STAGES)))
    only = [s for s in only if s in STAGES]
    if not only:
        return 0
    os.makedirs(B.RESULTS, exist_ok=True)
    res = {"meta": B.meta(a)}
    tmp = tempfile.mkdtemp(prefix="hrsync-nights-")
    w = B.World(a, tmp)
    t0 = time.time()
    failed = None
    try:
        w.start()
        for name in STAGES:
            if name in only:
                st = time.time()
                try:
                    globals()["stage_" + name](w, res)
                except (RuntimeError, subprocess.CalledProcessError, KeyError) as e:
                    failed = "%s: %s" % (name, e)
                    log("stage %s failed: %s" % (name, e))
                res.setdefault("stage_seconds", {})[name] = round(time.time() - st, 1)
    finally:
        w.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    res["meta"]["seconds"] = round(time.time() - t0, 1)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    rows = table(res, BEFORE)
    head = ("goal", "what", "now", "before (%s)" % BEFORE["commit"], "target", "")
    print("\nIssue 18 (commit %s, %.0f s)" % (res["meta"]["commit"], res["meta"]["seconds"]))
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
