"""Issue #4, item 8: secrets and injection.

- No token, password or Authorization / X-API-KEY value in any output (every command, at
  debug level, text and JSON, error paths included) nor in any table of the state schema:
  test_contract.py, for every connector.
- A secret file readable by group or others is refused; so are inline secrets.
- http:// base URLs are refused unless allow_insecure_http: true; TLS peers are verified.
- Table, column and key names from mapping files cannot inject SQL; `where:` and
  `query:` are SQL by design but run in a READ ONLY transaction.
"""
import json
import os
import re
import shutil
import ssl
import subprocess

import pytest

from checks import LocalServer
from harness import HRSYNC
from world_peopleforce import TOKEN

DB_PASSWORD = "db-pass-Zq81-never-print-me"


def run_capture(world, *args, env=None, timeout=300):
    """Run hrsync, returning (rc, stdout + stderr) as text; the bytes are decoded leniently so
    that what is checked is what was written."""
    p = subprocess.run([HRSYNC, "-c", world.path, *args], capture_output=True, timeout=timeout,
                       env=env or world.env())
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert "AddressSanitizer" not in out and "runtime error:" not in out, out[-4000:]
    return p.returncode, out


def no_leaks_env(world):
    """The injection tests are about SQL, not memory: a failing source query leaks a few bytes
    (see test_failing_source_query_does_not_leak), which LeakSanitizer would report first."""
    return dict(world.env(), ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")


# ---------------------------------------------------------------- secret files

def _token_config(world, spec, extra_env=None):
    world.write_config()
    text = open(world.path).read().replace("token: { env: PF_TOKEN }", f"token: {spec}")
    open(world.path, "w").write(text)
    env = dict(world.env(), **(extra_env or {}))
    return env


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666])
def test_secret_file_readable_by_others_is_refused(world, tmp_path, mode):
    f = tmp_path / "pf-token"
    f.write_text(TOKEN)
    os.chmod(f, mode)
    env = _token_config(world, f"{{ file: {f} }}")
    rc, out = run_capture(world, "run", env=env)
    assert rc == 2, out
    assert f"secret file {f} is readable by group or others (mode {mode:03o}); run: chmod 600 {f}" in out, out
    assert TOKEN not in out
    assert world.sandbox.requests() == []
    assert world.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hrsync'") == [(0,)]


def test_secret_files_of_the_owner_alone_are_accepted(world, tmp_path):
    f = tmp_path / "pf-token"
    f.write_text(TOKEN + "\n")  # an editor's trailing newline is not part of the key
    os.chmod(f, 0o400)
    env = _token_config(world, f"{{ file: {f} }}")
    rc, out = run_capture(world, "run", env=env)
    assert rc == 1, out[-2000:]


def test_systemd_credential_readable_by_others_is_refused(world, tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    f = creds / "peopleforce-token"
    f.write_text(TOKEN)
    os.chmod(f, 0o644)
    env = _token_config(world, "{ credential: peopleforce-token }", {"CREDENTIALS_DIRECTORY": str(creds)})
    rc, out = run_capture(world, "check", env=env)
    assert rc == 2 and "readable by group or others" in out, out
    os.chmod(f, 0o600)
    rc, out = run_capture(world, "check", env=env)
    assert rc == 0, out
    # Without $CREDENTIALS_DIRECTORY it says what is missing.
    env.pop("CREDENTIALS_DIRECTORY")
    rc, out = run_capture(world, "check", env=env)
    assert rc == 2 and "CREDENTIALS_DIRECTORY" in out, out


def test_database_password_file_readable_by_others_is_refused(world, tmp_path):
    pw = tmp_path / "db-password"
    pw.write_text(DB_PASSWORD)
    os.chmod(pw, 0o644)
    world.write_config()
    text = open(world.path).read().replace("  state_schema: hrsync", f"  state_schema: hrsync\n  password_file: {pw}")
    open(world.path, "w").write(text)
    rc, out = run_capture(world, "run")
    assert rc == 2 and "database password_file" in out and "readable by group or others" in out, out
    assert DB_PASSWORD not in out


def test_inline_secret_is_refused(world):
    env = _token_config(world, json.dumps(TOKEN))
    rc, out = run_capture(world, "check", env=env)
    assert rc == 2 and "secrets are not written inline" in out, out
    assert TOKEN not in out, "the refusal must not echo the secret"


# ---------------------------------------------------------------- transport

@pytest.mark.parametrize("allow", [None, "false"])
def test_plain_http_is_refused_unless_allowed(world, allow):
    world.write_config()
    text = open(world.path).read()
    text = text.replace("    allow_insecure_http: true\n", "" if allow is None else f"    allow_insecure_http: {allow}\n")
    open(world.path, "w").write(text)
    rc, out = run_capture(world, "run")
    assert rc == 2, out
    assert "base_url uses http://" in out and "allow_insecure_http: true" in out, out
    assert world.sandbox.requests() == []
    assert world.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hrsync'") == [(0,)]


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/api", "file:///etc/passwd", "127.0.0.1:8080/api"])
def test_other_schemes_are_refused(world, url):
    world.write_config()
    text = re.sub(r'base_url: "[^"]*"', f'base_url: "{url}"', open(world.path).read())
    open(world.path, "w").write(text)
    rc, out = run_capture(world, "check")
    assert rc == 2 and "base_url must start with https://" in out, out


class _TlsServer(LocalServer):
    """An HTTPS server with a self-signed certificate, answering 200 {} to anything and
    recording whether any HTTP request (and so any key) ever reached it."""

    def __init__(self, tmp_path):
        self.cert, self.key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", self.key,
                        "-out", self.cert], check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        self.ctx, self.received, self.handshakes = ctx, [], 0
        super().__init__()

    def handle(self, conn):
        with self.ctx.wrap_socket(conn, server_side=True) as s:
            self.handshakes += 1
            s.settimeout(2)
            data = s.recv(65536)
            if data:
                self.received.append(data)
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command to make a certificate")
def test_tls_peer_is_verified_and_no_key_goes_to_an_unverified_one(world, tmp_path):
    srv = _TlsServer(tmp_path)
    try:
        world.write_config()
        text = re.sub(r'base_url: "[^"]*"', f'base_url: "https://127.0.0.1:{srv.port}/api/public/v3"',
                      open(world.path).read())
        open(world.path, "w").write(text)
        rc, out = run_capture(world, "-v", "run")
    finally:
        srv.close()
    assert rc == 3, out[-2000:]
    assert re.search(r"(?i)certificate|SSL", out), out[-2000:]
    assert srv.received == [], f"a request reached an unverified peer: {srv.received[0][:200]!r}"
    assert TOKEN not in out


# ---------------------------------------------------------------- SQL injection through names

EMPLOYEES = """connector: peopleforce
entity: employees
source:
  {source}
fields:
  employee_number: {{ from: {key} }}
  first_name:      {{ from: first_name, required: true }}
  last_name:       {{ {last} }}
  hired_on:        {{ from: hire_date, format: date }}
"""

INJECTIONS = {
    "table-two-statements": dict(source="table: 'erp.employees; DROP TABLE erp.assets'\n  key: personnel_number"),
    "table-quote": dict(source="table: 'erp.employees\"; DROP TABLE erp.assets; --'\n  key: personnel_number"),
    "table-no-schema": dict(source="table: 'employees; DROP TABLE erp.assets'\n  key: personnel_number"),
    "column": dict(last="from: 'x\"; DROP TABLE erp.assets; --'"),
    "key": dict(source="table: erp.employees\n  key: 'personnel_number\"; DROP TABLE erp.assets; --'",
                key="'personnel_number\"; DROP TABLE erp.assets; --'"),
    "template": dict(last="template: '{last_name\"; DROP TABLE erp.assets; --}'"),
    "lookup": dict(last="from: last_name"),  # position lookup below
}


def _write_mapping(tmp_path, case):
    spec = dict(source="table: erp.employees\n  key: personnel_number", key="personnel_number",
                last="from: last_name")
    spec.update(INJECTIONS[case])
    text = EMPLOYEES.format(**spec)
    if case == "lookup":
        text += "  position:\n    department_id: { lookup: { resource: departments, match: name }, " \
                "from: 'department_name\"; DROP TABLE erp.assets; --' }\n"
    f = tmp_path / "employees.yaml"
    f.write_text(text)
    return str(f)


@pytest.mark.parametrize("case", list(INJECTIONS))
def test_names_in_mappings_cannot_inject_sql(world, tmp_path, case):
    world.mappings = [_write_mapping(tmp_path, case)]
    world.write_config()
    rc, out = run_capture(world, "run", env=no_leaks_env(world))
    assert rc in (2, 3), out[-2000:]
    # Clean: one clear reason, no crash, and the name shown as it was written.
    assert re.search(r"not a valid name|does not exist|no such|syntax error|invalid", out), out[-2000:]
    assert world.sql("SELECT to_regclass('erp.assets') IS NOT NULL") == [(True,)], "erp.assets was dropped"
    assert world.sql("SELECT count(*) FROM erp.assets")[0][0] == 120
    assert world.writes(world.sandbox.requests()) == []


def test_where_runs_read_only(world, tmp_path):
    """`where:` is SQL by design, in a READ ONLY snapshot: a function that writes fails there."""
    world.sql("CREATE TABLE erp.audit (n int)")
    world.sql("CREATE FUNCTION erp.sneaky() RETURNS boolean LANGUAGE plpgsql AS "
              "$$ BEGIN INSERT INTO erp.audit VALUES (1); RETURN true; END $$")
    f = tmp_path / "employees.yaml"
    f.write_text(EMPLOYEES.format(source="table: erp.employees\n  key: personnel_number\n  where: \"erp.sneaky()\"",
                                  key="personnel_number", last="from: last_name"))
    world.mappings = [str(f)]
    world.write_config()
    rc, out = run_capture(world, "run", env=no_leaks_env(world))
    assert rc == 3, out[-2000:]
    assert "read-only transaction" in out, out[-2000:]
    assert world.sql("SELECT count(*) FROM erp.audit") == [(0,)]
    assert world.writes(world.sandbox.requests()) == []


# Statement stacking: the where (or query) repeats the rest of hrsync's SELECT so that it is
# complete, then commits its read-only transaction and runs its own statements in a new,
# read-write one; `--` swallows what hrsync appends after it. PQexec runs several statements
# in one string; PQexecParams would refuse them. The rest of hrsync's SELECT is read from
# PostgreSQL's statement log for a harmless where, so the test follows the SQL's shape.
PROBE = "'hrsync-probe' IS NOT NULL"


def _generated_tail(world, tmp_path, source):
    """What hrsync appends after the where/query in the DECLARE it sends (one line)."""
    world.sql(f'ALTER DATABASE "{world.db}" SET log_statement = \'all\'')
    f = tmp_path / "employees.yaml"
    f.write_text(EMPLOYEES.format(source=source, key="personnel_number", last="from: last_name"))
    world.mappings = [str(f)]
    world.write_config()
    rc, out = run_capture(world, "run", env=no_leaks_env(world))  # as the real one will: a first run
    assert rc in (0, 1), out[-2000:]
    with open(os.path.join(world.cluster.dir, "postgres.log"), errors="replace") as log:
        # "statement: DECLARE ..." (simple protocol) or "execute <unnamed>: DECLARE ..." (extended)
        stmts = [l[l.index("DECLARE "):] for l in log if "DECLARE " in l and PROBE in l]
    assert stmts, "the DECLARE was not found in PostgreSQL's log"
    tail = stmts[-1].rstrip("\n").split(PROBE, 1)[1]
    if "\n" in tail or "--" in tail:
        pytest.skip("the generated SQL spans lines: this payload cannot swallow its tail")
    world.sandbox.reset()
    world.sql("DROP SCHEMA IF EXISTS hrsync CASCADE")
    return tail


@pytest.mark.parametrize("via", ["where", "query"])
def test_where_and_query_cannot_leave_the_read_only_transaction(world, tmp_path, via):
    if via == "where":
        probe = f"table: erp.employees\n  key: personnel_number\n  where: \"{PROBE}\""
    else:
        probe = f"query: \"SELECT * FROM erp.employees WHERE {PROBE}\"\n  key: personnel_number"
    tail = _generated_tail(world, tmp_path, probe)
    evil = f"{PROBE}{tail}; COMMIT; DROP TABLE erp.assets; COMMIT; --"
    source = probe.replace(f"{PROBE}\"", json.dumps(evil)[1:]) if via == "where" else \
        probe.replace(f"WHERE {PROBE}\"", "WHERE " + json.dumps(evil)[1:])
    f = tmp_path / "employees.yaml"
    f.write_text(EMPLOYEES.format(source=source, key="personnel_number", last="from: last_name"))
    rc, out = run_capture(world, "run", env=no_leaks_env(world))
    assert world.sql("SELECT to_regclass('erp.assets') IS NOT NULL") == [(True,)], \
        f"the mapping's SQL dropped erp.assets (exit {rc})"


def _asan_build():
    with open(HRSYNC, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.mark.skipif(not _asan_build(), reason="LeakSanitizer needs the ASan build (make asan)")
def test_failing_source_query_does_not_leak(world, tmp_path):
    world.mappings = [_write_mapping(tmp_path, "column")]
    world.write_config()
    p = subprocess.run([HRSYNC, "-c", world.path, "run"], capture_output=True, text=True, env=world.env(), timeout=120)
    assert "LeakSanitizer" not in p.stderr, p.stderr[-3000:]
    assert p.returncode == 3, p.stderr[-2000:]


def test_invalid_table_name_is_a_mapping_error(world, tmp_path):
    world.mappings = [_write_mapping(tmp_path, "table-two-statements")]
    world.write_config()
    rc, out = run_capture(world, "check", env=no_leaks_env(world))
    assert rc == 2 and "not a valid name" in out, out
    rc, out = run_capture(world, "run", env=no_leaks_env(world))
    assert rc == 2, out[-2000:]
