"""Issue #3: the payroll team's tools. check (golden messages over a corpus of broken
mapping files), check --online, plan (golden in both formats; sends no write request),
preview. Set UPDATE_GOLDEN=1 to rewrite the golden files after an intended change."""
import json
import os
import re
import subprocess

from harness import HRSYNC, ROOT
from world_peopleforce import SEED, PeopleForceSandbox

BROKEN = os.path.join(ROOT, "tests", "fixtures", "broken")
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "golden")


def golden(name, text):
    path = os.path.join(GOLDEN, name)
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    assert text == want, f"{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n{text}"


def test_check_reports_every_problem_in_every_file():
    p = subprocess.run([HRSYNC, "-c", "tests/fixtures/broken/hrsync.yaml", "check"], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ))
    assert p.returncode == 2
    with open(os.path.join(BROKEN, "expected.txt")) as f:
        want = f.read()
    if os.environ.get("UPDATE_GOLDEN"):
        with open(os.path.join(BROKEN, "expected.txt"), "w") as f:
            f.write(p.stderr)
        want = p.stderr
    assert p.stderr == want
    # One file with several problems gets them all.
    assert p.stderr.count("mappings/employees.yaml:") == 8


def test_check_online_finds_a_missing_column(world):
    world.sql("ALTER TABLE erp.employees RENAME COLUMN job_title TO job_name")
    r = world.run("check", "--online", check_rc=2)
    assert re.search(r"mappings/peopleforce/employees\.yaml:\d+:5: field 'position.position_id': the source has "
                     r"no column 'job_title'", r.err), r.err
    assert "1 error(s)" in r.err


def test_check_online_warns_of_a_text_column_read_as_a_date(world):
    world.sql("ALTER TABLE erp.employees ALTER COLUMN birth_date TYPE text USING to_char(birth_date, 'DD.MM.YYYY')")
    r = world.run("check", "--online", check_rc=0)
    assert re.search(r"employees\.yaml:\d+:\d+: warning: field 'date_of_birth': column birth_date is text, "
                     r"read as a date", r.err), r.err


def test_check_online_finds_a_leave_type_the_platform_lacks(world, tmp_path):
    with open(SEED) as f:
        seed = json.load(f)
    seed["leave_types"] = [t for t in seed["leave_types"] if t["id"] != 114]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed, ensure_ascii=False))
    sb = PeopleForceSandbox(extra=["--seed", str(path)])
    try:
        world.sandbox, saved = sb, world.sandbox
        world.write_config()
        r = world.run("check", "--online", check_rc=2)
    finally:
        world.sandbox = saved
        sb.stop()
    assert re.search(r"mappings/peopleforce/absences\.yaml:\d+:3: field 'leave_type_id': map sends 114 for 'CSS', "
                     r"but the platform has no leave_types with id 114", r.err), r.err


def test_check_online_refused_credentials(world):
    env = world.env
    world.env = lambda: dict(env(), PF_TOKEN="not-the-key")
    r = world.run("check", "--online", check_rc=2)
    assert "could not read leave_types from the platform" in r.err and "401" in r.err


def test_check_online_reads_the_platforms_lists_side_by_side(world):
    """check --online reads every list it checks against at once, each once: with every answer
    300 ms late, one after the other they would take 300 ms each."""
    world.sandbox.config(delay_ms=300)
    try:
        seq = world.sandbox.last_seq()
        world.run("check", "--online", check_rc=0)
    finally:
        world.sandbox.config(delay_ms=0)
    gets = [r for r in world.sandbox.requests(since=seq) if r["method"] == "GET"]
    names = sorted(r["path"].rsplit("/", 1)[-1] for r in gets)
    # The connector's first list (credentials), then the ids and lookups of the mappings.
    assert names == sorted(["leave_types", "departments", "positions", "locations", "job_levels", "asset_categories",
                            "termination_types", "termination_reasons"]), names
    first = min(r["arrived"] for r in gets)
    later = [r["arrived"] for r in gets if r["path"].rsplit("/", 1)[-1] != "leave_types"]
    assert max(later) - min(later) < 0.2 and min(later) - first >= 0.29, (first, later)


def _change_the_mirror(world):
    exp = world.expected()
    active = sorted(exp["employees"] - exp["dismissed"])
    for k in active[:3]:
        world.sql("UPDATE erp.employees SET email = lower(personnel_number) || '@new.example-group.fr', "
                  "job_title = 'Comptable' WHERE personnel_number = %s", (k,))
    world.sql("UPDATE erp.employees SET dismissal_date = '2026-11-30', dismissal_reason = 'RC' "
              "WHERE personnel_number = %s", (active[-1],))
    world.sql("UPDATE erp.absences SET status = 'cancelled' WHERE absence_id = %s", (sorted(exp["absences"])[0],))


def test_plan_shows_each_change_and_sends_nothing(world):
    world.run("run", check_rc=1)
    _change_the_mirror(world)
    seq = world.sandbox.last_seq()
    table = world.run("-q", "plan", "--mapping", "employees", "--mapping", "absences", check_rc=1)
    js = world.run("-q", "plan", "--mapping", "employees", "--mapping", "absences", "--format", "json", check_rc=1)
    dry = world.run("-q", "run", "--dry-run", "--mapping", "employees", "--mapping", "absences", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []
    assert dry.out == table.out
    # The failing and waiting records are the planted bad rows: keep the golden to the changes.
    rows = [line for line in table.out.splitlines()
            if " update " in line or " terminate " in line or " delete " in line or line.startswith(" ")
            or line.startswith("MAPPING") or line.startswith("totals")]
    golden("plan.txt", "\n".join(rows) + "\n")
    doc = json.loads(js.out)
    changes = [r for r in doc["records"] if r["action"] in ("update", "terminate", "delete")]
    golden("plan.json", json.dumps({"records": changes, "totals": doc["totals"]}, ensure_ascii=False, indent=1) + "\n")
    assert doc["totals"]["update"] == 3 and doc["totals"]["terminate"] == 1 and doc["totals"]["delete"] == 1
    # And the plan is what the run then does.
    r = world.run("run", check_rc=1)
    assert (r.summary("employees")["updated"], r.summary("employees")["terminated"]) == (3, 1)
    assert r.summary("absences")["terminated"] == 1
    nothing = world.run("-q", "plan", check_rc=0)
    assert "Nothing would change." in nothing.out


def test_plan_before_the_first_run_needs_no_state(world):
    r = world.run("-q", "plan", "--format", "json", check_rc=1)
    doc = json.loads(r.out)
    exp = world.expected()
    assert doc["totals"]["create"] > len(exp["employees"])
    # Absences of employees the plan creates are planned too, not left waiting.
    assert doc["totals"]["defer"] < 60
    assert world.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hrsync'") == [(0,)]
    assert world.sandbox.requests() == [] or not world.writes(world.sandbox.requests())


def test_preview_shows_rows_and_payloads(world):
    bad = next(b for b in world.manifest["bad"] if b["table"] == "employees" and b["field"] == "email")
    r = world.run("-q", "preview", "employees", "--key", bad["key"], check_rc=1)
    line = json.loads(r.out)
    assert line["key"] == bad["key"] and line["row"]["personnel_number"] == bad["key"]
    assert line["error"]["field"] == "email" and line["error"]["rule"] == "check"
    r = world.run("-q", "preview", "employees", "--limit", "5", check_rc=0)
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert len(lines) == 5 and all("payload" in x for x in lines)
    assert lines[0]["payload"]["employee_number"] == lines[0]["key"]
    assert not world.writes(world.sandbox.requests())
