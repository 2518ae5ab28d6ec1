"""Issue #19: the findings about configuration, mapping files, output and the process.
Each test is named after its finding and fails on the code before the fix.

- 6: a YAML `map:` of 30,000 codes took 6 GB in `check` (arrays grown by copying): it loads
  now in bounded memory, a duplicate among the codes is still found, and files past 8 MiB or
  500,000 nodes are refused where they go past the limit (the daemon's reload too).
- 8: `status` and `failures` printed ERP values raw: an escape sequence in a key reached the
  terminal.
- 9: a mapping `name:` with a newline forged journal lines.
- 10: a YAML "\\0" escape silently cut `table:` or `where:`.
- 11: secrets in memory: the daemon is not dumpable, an `{ env: NAME }` secret is gone from
  /proc/PID/environ (and a reload still has it), the units set LimitCORE=0.
- 12: files others may write, a conninfo password others may read, plain http to another
  machine; and each tenant of hrsync@.service runs as its own user.

Checks that need no database run the binary directly on a config in a temporary directory.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from harness import HRSYNC, ROOT, TOKEN

SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
EMPLOYEES = os.path.join(ROOT, "mappings", "peopleforce", "employees.yaml")


def env_with(**extra):
    # hard_rss_limit_mb: a build that blows up on a big file dies at 2 GB instead of taking the machine.
    env = dict(os.environ, PF_TOKEN=TOKEN, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:hard_rss_limit_mb=2048",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    env.update(extra)
    return env


def hrsync(config, *args, env=None, timeout=180):
    """Run hrsync on config; (exit status, stdout + stderr)."""
    p = subprocess.run([HRSYNC, "-c", str(config), *args], capture_output=True, timeout=timeout,
                       env=env or env_with())
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert "hard rss limit exhausted" not in out, "hrsync went past 2 GB of memory: " + out[:300]
    assert not any(s in out for s in SANITIZER), out[-4000:]
    return p.returncode, out


def make_config(d, mapping_text=None, conninfo="host=/nonexistent dbname=erp_mirror user=hrsync",
                base_url="https://app.peopleforce.io/api/public/v3", extra_conn="", extra_top="", mode=0o600):
    """d/hrsync.yaml (mode mode) naming d/mappings/*.yaml, which holds employees.yaml (the shipped
    one, or mapping_text). Returns the config's path."""
    maps = os.path.join(d, "mappings")
    os.makedirs(maps, exist_ok=True)
    with open(os.path.join(maps, "employees.yaml"), "w") as f:
        f.write(mapping_text if mapping_text is not None else open(EMPLOYEES).read())
    path = os.path.join(d, "hrsync.yaml")
    with open(path, "w") as f:
        f.write(f"""database:
  conninfo: "{conninfo}"
connectors:
  peopleforce:
    type: peopleforce
    base_url: "{base_url}"
    token: {{ env: PF_TOKEN }}
{extra_conn}
mappings: [ mappings/*.yaml ]
{extra_top}""")
    os.chmod(path, mode)
    return path


def mapping_with_codes(n, dup_at=None):
    """The shipped employees mapping, its gender field mapping n codes (code dup_at repeats code 0)."""
    lines = open(EMPLOYEES).read().splitlines()
    i = next(k for k, l in enumerate(lines) if l.strip().startswith("gender:"))
    codes = [f"      G{0 if k == dup_at else k:06d}: male" for k in range(n)]
    lines[i:i + 1] = ["  gender:", "    from: sex", "    unmapped: null", "    map:"] + codes
    return "\n".join(lines) + "\n", i + 5   # the line of code 0


# ---------------------------------------------------------------- 6: big YAML files

def test_yaml_map_of_30000_codes_checks_in_bounded_memory_and_finds_a_duplicate(tmp_path):
    """Before: 7.1 GB of memory and two minutes for 30,000 codes (the 2 GB limit kills it)."""
    text, _ = mapping_with_codes(30000)
    cfg = make_config(tmp_path, text)
    rc, out = hrsync(cfg, "check")
    assert rc == 0 and "1 mapping(s), 1 connector(s): no errors" in out, out[-2000:]
    # A code given twice among the 30,000 is reported at its own line.
    text, first = mapping_with_codes(30000, dup_at=29000)
    cfg = make_config(tmp_path, text)
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out[-2000:]
    assert re.search(rf"mappings/employees\.yaml:{first + 29000}:7: key 'G000000' appears twice", out), out[-2000:]


def test_yaml_file_past_the_node_limit_is_refused_where_it_goes_past(tmp_path):
    """500,000 nodes at most: a map of 250,000 codes under one key is 500,002."""
    text, first = mapping_with_codes(250000)
    cfg = make_config(tmp_path, text)
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out[-2000:]
    m = re.search(r"mappings/employees\.yaml:(\d+):(\d+): this file holds more than 500000 values \(YAML nodes\), "
                  r"the most hrsync reads from one file; split it", out)
    assert m, out[-2000:]
    assert first < int(m.group(1)) < first + 250000, m.group(0)


def test_yaml_file_past_8_mib_is_refused_where_it_goes_past(tmp_path):
    text, _ = mapping_with_codes(10)
    text += "# " + "x" * 120 + "\n"
    filler = "#" + "-" * 98 + "\n"   # comment lines of 100 bytes
    head = len(text.encode())
    text += filler * ((8 << 20) // 100 + 10)
    cfg = make_config(tmp_path, text)
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out[-2000:]
    limit = 8 << 20
    line = text.encode()[:limit].count(b"\n") + 1
    assert f"mappings/employees.yaml:{line}:" in out and "the file goes past 8 MiB here" in out, out[-2000:]
    assert head < limit


def test_daemon_reload_refuses_a_mapping_past_the_limits_and_keeps_running(tmp_path):
    """The daemon reads the same files at each reload (SIGHUP): the limits hold there too."""
    cfg = make_config(tmp_path, extra_top='schedule: "0 0 1 1 *"\n')
    d = Daemon(cfg, tmp_path / "daemon.log")
    try:
        d.wait_log("daemon started")
        text, _ = mapping_with_codes(250000)
        (tmp_path / "mappings" / "employees.yaml").write_text(text)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("reload rejected")
        assert "more than 500000 values" in d.text()
        assert d.proc.poll() is None
    finally:
        assert d.stop() == 0


# ---------------------------------------------------------------- 8: escape sequences in tables

COLS = ("company, last_name, first_name, patronymic, sex, birth_date, mobile_phone, hire_date, "
        "department_name, job_title, grade, location_name")


def test_failures_and_status_tables_show_an_erp_key_escape_sequence_escaped(world):
    donor = world.sql("SELECT personnel_number FROM erp.employees WHERE dismissal_date IS NULL "
                      "ORDER BY personnel_number LIMIT 1")[0][0]
    # The planted bad e-mails mended: the failures of the e-mail check are ours alone, so that
    # status shows one of our keys as the example of their group.
    for b in world.manifest["bad"]:
        if b["table"] == "employees" and b["field"] == "email":
            world.sql("UPDATE erp.employees SET email = %s WHERE personnel_number = %s",
                      (f"mended{b['key']}@example.com", b["key"]))
    keys = ["ESC\x1b[31mRED", "CSI\u009b31mC1", "RLO\u202eevil"]
    for k in keys:   # an e-mail that fails its check: each becomes a failure with its key
        world.sql("INSERT INTO erp.employees (personnel_number, email, %s) SELECT %%s, 'not-an-email', %s "
                  "FROM erp.employees WHERE personnel_number = %%s" % (COLS, COLS), (k, donor))
    world.run("run", "--mapping", "employees", check_rc=1)
    p = subprocess.run([HRSYNC, "-c", world.path, "failures", "employees"], capture_output=True, env=world.env())
    assert p.returncode == 1, p.stderr
    table = p.stdout.decode("utf-8")
    assert "ESC\\x1b[31mRED" in table and "CSI\\u009b31mC1" in table and "RLO\\u202eevil" in table, table
    assert "\x1b" not in table and "\u009b" not in table and "\u202e" not in table
    rows = [l for l in table.splitlines() if "not a valid e-mail" in l]
    assert len(rows) == 3, table
    # JSON keeps the exact values.
    p = subprocess.run([HRSYNC, "-c", world.path, "failures", "employees", "--format", "json"], capture_output=True,
                       env=world.env())
    assert {f["key"] for f in json.loads(p.stdout)["failures"] if f["field"] == "email"} == set(keys)
    # status: the example of the e-mail check's group is one of these keys, escaped too.
    p = subprocess.run([HRSYNC, "-c", world.path, "status"], capture_output=True, env=world.env())
    status = p.stdout.decode("utf-8")
    assert p.returncode == 0, p.stderr
    example = next(l for l in status.splitlines() if "email check" in l)
    assert re.search(r"(ESC\\x1b\[31mRED|CSI\\u009b31mC1|RLO\\u202eevil): not a valid e-mail", example), status
    assert "\x1b" not in status and "\u009b" not in status and "\u202e" not in status, status


# ---------------------------------------------------------------- 9: mapping names

def test_mapping_name_with_a_newline_is_refused_and_forges_no_journal_line(tmp_path):
    forged = "<5>run=9 mapping=employees summary created=9999 updated=0"
    text = 'name: "employees\\n' + forged + '"\n' + open(EMPLOYEES).read()
    cfg = make_config(tmp_path, text)
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out
    assert re.search(r"mappings/employees\.yaml:1:7: name: 'employees\\n<5>run=9 mapping=employees summary "
                     r"created=9999 updated=0' has a character other than a-z, 0-9, _ and -", out), out
    rc, out = hrsync(cfg, "--log-format", "journal", "run")
    assert rc == 2, out
    assert not any(l.startswith("<5>run=9") for l in out.splitlines()), out


def test_mapping_file_name_that_makes_no_mapping_name_asks_for_a_name(tmp_path):
    cfg = make_config(tmp_path)
    os.rename(tmp_path / "mappings" / "employees.yaml", tmp_path / "mappings" / "Employees (copy).yaml")
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out
    assert ("the file name gives the mapping name 'Employees (copy)', which has a character other than a-z, 0-9, "
            "_ and -; add a name of those (e.g. name: employees_copy) at the top of the file") in out, out


# ---------------------------------------------------------------- 10: NUL in scalars

def test_nul_escape_in_table_or_where_is_refused_with_its_position(tmp_path):
    text = open(EMPLOYEES).read().replace(
        "  table: erp.employees\n",
        '  table: "erp.employees\\0; this is cut"\n  where: "dismissal_date IS NULL\\x00 OR true"\n')
    cfg = make_config(tmp_path, text)
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out
    lines = text.splitlines()
    t = next(i for i, l in enumerate(lines) if l.startswith("  table:")) + 1
    assert re.search(rf"mappings/employees\.yaml:{t}:10: a value cannot hold a NUL character", out), out
    assert re.search(rf"mappings/employees\.yaml:{t + 1}:10: a value cannot hold a NUL character", out), out


# ---------------------------------------------------------------- 11: secrets in memory

class Daemon:
    """hrsync daemon in the background, its log in a file."""

    def __init__(self, config, log, env=None, **popen):
        self.log = str(log)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([HRSYNC, "-c", str(config), "daemon"], stdout=out, stderr=out,
                                         env=env or env_with(), **popen)

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_log(self, needle, timeout=60, count=1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.text().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} in the daemon's log:\n{self.text()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert not any(s in self.text() for s in SANITIZER), self.text()[-5000:]
        return rc


def test_running_daemon_is_not_dumpable_and_its_environ_holds_no_env_secret():
    """Run as an unprivileged user (nobody): /proc/PID files of a process that is not dumpable
    belong to root. The token given as { env: PF_TOKEN } is not in /proc/PID/environ, and a
    reload (SIGHUP) still finds it."""
    d = tempfile.mkdtemp(prefix="hrsync-dump-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        cfg = make_config(d, extra_top='schedule: "0 0 1 1 *"\n', mode=0o644)
        os.chmod(os.path.join(d, "mappings", "employees.yaml"), 0o644)
        secret = "env-secret-7d1c0a9b-" + TOKEN
        daemon = Daemon(cfg, os.path.join(d, "daemon.log"), env=env_with(PF_TOKEN=secret), user=65534, group=65534)
        try:
            daemon.wait_log("daemon started")
            pid = daemon.proc.pid
            assert os.stat(f"/proc/{pid}/environ").st_uid == 0, "the daemon is dumpable"
            assert os.stat(f"/proc/{pid}/status").st_uid == 0
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
            assert secret.encode() not in environ
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_log("configuration reloaded")
            assert "not set" not in daemon.text() and "reload rejected" not in daemon.text()
        finally:
            assert daemon.stop() == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_daemon_run_after_a_reload_still_sends_the_env_token(world):
    """The env secret is wiped from the environment once read: the run after a reload must still
    authenticate (the sandbox refuses a wrong key with 401 and the run would stop, exit 3)."""
    text = open(world.path).read() + 'schedule: "02:30"\n'
    open(world.path, "w").write(text)
    paris = ZoneInfo("Europe/Paris")
    start = datetime.now(paris).replace(hour=2, minute=29, second=52, microsecond=0).timestamp()
    log = os.path.join(world.dir, "daemon.log")
    daemon = Daemon(world.path, log, env=dict(world.env(), HRSYNC_TEST_CLOCK=f"{start:.0f}"))
    try:
        daemon.wait_log("daemon started")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_log("configuration reloaded")
        daemon.wait_log("mapping=assets summary", timeout=300)
    finally:
        assert daemon.stop() == 0
    out = daemon.text()
    assert "credentials refused" not in out and "is not set" not in out, out[-3000:]
    assert re.search(r"mapping=employees summary created=[1-9]", out), out[-3000:]
    assert re.search(r"warning +connector 'peopleforce': allow_insecure_http", out), out[:2000]


def test_every_service_unit_disables_core_dumps():
    for unit in ("hrsync.service", "hrsyncd.service", "hrsync@.service"):
        text = open(os.path.join(ROOT, "systemd", unit)).read()
        assert re.search(r"^LimitCORE=0$", text, re.M), unit


# ---------------------------------------------------------------- 12: who may write, what is sent where

def test_config_writable_by_others_is_refused_and_by_its_group_warned(tmp_path):
    cfg = make_config(tmp_path, mode=0o666)
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out
    assert f"{cfg}: writable by others (mode 0666): anyone on this machine could change what hrsync sends, " \
           f"and where; run: chmod o-w {cfg}" in out, out
    os.chmod(cfg, 0o664)
    rc, out = hrsync(cfg, "check")
    assert rc == 0, out
    assert f"{cfg}: warning: writable by its group (mode 0664)" in out, out
    os.chmod(cfg, 0o640)
    rc, out = hrsync(cfg, "check")
    assert rc == 0 and "warning" not in out, out


def test_conninfo_password_in_a_config_others_may_read_is_warned(tmp_path):
    cfg = make_config(tmp_path, conninfo="host=db dbname=erp user=hrsync password=pw-0c41-never-print", mode=0o644)
    rc, out = hrsync(cfg, "check")
    assert rc == 0, out
    assert re.search(r"hrsync\.yaml:2:13: warning: database conninfo: holds a password, in a file others may read "
                     r"\(mode 0644\); move it to a file of its own named by password_file:", out), out
    assert "pw-0c41-never-print" not in out
    os.chmod(cfg, 0o640)
    rc, out = hrsync(cfg, "check")
    assert rc == 0 and "warning" not in out, out


def test_mapping_file_or_folder_writable_by_others_is_refused_by_check_and_run(world, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    for name in ("employees.yaml", "absences.yaml", "assets.yaml", "kinds.csv"):
        shutil.copy(os.path.join(ROOT, "mappings", "peopleforce", name), maps / name)
    world.mappings = [str(maps / "*.yaml")]
    world.write_config()
    os.chmod(maps / "employees.yaml", 0o666)
    rc, out = hrsync(world.path, "check", env=world.env())
    assert rc == 2 and f"{maps}/employees.yaml: writable by others (mode 0666)" in out, out
    os.chmod(maps / "employees.yaml", 0o664)   # the payroll team's group may write it
    os.chmod(maps / "kinds.csv", 0o646)        # a code table is part of the mapping
    rc, out = hrsync(world.path, "check", env=world.env())
    assert rc == 2 and f"{maps}/kinds.csv: writable by others (mode 0646)" in out, out
    os.chmod(maps / "kinds.csv", 0o644)
    os.chmod(maps, 0o1777)
    rc, out = hrsync(world.path, "run", env=world.env())
    assert rc == 2, out
    assert f"{maps}: this folder is writable by others (mode 1777): anyone on this machine could add or replace " \
           f"the mapping files hrsync reads there; run: chmod o-w {maps}" in out, out
    assert world.sandbox.requests() == []
    os.chmod(maps, 0o755)
    rc, out = hrsync(world.path, "check", env=world.env())
    assert rc == 0, out


@pytest.mark.parametrize("base_url", ["http://10.20.30.40:8080/api", "https://app.peopleforce.io/api/public/v3",
                                      "http://127.0.0.1@evil.example/api", "http://127.0.0.1.evil.example/api"])
def test_allow_insecure_http_is_refused_for_a_host_that_is_not_this_machine(tmp_path, base_url):
    cfg = make_config(tmp_path, base_url=base_url, extra_conn="    allow_insecure_http: true")
    rc, out = hrsync(cfg, "check")
    assert rc == 2, out
    assert re.search(r"hrsync\.yaml:8:26: connector 'peopleforce': allow_insecure_http is only for a sandbox on "
                     r"this machine \(a base_url on localhost, 127\.0\.0\.0/8 or \[::1\]\); remove it and use "
                     r"https://", out), out


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080/api", "http://localhost:9/api", "http://[::1]:9/api"])
def test_allow_insecure_http_to_this_machine_is_accepted_with_a_warning(tmp_path, base_url):
    cfg = make_config(tmp_path, base_url=base_url, extra_conn="    allow_insecure_http: true")
    rc, out = hrsync(cfg, "check")
    assert rc == 0, out
    assert "hrsync.yaml:4:3: warning: connector 'peopleforce': allow_insecure_http: requests may go over plain " \
           "http, credentials included (for a sandbox on this machine only)" in out, out


def test_each_run_logs_a_warning_for_plain_http(world):
    r = world.run("--log-format", "json", "run", "--mapping", "employees", check_rc=1)
    lines = [json.loads(l) for l in r.err.splitlines()]
    warn = [o for o in lines if o["level"] == "warning" and "allow_insecure_http" in o["msg"]]
    assert len(warn) == 1 and "connector 'peopleforce'" in warn[0]["msg"], r.err[:2000]


# ---------------------------------------------------------------- systemd: one user per tenant

def test_each_tenant_runs_as_its_own_user_and_units_score_at_most_1_1(tmp_path):
    text = open(os.path.join(ROOT, "systemd", "hrsync@.service")).read()
    assert re.search(r"^User=hrsync-%i$", text, re.M) and re.search(r"^Group=hrsync-%i$", text, re.M), text
    for unit in ("hrsync.service", "hrsyncd.service"):
        assert re.search(r"^User=hrsync$", open(os.path.join(ROOT, "systemd", unit)).read(), re.M), unit
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    units = tmp_path / "units"
    units.mkdir()
    for u in ("hrsync.service", "hrsyncd.service", "hrsync@.service"):
        (units / u).write_text(open(os.path.join(ROOT, "systemd", u)).read().replace("/usr/bin/hrsync", HRSYNC))
    (units / "hrsync@acme.service").symlink_to("hrsync@.service")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "./hrsync@acme.service"], cwd=units,
                       capture_output=True, text=True)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    for u in ("hrsync.service", "hrsyncd.service", "hrsync@acme.service"):
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", f"./{u}"], cwd=units,
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        assert m and float(m.group(1)) <= 1.1, r.stdout[-2000:] + r.stderr
