"""
End-to-end harness for the Personio connector: the Personio sandbox as a subprocess, an
hrsync config writer for it, the `pworld` fixture (a fresh mirror database, a reset
sandbox, hrsync configured for both) and the end-state checks.

Reuses harness.Cluster / harness.Hrsync and the session fixtures of conftest.py (cluster,
template); the `world` fixture there starts only the PeopleForce sandbox.
"""
import collections
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from harness import PYTHON, ROOT, Hrsync

SANDBOX = os.path.join(ROOT, "tests", "sandbox", "personio.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "personio", "seed.json")
MAPS = os.path.join(ROOT, "mappings", "personio")
CLIENT_ID = "hrsync-e2e-client"
CLIENT_SECRET = "pio-secret-7c1d0b33e5"
MARKER = re.compile(r"\[hrsync:(.*)#([0-9a-f]{16})\]")
# kinds.csv: these ERP kinds go to hour-based types (absence periods), the rest to time-offs.
HOUR_KINDS = {"К", "RTT"}


class PersonioSandbox:
    """tests/sandbox/personio.py as a subprocess, with its admin API and a tiny API client."""

    def __init__(self, extra=()):
        self.proc = subprocess.Popen(
            [PYTHON, SANDBOX, "--port", "0", "--api-key", CLIENT_SECRET, "--client-id", CLIENT_ID, "--seed", SEED,
             "--no-retry-after", "--quiet", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.admin = self.base_url + "/_sandbox"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def api(self, method, path, body=None):
        """A request to the API itself, with a token of its own."""
        form = f"grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}".encode()
        req = urllib.request.Request(self.base_url + "/v2/auth/token", data=form, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as r:
            tok = json.loads(r.read())["access_token"]
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

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

    def config(self, **kw):
        self.call("POST", "/config", kw)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class PersonioHrsync(Hrsync):
    """hrsync configured for the Personio sandbox (client id and secret from the environment)."""

    def __init__(self, cluster, db, sandbox, tmpdir, mappings=None, extra_conn="", extra_top=""):
        super().__init__(cluster, db, sandbox, tmpdir, mappings or [os.path.join(MAPS, "*.yaml")], extra_conn,
                         extra_top)

    def write_config(self, rate="400/s", max_in_flight=8, timeout="5s"):
        maps = ", ".join(json.dumps(m) for m in self.mappings)
        rate_line = f"    rate_limit: {rate}\n" if rate else ""
        self.path = os.path.join(self.dir, "hrsync.yaml")
        with open(self.path, "w") as f:
            f.write(f"""database:
  conninfo: "{self.cluster.conninfo(self.db)}"
  state_schema: hrsync
timezone: Europe/Paris
connectors:
  personio:
    type: personio
    base_url: "{self.sandbox.base_url}"
    allow_insecure_http: true
    client_id: {{ env: PIO_CLIENT_ID }}
    client_secret: {{ env: PIO_CLIENT_SECRET }}
{rate_line}    max_in_flight: {max_in_flight}
    timeout: {timeout}
{self.extra_conn}
mappings: [ {maps} ]
{self.extra_top}
""")

    def env(self):
        return dict(super().env(), PIO_CLIENT_ID=CLIENT_ID, PIO_CLIENT_SECRET=CLIENT_SECRET)


@pytest.fixture(scope="session")
def pio_sandbox():
    s = PersonioSandbox()
    yield s
    s.stop()


@pytest.fixture
def pworld(cluster, template, pio_sandbox, tmp_path):
    """A fresh mirror database, a reset Personio sandbox, and hrsync configured for both."""
    tmpl, manifest = template
    db = "p_" + uuid.uuid4().hex[:10]
    cluster.clone(tmpl, db)
    pio_sandbox.reset()
    h = PersonioHrsync(cluster, db, pio_sandbox, tmp_path)
    h.manifest = manifest
    yield h
    cluster.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------
# what must be on the platform

def bad(manifest, table, kinds):
    return {b["key"] for b in manifest["bad"] if b["table"] == table and b["kind"] in kinds}


def expected(world):
    """Keys that must be on Personio after a complete sync, and why the others are not."""
    m = world.manifest
    # Rows the mapping refuses before anything is sent. A NIR with a wrong key fails its
    # check too (custom attribute dynamic_1003). Department and position are names in
    # Personio v1: an unknown department is created without it (and listed as refused),
    # an unknown position is free text.
    map_errors = bad(m, "employees", {"null_last_name", "blank_first_name", "malformed_email", "bad_nir_key"})
    refused = {k for (k,) in world.sql("SELECT erp_key FROM hrsync.failures WHERE mapping = 'personio_employees' "
                                       "AND kind = 'refused' AND reason LIKE '%%email has already been taken%%'")}
    losers = set(m["duplicate_email"]) & refused
    dup_loser = losers.pop() if len(losers) == 1 else max(m["duplicate_email"])
    emp = {k for (k,) in world.sql("SELECT personnel_number FROM erp.employees")} - map_errors - {dup_loser}
    dismissed = {k for (k,) in world.sql(
        "SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NOT NULL")} & emp
    absent = {k for k, p in world.sql("SELECT absence_id, personnel_number FROM erp.absences "
                                      "WHERE status = 'posted'") if p in emp}
    absent -= bad(m, "absences", {"unknown_leave_type", "platform_refuses"})
    return dict(employees=emp, dismissed=dismissed, absences=absent, dup_loser=dup_loser, map_errors=map_errors,
                unknown_department=bad(m, "employees", {"unknown_department"}))


def assert_end_state(world):
    """Every valid record exactly once on the sandbox, on the right employee and endpoint,
    and the state's links agreeing with the sandbox."""
    exp = expected(world)
    store = world.sandbox.store()
    emps = store["employees"]
    by_key = collections.Counter(e["custom_attributes"].get("dynamic_1001") for e in emps)
    assert not [k for k, c in by_key.items() if c > 1], "employees created twice"
    assert set(by_key) == exp["employees"], (
        f"missing {sorted(exp['employees'] - set(by_key))[:10]}, extra {sorted(set(by_key) - exp['employees'])[:10]}")
    emails = collections.Counter(e["email"] for e in emps)
    assert max(emails.values()) == 1
    emp_id = {e["custom_attributes"]["dynamic_1001"]: e["id"] for e in emps}
    inactive = {e["custom_attributes"]["dynamic_1001"] for e in emps if e["status"] == "inactive"}
    assert inactive == exp["dismissed"], f"inactive differ: {sorted(inactive ^ exp['dismissed'])[:10]}"

    rows = {k: (p, kind, str(d1), str(d2), h) for k, p, kind, d1, d2, h in world.sql(
        "SELECT absence_id, personnel_number, kind_code, date_from, date_to, hours_per_day FROM erp.absences")}
    got = collections.Counter()
    for unit, coll in (("day", store["time_offs"]), ("hour", store["absence_periods"])):
        for a in coll:
            mk = MARKER.search(a["comment"] or "")
            assert mk, a
            k = mk.group(1)
            got[k] += 1
            p, kind, d1, d2, hours = rows[k]
            assert a["employee"]["attributes"]["id"]["value"] == emp_id[p], f"absence {k} on the wrong employee"
            assert (unit == "hour") == (kind in HOUR_KINDS), f"absence {k} ({kind}) sent as {unit}s"
            if unit == "day":
                assert (a["start_date"][:10], a["end_date"][:10]) == (d1, d2)
                assert a["half_day_start"] == (d1 == d2 and hours is not None) and not a["half_day_end"], (k, a)
            else:
                assert (a["breakdowns"][0]["date"], a["breakdowns"][-1]["date"]) == (d1, d2)
                if d1 == d2:
                    want = int(float(hours) * 60) if hours is not None else 480
                    assert a["effective_duration"] == want, (k, a["effective_duration"], want)
    assert not [k for k, c in got.items() if c > 1], "absences created twice"
    assert set(got) == exp["absences"], (
        f"missing {sorted(exp['absences'] - set(got))[:10]}, extra {sorted(set(got) - exp['absences'])[:10]}")

    links = {(m, k): pid for m, k, pid in world.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links "
                                                    "WHERE status IN ('active', 'terminated')")}
    for k, i in emp_id.items():
        assert links[("personio_employees", k)] == str(i)
    for a in store["time_offs"] + store["absence_periods"]:
        assert links[("personio_absences", MARKER.search(a["comment"]).group(1))] == str(a["id"])
    return exp


def writes(reqs):
    return [r for r in reqs if r["method"] in ("POST", "PUT", "DELETE", "PATCH") and r["path"] != "/v2/auth/token"]
