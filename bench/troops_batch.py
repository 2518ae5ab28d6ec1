#!/usr/bin/python3
"""
Troops first load, measured (issue 12): the write requests of a first load of N temp workers
(default 2,000) with the batch import (POST /candidates/import, 100 to a request) against one
by one (batch_import: false), and the writes of the second run (must be 0). Real binary, real
PostgreSQL (a throwaway cluster), the Troops sandbox; the Evolia-shaped mirror of
tests/fixtures/erp/gen_troops.py (its planted bad rows included: they are what a real first
load meets).

    /usr/bin/python3 bench/troops_batch.py [--workers 2000] [--bin build/hrsync]

Prints a table and the three failure messages of the planted refusals (from `hrsync failures`).
Everything it starts is stopped and removed at the end.
"""
import argparse
import collections
import os
import sys
import tempfile
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness  # noqa: E402
from world_troops import TroopsSandbox, TroopsWorld  # noqa: E402


def writes(reqs):
    return [r for r in reqs if r["method"] in harness.WRITE_METHODS]


def by_path(reqs):
    c = collections.Counter()
    for r in reqs:
        p = r["path"]
        for prefix in ("/candidates/", "/availabilities/", "/paychecks/", "/bookkeeping_variables/", "/missions/"):
            if p.startswith(prefix) and p != "/candidates/import":
                p = prefix + "{id}" + ("/" + p.rsplit("/", 1)[1] if p.count("/") > 2 else "")
        c[f"{r['method']} {p}"] += 1
    return dict(sorted(c.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--workers", type=int, default=2000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "hrsync"))
    a = ap.parse_args()
    harness.HRSYNC = os.path.abspath(a.bin)
    cluster = harness.Cluster()
    sandbox = TroopsSandbox()
    rows = []
    try:
        for batch in (True, False):
            db = f"troops_bench_{uuid.uuid4().hex[:8]}"
            cluster.admin(f'CREATE DATABASE "{db}"')
            sandbox.reset()
            tmp = tempfile.mkdtemp(prefix="troops-bench-")
            w = TroopsWorld(cluster, db, sandbox, tmp, workers=a.workers, batch=batch)
            w.use_mappings("candidates.yaml")
            t0 = time.time()
            r1 = w.run("run", timeout=3600)
            t1 = time.time() - t0
            first = sandbox.requests()
            seq = sandbox.last_seq()
            r2 = w.run("run", timeout=3600)
            second = sandbox.requests(since=seq)
            on = len(w.tea_candidates())
            rows.append(dict(mode="batch import" if batch else "one by one", rc=r1.rc, seconds=round(t1, 1),
                             requests=len(first), writes=len(writes(first)), by_path=by_path(writes(first)),
                             reads=len(first) - len(writes(first)), second_writes=len(writes(second)),
                             second_rc=r2.rc, on_troops=on))
            if batch:
                # The other mappings too (unavailabilities, paychecks, variables): their failures.
                w.use_mappings("*.yaml")
                full = w.run("run", timeout=3600)
                fails = w.run("failures").out
                full_summary = {m: full.summary(m) for m in w.push_mappings}
            cluster.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        sandbox.stop()
        cluster.stop()
    print(f"Troops first load of {a.workers} temp workers (mapping candidates, sandbox unthrottled, "
          f"rate_limit 400/s):\n")
    print("| mode | write requests | of which | reads | candidates on Troops | exit | seconds | "
          "second run: writes (exit) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for x in rows:
        of = ", ".join(f"{k}: {v}" for k, v in x["by_path"].items())
        print(f"| {x['mode']} | {x['writes']} | {of} | {x['reads']} | {x['on_troops']} | {x['rc']} | "
              f"{x['seconds']} | {x['second_writes']} ({x['second_rc']}) |")
    print("\nThen every shipped mapping (batch import):\n")
    for m, sm in full_summary.items():
        print(f"- {m}: " + ", ".join(f"{k} {v}" for k, v in sm.items() if k != "seconds"))
    print("\n`hrsync failures` after the batch load:\n")
    print(fails)
    return 0


if __name__ == "__main__":
    sys.exit(main())
