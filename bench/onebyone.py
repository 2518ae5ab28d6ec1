#!/usr/bin/python3
"""
The reference client of issue 18, goal 3: a plain Python script that pushes the same records
to the PeopleForce sandbox one request at a time, with its own state in PostgreSQL.

    hrsync -c hrsync.yaml preview employees --limit 0 > payloads.jsonl
    /usr/bin/python3 bench/onebyone.py --base-url URL --token TOKEN --dsn DSN payloads.jsonl

For each payload line (`hrsync preview`'s JSON lines, so that both clients send the same
bodies): `POST /employees` with the payload less its `position`, then, when the payload has
one, `POST /employees/{id}/positions`; then the record's link is written to its own table
(`onebyone.links`: key, id, SHA-256 of the payload) and committed, one transaction a record,
as a careful script would. A second run with the same file (a no-change night) reads its links
and sends only what changed (none). Keep-alive connection, no threads, no retries (the
sandbox is unthrottled). Prints one JSON line: records, requests, seconds, requests_per_s,
user and system CPU seconds of this process.
"""
import argparse
import hashlib
import http.client
import json
import os
import resource
import sys
import time
import urllib.parse

import psycopg2


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--dsn", required=True, help="libpq conninfo of the database its state goes to")
    p.add_argument("payloads", help="JSON lines of `hrsync preview MAPPING --limit 0`")
    a = p.parse_args()

    u = urllib.parse.urlsplit(a.base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    prefix = u.path.rstrip("/")
    headers = {"X-API-KEY": a.token, "Content-Type": "application/json",
               "Accept": "application/json", "User-Agent": "onebyone/1"}
    db = psycopg2.connect(a.dsn)
    cur = db.cursor()
    cur.execute("CREATE SCHEMA IF NOT EXISTS onebyone")
    cur.execute("CREATE TABLE IF NOT EXISTS onebyone.links (erp_key text PRIMARY KEY, id text NOT NULL, "
                "fingerprint text NOT NULL)")
    db.commit()
    cur.execute("SELECT erp_key, fingerprint FROM onebyone.links")
    known = dict(cur.fetchall())

    def post(path, body):
        conn.request("POST", prefix + path, body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError("POST %s: %d %s" % (path, r.status, data[:200]))
        return json.loads(data) if data else {}

    t0 = time.time()
    records = requests = 0
    with open(a.payloads) as f:
        for line in f:
            rec = json.loads(line)
            payload = rec.get("payload")
            if payload is None:
                continue
            body = json.dumps(payload, sort_keys=True)
            fp = hashlib.sha256(body.encode()).hexdigest()
            if known.get(rec["key"]) == fp:
                continue
            position = payload.pop("position", None)
            made = post("/employees", payload)
            requests += 1
            emp = made.get("data", made)
            pid = str(emp["id"])
            if position:
                post("/employees/%s/positions" % pid, position)
                requests += 1
            cur.execute("INSERT INTO onebyone.links VALUES (%s, %s, %s) ON CONFLICT (erp_key) DO UPDATE "
                        "SET id = excluded.id, fingerprint = excluded.fingerprint", (rec["key"], pid, fp))
            db.commit()
            records += 1
    secs = time.time() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"records": records, "requests": requests, "seconds": round(secs, 3),
                      "requests_per_s": round(requests / secs, 1) if secs else None,
                      "user_s": ru.ru_utime, "sys_s": ru.ru_stime}))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
