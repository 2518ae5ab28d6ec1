#!/usr/bin/python3
"""
hrsync benchmark helper: two or more builds side by side on the same no-change night.

    /usr/bin/python3 bench/ab.py [--rows 10000] [--rounds 20] [--change] [--failing] [--keep] BUILD_DIR...

Each BUILD_DIR holds an `hrsync` binary (a `build/` of some commit: `git worktree add`, then
`make -s all bench-tools` there). On one throwaway cluster and the PeopleForce sandbox: a
mirror of --rows employees, `db migrate`, the links seeded and the run that writes them (first
build); --change then sends a night of 1% changes (as bench/nights.py does), --failing makes
0.1% of the active rows fail and records them. Then --rounds rounds, each a COPY of the mapped
columns (psql, as `make bench` times it) and one no-change run of each build, in turn (the
order rotates every round). Prints each one's median seconds and CPU, and its ratio to the
COPY: the median of the rounds' ratios, as bench/nights.py judges a night. --keep leaves the
world up afterwards, for a closer look (^C ends it).

On this shared 2-core machine one round decides nothing (the same COPY takes 0.41 or 0.56 s
back to back); alternating builds in the same rounds is how a 5 ms difference shows.
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as B  # noqa: E402  (World, helpers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("builds", nargs="+", help="build directories, each with an hrsync binary")
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--change", action="store_true", help="a night of 1%% changes first (as bench/nights.py)")
    p.add_argument("--failing", action="store_true", help="0.1%% of the active rows failing every night")
    p.add_argument("--keep", action="store_true", help="leave the world up after the rounds (^C ends it)")
    a = p.parse_args()
    for d in a.builds:
        if not os.access(os.path.join(d, "hrsync"), os.X_OK):
            p.error("%s has no hrsync binary" % d)
    a.bin = a.builds[0]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the world is removed on kill too
    tmp = tempfile.mkdtemp(prefix="hrsync-ab-")
    w = B.World(a, tmp)
    try:
        w.start()
        db = "ab"
        w.load(db, a.rows)
        h = w.hrsync(db, "ab")
        if w.run(h, "db", "migrate", label="migrate")["rc"] != 0:
            raise RuntimeError("db migrate failed")
        table, cols = w.columns(h)
        sql = "SELECT %s FROM %s ORDER BY %s" % (", ".join(cols), table, cols[0])
        w.seed_links(h, db)
        w.run(h, "run", "--mapping", "employees", label="writing")
        if a.change:
            w.psql(db, """UPDATE erp.employees SET mobile_phone = mobile_phone || '8'
                          WHERE personnel_number IN (SELECT personnel_number FROM erp.employees
                              WHERE dismissal_date IS NULL AND mobile_phone IS NOT NULL
                              ORDER BY md5(personnel_number) LIMIT %d)""" % max(1, a.rows // 100))
            w.run(h, "run", "--mapping", "employees", label="change")
        if a.failing:
            w.psql(db, """UPDATE erp.employees SET last_name = NULL
                          WHERE personnel_number IN (SELECT personnel_number FROM erp.employees
                              WHERE dismissal_date IS NULL ORDER BY md5(personnel_number || 'bad') LIMIT %d)"""
                   % max(1, a.rows // 1000))
            w.run(h, "run", "--mapping", "employees", label="failing")
        n = len(a.builds)
        copies, secs, cpu, ratios = [], [[] for _ in a.builds], [[] for _ in a.builds], [[] for _ in a.builds]
        for i in range(a.rounds):
            c = B.copy_time(w, db, sql)
            copies.append(c)
            for k in [(i + j) % n for j in range(n)]:  # the order rotates
                d = a.builds[k]
                w.bin = os.path.join(d, "hrsync")
                r = w.run(h, "run", "--mapping", "employees", label="ab-%d" % i, rss=False)
                if r["rc"] not in (0, 1) or r["requests"]["writes"]:
                    raise RuntimeError("%s: rc %d, %d writes (see %s)" % (d, r["rc"], r["requests"]["writes"],
                                                                           r["log"]))
                secs[k].append(r["seconds"])
                cpu[k].append(r["utime"] + r["stime"])
                ratios[k].append(r["seconds"] / c)
        print("%d rows%s%s, %d rounds; COPY median %.1f ms" % (
            a.rows, " after a 1% night" if a.change else "", " (0.1% failing)" if a.failing else "", a.rounds,
            1000 * B.median(copies)))
        for k, d in enumerate(a.builds):
            print("  %-40s %7.1f ms  cpu %5.1f ms  ratio %.3f×" % (
                d, 1000 * B.median(secs[k]), 1000 * B.median(cpu[k]), B.median(ratios[k])))
        if a.keep:
            print("world kept: config %s, database %s (%s)" % (h.path, db, " ".join(
                "%s=%s" % kv for kv in w.pgenv(db).items() if kv[0].startswith("PG"))), flush=True)
            signal.pause()
    finally:
        w.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
