"""Operations (issue #5): the daemon on its schedule under a systemd-like supervisor (a notify
socket this test listens on), SIGTERM and SIGHUP, log formats, the metrics textfile, status /
failures / retry, make install and the systemd units.

The daemon's scheduler runs on a test clock (HRSYNC_TEST_CLOCK=EPOCHxRATE, daemon.c) so a test
sees the spring-forward night of Europe/Paris, and the next night, in seconds."""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import zoneinfo

import pytest

from checks import wait_for
from harness import HRSYNC, ROOT, Result

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def paris(*args):
    """Epoch seconds of a Europe/Paris wall time (first occurrence when ambiguous)."""
    return int(datetime.datetime(*args, tzinfo=PARIS).timestamp())


class Notify:
    """A stand-in for systemd's notify socket: an AF_UNIX datagram socket in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hrsync-notify-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []          # (monotonic time, {KEY: VALUE})
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.msgs.append((time.monotonic(), fields))

    def all(self, key=None):
        with self.lock:
            return [(t, m) for t, m in self.msgs if key is None or key in m]

    def statuses(self):
        return [m["STATUS"] for _, m in self.all("STATUS")]

    def wait_status(self, needle, timeout, after=0):
        try:
            return wait_for(lambda: any(needle in s for s in self.statuses()[after:]), timeout,
                            f"STATUS containing {needle!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}; got {self.statuses()}") from None

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = Notify()
    yield n
    n.close()


class Daemon:
    def __init__(self, world, notify, clock=None, watchdog_usec=None, log_format="journal"):
        self.world, self.log = world, os.path.join(world.dir, "daemon.log")
        env = world.env()
        env["NOTIFY_SOCKET"] = notify.path
        if clock:
            env["HRSYNC_TEST_CLOCK"] = clock
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([HRSYNC, "-c", world.path, "--log-format", log_format, "daemon"],
                                         stdout=out, stderr=out, env=env)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        """SIGTERM; returns (exit status, seconds it took)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the daemon did not stop within {timeout} s:\n{self.text()[-3000:]}")
        log = self.text()
        assert not any(s in log for s in SANITIZER), log[-5000:]
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemon_factory():
    started = []

    def make(*a, **kw):
        d = Daemon(*a, **kw)
        started.append(d)
        return d
    yield make
    for d in started:
        d.kill()


def configure(world, schedule=None, metrics=None, extra=""):
    top = ""
    if schedule:
        top += f'schedule: "{schedule}"\n'
    if metrics:
        top += f"metrics: {{ textfile: {metrics} }}\n"
    world.extra_top = top + extra
    world.write_config()


def runs(world):
    return world.sql("SELECT id, command, status, exit_code FROM hrsync.runs ORDER BY id")


# ---- the daemon ----

def test_daemon_runs_at_its_times_across_the_spring_forward_night_and_tells_systemd(world, notify,
                                                                                      daemon_factory):
    """A 02:30 schedule on the night Paris skips 02:00-03:00 runs once, at 03:00, then at 02:30
    the next night; READY, STATUS and watchdog keep-alives (also during a run) reach systemd."""
    prom = os.path.join(world.dir, "hrsync.prom")
    # The employees only: a run must end before the next night's time comes round on the fast
    # clock (the whole demo mirror took 25 s on a loaded machine: 50 hours at 7200x).
    world.use_mappings("employees.yaml")
    configure(world, schedule="02:30", metrics=prom)
    # 01:59 CET on 2026-03-29; the clock runs 3600 times faster: a night in 24 s.
    d = daemon_factory(world, notify, clock=f"{paris(2026, 3, 29, 1, 59)}x3600", watchdog_usec=1_000_000)
    wait_for(lambda: notify.all("READY"), 20, "READY=1")
    assert "next run at 2026-03-29 03:00:00 CEST" in notify.statuses()[0], notify.statuses()
    notify.wait_status("next run at 2026-03-31 02:30:00 CEST", 180)
    statuses = notify.statuses()
    running = [s.split(";")[0] for s in statuses if s.startswith("running the sync")]
    assert len(running) == 2, statuses
    assert running == ["running the sync scheduled for 2026-03-29 03:00:00 CEST",
                       "running the sync scheduled for 2026-03-30 02:30:00 CEST"], running
    idle = [s for s in statuses if s.startswith("idle") and "last: run" in s]
    assert "next run at 2026-03-30 02:30:00 CEST" in idle[0] and "(exit 1)" in idle[0], idle

    # Keep-alives: at least one while the first run held the main thread.
    msgs = notify.all()
    t_run = next(t for t, m in msgs if m.get("STATUS", "").startswith("running the sync"))
    t_idle = next(t for t, m in msgs if t > t_run and m.get("STATUS", "").startswith("idle"))
    assert any(t_run <= t <= t_idle for t, m in notify.all("WATCHDOG")), (t_run, t_idle)
    assert len(notify.all("WATCHDOG")) >= 3

    rc, secs = d.stop()
    assert rc == 0 and secs < 30
    assert notify.all("STOPPING")
    assert [(c, s, e) for _, c, s, e in runs(world)] == [("run", "failures", 1)] * 2
    log = d.text()
    assert log.count("run finished") == 2
    assert "next run at 2026-03-29 03:00:00 CEST" in log
    assert all(re.match(r"<[3-7]>", line) for line in log.splitlines()), log[:2000]
    assert os.path.exists(prom)


def test_sigterm_during_a_run_stops_within_30_s_and_the_next_run_completes(world, notify, daemon_factory):
    configure(world, schedule="02:30")
    d = daemon_factory(world, notify, clock=f"{paris(2026, 11, 25, 2, 29, 59)}")
    start = world.sandbox.last_seq()
    wait_for(lambda: world.sandbox.last_seq() - start >= 150, 60, "the run to send 150 requests")
    rc, secs = d.stop()
    assert rc == 0, d.text()[-3000:]
    assert secs < 30, secs
    log = d.text()
    assert "asked to stop; finishing the requests in flight" in log
    assert "daemon stopped" in log
    (_, command, status, code), = runs(world)
    assert (command, status, code) == ("run", "stopped", 3)
    # Nothing left half-done: each record the platform holds is linked, and the next run finishes.
    world.run("run", check_rc=1)
    world.assert_end_state()


def test_sighup_with_a_broken_config_keeps_the_old_one_running(world, notify, daemon_factory):
    configure(world, schedule="02:30")
    good = open(world.path).read()
    # 02:28 in Paris, 30 times faster: the run comes 4 s after the start.
    d = daemon_factory(world, notify, clock=f"{paris(2026, 11, 25, 2, 28)}x30")
    wait_for(lambda: notify.all("READY"), 20, "READY=1")
    with open(world.path, "w") as f:
        f.write(good.replace('schedule: "02:30"', 'schedule: "25:61"\nbogus: 1'))
    d.signal(signal.SIGHUP)
    notify.wait_status("the last reload was rejected", 20)
    assert notify.all("RELOADING")
    log = d.text()
    assert re.search(r"^<3>.*hrsync\.yaml:\d+:\d+: unknown key 'bogus'", log, re.M), log
    assert re.search(r"^<3>.*schedule '25:61': expected HH:MM", log, re.M), log
    assert re.search(r"^<3>reload rejected: the configuration in use stays, with schedule '02:30'", log, re.M), log

    # The old config goes on: its 02:30 run happens and completes.
    notify.wait_status("last: run", 60)
    assert [(c, s) for _, c, s, _ in runs(world)] == [("run", "failures")]

    # A good config is taken: a new schedule.
    with open(world.path, "w") as f:
        f.write(good.replace('schedule: "02:30"', 'schedule: "45 3 * * *"'))
    d.signal(signal.SIGHUP)
    notify.wait_status("idle (configuration reloaded); next run at 2026-11-25 03:45:00 CET", 20)
    assert re.search(r"^<5>configuration reloaded: \d+ mapping\(s\), schedule '45 3 \* \* \*'", d.text(), re.M)
    rc, _ = d.stop()
    assert rc == 0


def test_daemon_refuses_a_config_without_a_usable_schedule(world):
    configure(world)
    r = world.run("daemon", check_rc=2)
    assert "the daemon needs `schedule:`" in r.err
    configure(world, schedule="0 0 31 2 *")
    r = world.run("daemon", check_rc=2)
    assert "schedule '0 0 31 2 *' never comes" in r.err


# ---- logs and metrics ----

PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(?:,|$)')


def parse_prometheus(text):
    """The text exposition format, strictly: HELP/TYPE before samples, well-formed labels,
    float values, no duplicate series. Returns {(name, frozenset(labels)): value} and types."""
    types, samples = {}, {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, (n, line)
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), (n, line)
            assert name not in types, f"line {n}: second TYPE for {name}"
            types[name] = typ
            continue
        assert line and not line.startswith("#"), (n, line)
        m = PROM_SAMPLE.match(line)
        assert m, f"line {n} is not a sample: {line!r}"
        name, labels, value = m.groups()
        assert name in types, f"line {n}: {name} has no TYPE before it"
        lab = {}
        if labels:
            pos = 0
            for lm in PROM_LABEL.finditer(labels):
                assert lm.start() == pos, (n, labels)
                lab[lm.group(1)] = lm.group(2)
                pos = lm.end()
            assert pos == len(labels), (n, labels)
        key = (name, frozenset(lab.items()))
        assert key not in samples, f"line {n}: duplicate series {key}"
        samples[key] = float(value)
    assert text.endswith("\n")
    return samples, types


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


OUTCOMES = ("created", "updated", "terminated", "unchanged", "skipped", "failed", "deferred")


def test_log_formats_and_the_metrics_file_match_the_run(world):
    prom = os.path.join(world.dir, "metrics", "hrsync.prom")
    os.makedirs(os.path.dirname(prom))
    configure(world, metrics=prom)

    # JSON lines: every line parses; every line of the run names it; summaries carry the counts.
    t0 = time.time()
    r1 = world.run("--log-format", "json", "run", check_rc=1)
    lines = [json.loads(line) for line in r1.err.splitlines()]
    assert lines
    started = next(i for i, o in enumerate(lines) if o["msg"].startswith("run started"))
    run_id = lines[started]["run"]
    assert all(o.get("run") == run_id for o in lines[started:]), [o for o in lines[started:] if "run" not in o][:3]
    assert all(o["level"] in ("error", "warning", "notice", "info", "debug") for o in lines)
    summary = {o["mapping"]: o for o in lines if o["msg"] == "summary"}
    assert {"employees", "absences", "assets"} <= set(summary)
    assert not [s for s in SANITIZER if s in r1.err]

    text = open(prom).read()
    samples, types = parse_prometheus(text)
    assert types["hrsync_requests_total"] == "counter" and types["hrsync_records"] == "gauge"
    for m, s in summary.items():
        for outcome in OUTCOMES:
            assert metric(samples, "hrsync_records", mapping=m, outcome=outcome) == s[outcome], (m, outcome)
    requests1 = sum(s["requests"] for s in summary.values())
    assert metric(samples, "hrsync_requests_total", connector="peopleforce") == requests1
    assert metric(samples, "hrsync_throttled_total", connector="peopleforce") == sum(s["429s"] for s in summary.values())
    assert metric(samples, "hrsync_last_run_exit_code") == 1
    success1 = metric(samples, "hrsync_last_success_timestamp_seconds")
    assert t0 <= success1 <= time.time()
    assert metric(samples, "hrsync_last_run_timestamp_seconds") == success1
    assert 0 < metric(samples, "hrsync_run_duration_seconds") < time.time() - t0 + 1
    assert not [f for f in os.listdir(os.path.dirname(prom)) if f != "hrsync.prom"], "temp file left behind"

    # Journal format (what systemd gets): a priority on every line, summaries at notice.
    r2 = world.run("--log-format", "journal", "run", check_rc=1)
    assert all(re.match(r"<[3-7]>", line) for line in r2.err.splitlines()), r2.err[:2000]
    assert re.search(r"^<5>run=\d+ mapping=employees summary created=0 ", r2.err, re.M), r2.err[-2000:]
    assert re.search(r"^<4>run=\d+ mapping=employees key=\S+ action=create mapping: ", r2.err, re.M)
    # auto under systemd ($JOURNAL_STREAM set) is the journal format too.
    # systemd's rule: only when JOURNAL_STREAM names the very stream stderr is (device:inode).
    errpath = os.path.join(world.dir, "journal-stream.err")
    with open(errpath, "w") as errf:
        st = os.fstat(errf.fileno())
        p = subprocess.run([HRSYNC, "-c", world.path, "run"], stdout=subprocess.PIPE, stderr=errf, text=True,
                           env=dict(world.env(), JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}"), timeout=600)
    assert p.returncode == 1
    with open(errpath) as f:
        r3 = Result(p.returncode, p.stdout, f.read(), 0)
    assert r3.err and all(re.match(r"<[3-7]>", line) for line in r3.err.splitlines())
    samples, _ = parse_prometheus(open(prom).read())
    requests23 = sum(r.summary(m)["requests"] for r in (r2, r3) for m in ("employees", "absences", "assets",
                                                                           "absences_inbound")
                     if f"mapping={m} summary" in r.err)
    assert metric(samples, "hrsync_requests_total", connector="peopleforce") == requests1 + requests23
    success3 = metric(samples, "hrsync_last_success_timestamp_seconds")
    assert success3 > success1
    # A stream that is not the journal's (a redirected child inherits the variable): plain text.
    env = world.env
    world.env = lambda: dict(env(), JOURNAL_STREAM="8:12345")
    try:
        r4 = world.run("run", check_rc=1)
    finally:
        world.env = env
    assert not re.match(r"<[3-7]>", r4.err.splitlines()[0]), r4.err[:300]
    success3 = metric(parse_prometheus(open(prom).read())[0], "hrsync_last_success_timestamp_seconds")

    # A run that cannot reach the database: exit 3 in the file, the last success kept.
    port, world.cluster.port = world.cluster.port, "1"
    try:
        world.write_config()
        world.run("run", check_rc=3)
    finally:
        world.cluster.port = port
        world.write_config()
    samples, _ = parse_prometheus(open(prom).read())
    assert metric(samples, "hrsync_last_run_exit_code") == 3
    assert metric(samples, "hrsync_last_success_timestamp_seconds") == success3


# ---- status, failures, retry ----

def test_status_failures_and_retry_after_a_run_with_failures(world):
    r = world.run("status", check_rc=0)
    assert "No run recorded yet" in r.out
    assert json.loads(world.run("status", "--format", "json", check_rc=0).out)["runs"] == []

    run = world.run("run", check_rc=1)

    # status, as a table: the run, its counts per mapping, what waits and why.
    st = world.run("status", check_rc=0).out
    assert "Last completed run: 1" in st and "Run 1 " in st and "(exit 1)" in st
    for m in ("employees", "absences", "assets"):
        s = run.summary(m)
        row = next(line for line in st.splitlines() if line.split()[:1] == [m])
        assert row.split()[2:9] == [str(s[k]) for k in OUTCOMES], (row, s)
    fails = world.sql("SELECT mapping, erp_key, kind, field, http_status, attempts FROM hrsync.failures")
    assert f"Waiting: {len(fails)} record(s)." in st
    assert re.search(r"employees\s+refused\s+1\s", st), st
    assert re.search(r"absences\s+deferred\s+employee_id ref\s+\d+", st), st

    # status, as JSON.
    doc = json.loads(world.run("status", "--format", "json", "--runs", "3", check_rc=0).out)
    assert doc["running"] is False and doc["last_success"]["id"] == 1
    (r1,) = doc["runs"]
    assert (r1["id"], r1["status"], r1["exit_code"], r1["command"]) == (1, "failures", 1, "run")
    by_map = {m["mapping"]: m for m in r1["mappings"]}
    for m in ("employees", "absences", "assets"):
        assert {k: by_map[m][k] for k in OUTCOMES} == {k: run.summary(m)[k] for k in OUTCOMES}
        assert by_map[m]["requests"] == run.summary(m)["requests"]
    assert sum(w["count"] for w in doc["waiting"]) == len(fails)

    # failures: every failed record, with the platform's answer.
    fj = json.loads(world.run("failures", "--format", "json", check_rc=1).out)
    assert fj["count"] == len(fails)
    got = {(f["mapping"], f["key"]): f for f in fj["failures"]}
    assert set(got) == {(m, k) for m, k, *_ in fails}
    for b in world.manifest["bad"]:
        f = got[(b["table"], b["key"])]
        assert f["reason"] and f["attempts"] == 1 and f["first_seen"] and f["last_seen"]
        want = {"mapping_error": "mapping", "deferred": "deferred", "platform_error": "refused"}[b["outcome"]]
        assert f["kind"] == want, (b, f)
        if want == "refused":
            assert f["http_status"] == 422
    table = world.run("failures", "employees", check_rc=1).out
    emp_keys = {k for m, k, *_ in fails if m == "employees"}
    assert all(k in table for k in emp_keys)
    assert "absences" not in table
    assert table.splitlines()[0].split()[:3] == ["MAPPING", "KEY", "KIND"]
    world.run("failures", "nosuch", check_rc=2)
    world.run("status", "--format", "yaml", check_rc=2)

    # retry: a refused record is sent again on the next run even though it did not change.
    loser = next(k for m, k, kind, *_ in fails if m == "employees" and kind == "refused")
    r = world.run("retry", "employees", loser, check_rc=0)
    assert "1 failed record(s) will be tried again" in r.out
    assert world.sql("SELECT retry FROM hrsync.failures WHERE mapping = 'employees' AND erp_key = %s",
                     (loser,)) == [(True,)]
    world.run("retry", "employees", "NO-SUCH-KEY", check_rc=1)
    attempts = "SELECT retry, attempts FROM hrsync.failures WHERE mapping = 'employees' AND erp_key = %s"
    world.run("run", check_rc=1)
    assert world.sql(attempts, (loser,)) == [(False, 2)]   # tried again, refused again
    world.run("run", check_rc=1)
    assert world.sql(attempts, (loser,)) == [(False, 2)]   # unchanged and not asked: left alone

    # The database unreachable: exit 3, with the reason.
    world.cluster_port, world.cluster.port = world.cluster.port, "1"
    try:
        world.write_config()
        r = world.run("status", check_rc=3)
        assert "cannot connect to the database" in r.err
    finally:
        world.cluster.port = world.cluster_port
        world.write_config()


# ---- install and units ----

def build_dir():
    return os.path.dirname(os.path.abspath(HRSYNC))


def test_make_install_puts_binary_units_man_pages_and_example_config_in_place(tmp_path):
    dest = tmp_path / "root"
    # -o: use the binary the suite tests as it is, never rebuild it with other flags.
    subprocess.run(["make", "-s", "-C", ROOT, "-o", HRSYNC, "install", f"DESTDIR={dest}", "PREFIX=/usr",
                    f"BUILD={build_dir()}"], check=True, capture_output=True, text=True)
    files = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    want = {"usr/bin/hrsync", "etc/hrsync/hrsync.yaml.example", "usr/share/man/man1/hrsync.1",
            "usr/share/man/man5/hrsync.yaml.5", "usr/lib/sysusers.d/hrsync.conf"}
    want |= {f"usr/lib/systemd/system/{u}" for u in ("hrsync.service", "hrsync.timer", "hrsyncd.service",
                                                     "hrsync@.service", "hrsync@.timer",
                                                     "hrsync-reconcile.service", "hrsync-reconcile.timer")}
    assert want <= files, want - files
    assert os.access(dest / "usr/bin/hrsync", os.X_OK)
    unit = (dest / "usr/lib/systemd/system/hrsync.service").read_text()
    assert "ExecStart=/usr/bin/hrsync -c /etc/hrsync/hrsync.yaml run" in unit
    assert "SuccessExitStatus=75" in unit
    assert "Persistent=true" in (dest / "usr/lib/systemd/system/hrsync.timer").read_text()
    for page in ("usr/share/man/man1/hrsync.1", "usr/share/man/man5/hrsync.yaml.5"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(dest / page)], capture_output=True,
                           text=True) if shutil.which("groff") else None
        assert r is None or (r.returncode == 0 and not r.stderr), r.stderr
    # PREFIX moves everything but /etc.
    dest2 = tmp_path / "local"
    subprocess.run(["make", "-s", "-C", ROOT, "-o", HRSYNC, "install", f"DESTDIR={dest2}", f"BUILD={build_dir()}"],
                   check=True, capture_output=True, text=True)
    assert (dest2 / "usr/local/lib/systemd/system/hrsyncd.service").is_file()
    assert "ExecStart=/usr/local/bin/hrsync" in (dest2 / "usr/local/lib/systemd/system/hrsyncd.service").read_text()
    assert (dest2 / "usr/local/share/man/man1/hrsync.1").is_file()
    assert (dest2 / "etc/hrsync/hrsync.yaml.example").is_file()


@pytest.mark.skipif(not shutil.which("systemd-analyze"),
                    reason="systemd-analyze is not installed (Debian package: systemd)")
def test_systemd_analyze_verify_passes_on_the_installed_units(tmp_path):
    dest = tmp_path / "root"
    subprocess.run(["make", "-s", "-C", ROOT, "-o", HRSYNC, "install", f"DESTDIR={dest}", "PREFIX=/usr",
                    f"BUILD={build_dir()}"], check=True, capture_output=True, text=True)
    # The units as installed; ExecStart= pointed at the installed binary inside DESTDIR.
    units = tmp_path / "units"
    units.mkdir()
    for p in (dest / "usr/lib/systemd/system").iterdir():
        (units / p.name).write_text(p.read_text().replace("/usr/bin/hrsync", str(dest / "usr/bin/hrsync")))
    env = dict(os.environ, MANPATH=str(dest / "usr/share/man"))
    # With man(1) installed, verify also checks that the Documentation= pages exist.
    man = "--man=yes" if shutil.which("man") else "--man=no"
    r = subprocess.run(["systemd-analyze", "verify", man, "./hrsync.service", "./hrsync.timer",
                        "./hrsyncd.service", "./hrsync@acme.service", "./hrsync@acme.timer",
                        "./hrsync-reconcile.service", "./hrsync-reconcile.timer"],
                       cwd=units, capture_output=True, text=True, env=env)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr
    for u in ("hrsync.service", "hrsyncd.service", "hrsync@acme.service", "hrsync-reconcile.service"):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", f"./{u}"], cwd=units,
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        assert m and float(m.group(1)) <= 2.0, r.stdout[-2000:] + r.stderr
