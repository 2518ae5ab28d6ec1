"""The contract every connector is held to, run once per connector (the `cworld` fixture:
see worlds.CONNECTORS and harness.World for what a connector provides):

- runs SIGKILLed at any moment, and at the worst one (the platform answered, the state did
  not commit), then a run to the end: nothing twice on the platform, everything there, the
  state's links agreeing, the killed runs recorded as killed;
- answers lost after the platform (maybe) acted create no duplicate; transient failures
  (5xx, 408, dropped connections, cut answers, timeouts, 429) are retried within the run;
- after a complete sync the next run sends no write and fails as the first one did;
- `plan` and `run --dry-run` send no write and write no state;
- no secret in the output of any command at debug level, text or JSON, error paths
  included, nor in any URL, nor in the state.
"""
import json
import os
import re

import pytest

import harness
from checks import assert_backoff, assert_clean, finish, kill, retry_delays
from worlds import CONNECTORS

DB_PASSWORD = "db-pass-Zq81-never-print-me"


def failures(world):
    return {(m, k): kind for m, k, kind in world.sql("SELECT mapping, erp_key, kind FROM hrsync.failures")}


def runs(world):
    return [s for (s,) in world.sql("SELECT status FROM hrsync.runs ORDER BY id")]


# ---------------------------------------------------------------- the world itself

@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_world_declares_what_the_contract_uses(name):
    """A new connector's world fails here, by name, before any run: its hooks are there
    and agree with its shipped mappings."""
    cls = CONNECTORS[name]
    assert cls.name == name and cls.connector_type and cls.sandbox_class.script
    assert os.path.exists(os.path.join(harness.SANDBOXES, cls.sandbox_class.script))
    shipped = {}
    for f in os.listdir(cls.mapping_dir):
        if f.endswith(".yaml"):
            text = open(os.path.join(cls.mapping_dir, f)).read()
            m = re.search(r"^name:\s*(\S+)", text, re.M)
            shipped[m.group(1) if m else f[:-5]] = (f, "direction: pull" in text)
    push = {n for n, (_, pull) in shipped.items() if not pull}
    assert set(cls.push_mappings) == push, (cls.push_mappings, push)
    assert cls.employees_mapping in push and cls.absences_mapping in push | {None}
    assert not cls.contract_files or {shipped[n][0] for n in cls.push_mappings} <= set(cls.contract_files)
    assert cls.secret_var in {var for var, _ in cls.credentials.values()}
    re.compile(cls.creates)
    if cls.issued_secret:
        re.compile(cls.issued_secret)
    for plan in cls.kill_plans.values():
        assert plan and all(how in ("requests", "creates", "commit") and n > 0 for how, n in plan), plan
    for method in ("expected", "assert_end_state", "platform_ids"):
        assert getattr(cls, method) is not getattr(harness.World, method), f"{name} has no {method}()"


# ---------------------------------------------------------------- killed runs

KILL_CASES = [pytest.param(name, plan, id=f"{name}-{plan}") for name, cls in sorted(CONNECTORS.items())
              for plan in cls.kill_plans]


@pytest.mark.parametrize("cworld, plan", KILL_CASES, indirect=["cworld"])
def test_killed_runs_create_no_duplicates(cworld, plan):
    """A first sync SIGKILLed in turn at each step of the world's plan (after so many
    requests or creates; before the state commit of the platform's nth answer), each run
    starting where the killed one left off, then a run to the end."""
    w = cworld
    w.write_config(timeout="30s")  # a loaded machine must not turn slow answers into a stopped run
    steps = w.kill_plans[plan]
    for how, n in steps:
        kill(w, how, n)
    r = finish(w)
    try:
        w.assert_consistent()
    except AssertionError as e:
        raise AssertionError(f"after the kills {steps}: {e}") from e
    if steps[-1][0] == "commit":
        # The last killed run's last answer was not committed: found, not made again.
        assert re.search(r"action=adopt ", r.err), r.err[-3000:]
    # The state's history tells the sysadmin what happened to each killed run.
    assert runs(w) == ["killed"] * len(steps) + ["failures" if w.first_run_rc == 1 else "ok"], runs(w)


# ---------------------------------------------------------------- failing platforms

LOST = ["commit_then_drop", "timeout", "truncated", "html200", "malformed", "reset_midbody"]


@pytest.mark.parametrize("mode", LOST)
def test_answer_lost_after_the_platform_acted_creates_no_duplicate(cworld, mode):
    """The platform (maybe) did it, but hrsync never saw a usable answer: the same run or
    the next finds what was made instead of making it again."""
    w = cworld
    with w.sandbox.faulted(w.lost_answer_rule(mode)):
        w.run("run")
        lost = [x for x in w.sandbox.fired() if re.search(w.creates, x["path"])]
    assert lost, "no create lost its answer"
    if mode == "commit_then_drop":
        # Carried out by the platform, the answer lost.
        assert [x for x in lost if x["status"] in (200, 201)], lost[:3]
    elif mode == "timeout":
        # Carried out once hrsync had given up on them (made, or refused if hrsync had sent
        # the same again meanwhile: both are the platform acting).
        assert all(x["status"] is not None for x in lost), lost[:3]
    finish(w)
    w.assert_consistent()


def transient_faults(creates):
    """(id, rules): failures that a retry cures, on reads and on the main creates (a create
    that lost its answer looks for the record, then sends it again, in the same run). Rules
    on GETs and on POSTs never see each other's requests: a run takes a set of each."""
    reads = [("5xx", [{"mode": "500", "method": "GET", "every": 4, "count": 2},
                      {"mode": "502", "method": "GET", "every": 5, "count": 2},
                      {"mode": "503", "method": "GET", "every": 6, "count": 2}]),
             ("408+drop", [{"mode": "408", "method": "GET", "every": 4, "count": 2},
                           {"mode": "drop", "method": "GET", "every": 5, "count": 2}]),
             ("truncated+reset", [{"mode": "truncated", "method": "GET", "every": 4, "count": 2},
                                  {"mode": "reset_midbody", "method": "GET", "every": 5, "count": 2}]),
             ("timeout", [{"mode": "timeout", "method": "GET", "every": 6, "count": 1, "delay_ms": 6000}])]
    creates = [("5xx", [{"mode": "500", "method": "POST", "path": creates, "every": 9, "count": 5},
                        {"mode": "502", "method": "POST", "path": creates, "every": 11, "count": 5},
                        {"mode": "503", "method": "POST", "path": creates, "every": 13, "count": 5}]),
               ("408+drop", [{"mode": "408", "method": "POST", "path": creates, "every": 9, "count": 8},
                             {"mode": "drop", "method": "POST", "path": creates, "every": 11, "count": 8}])]
    runs = []
    for i, (get_id, get_rules) in enumerate(reads):
        post_id, post_rules = creates[i] if i < len(creates) else (None, [])
        runs.append((f"{get_id}-get" + (f"+{post_id}-create" if post_id else ""), get_rules + post_rules))
    return runs


TRANSIENT = [f for f, _ in transient_faults("")]


@pytest.mark.parametrize("faults", TRANSIENT)
def test_transient_faults_are_retried_within_the_run(cworld, faults):
    """5xx, 408, transport errors and timeouts scattered over a first sync: each request is
    retried with a backoff of at least a second, and the same run ends with everything in
    place (only the planted bad rows fail), nothing created twice."""
    w = cworld
    rules = dict(transient_faults(w.creates))[faults]
    with w.sandbox.faulted(*rules):
        r = w.run("run", timeout=300)
        faulted = w.sandbox.fired()
    assert {f["fault"] for f in faulted} == {rule["mode"] for rule in rules}, "a fault never fired"
    assert r.rc == w.first_run_rc, f"exit {r.rc}\n{r.err[-3000:]}"
    w.assert_consistent()
    assert_backoff(w, faulted)


def test_429_without_retry_after_backs_off_at_least_a_second(cworld):
    w = cworld
    with w.sandbox.faulted({"mode": "429", "every": 40, "count": 5, "retry_after": None}):
        r = w.run("run", timeout=300)
        faulted = w.sandbox.fired()
    assert r.rc == w.first_run_rc, r.err[-3000:]
    assert len(faulted) == 5
    assert w.mapping_totals(r, "429s") == 5
    # Without Retry-After, the throttled request waits at least a second (docs/design.md: backoff >= 1 s).
    delays = retry_delays(w.sandbox.requests())
    assert len(delays) == 5 and min(delays) >= 0.95, delays
    w.assert_consistent()


# ---------------------------------------------------------------- the night after

def test_second_run_sends_no_write_and_fails_as_the_first(cworld):
    """Every shipped mapping (pulls too): the night after a complete sync nothing is sent,
    and the planted bad rows fail again, the same ones, the same way."""
    w = cworld
    w.use_mappings("*.yaml")
    w.run("run", check_rc=w.first_run_rc)
    before = failures(w)
    assert before, "the demo mirror's bad rows did not fail"
    seq = w.sandbox.last_seq()
    r = w.run("run", check_rc=w.first_run_rc)
    after = w.sandbox.requests(since=seq)
    assert after, "the second run did not look at the platform"
    assert w.writes(after) == [], w.writes(after)[:5]
    for m in w.push_mappings:
        s = r.summary(m)
        assert s["created"] == s["updated"] == s["terminated"] == 0, (m, s)
    assert failures(w) == before
    w.assert_consistent()


# ---------------------------------------------------------------- dry runs

def test_plan_and_dry_run_send_no_write_and_write_no_state(cworld):
    w = cworld
    # Before the first run: no state is made for them.
    plan = w.run("-q", "plan", "--format", "json")
    assert plan.rc == w.first_run_rc, plan.err[-3000:]
    assert json.loads(plan.out)["totals"]["create"] > 0
    dry = w.run("-q", "run", "--dry-run")
    assert dry.rc == w.first_run_rc, dry.err[-3000:]
    assert w.writes(w.sandbox.requests()) == []
    assert w.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hrsync'") == [(0,)]

    # After a complete sync, a leaver and a cancelled absence: shown, not done.
    w.run("run", check_rc=w.first_run_rc)
    exp = w.expected()
    leaver = sorted(exp["employees"] - exp["dismissed"] - w.duplicate_emails())[0]
    w.dismiss(leaver)
    shown = [(w.employees_mapping, leaver, "terminate")]
    if w.absences_mapping:
        cancelled = sorted(exp["absences"])[0]
        w.cancel_absence(cancelled)
        shown.append((w.absences_mapping, cancelled, "delete"))
    state, seq = w.state_dump(), w.sandbox.last_seq()
    table = w.run("-q", "plan", check_rc=w.first_run_rc)
    js = w.run("-q", "plan", "--format", "json", check_rc=w.first_run_rc)
    dry = w.run("-q", "run", "--dry-run", check_rc=w.first_run_rc)
    assert w.writes(w.sandbox.requests(since=seq)) == []
    assert w.state_dump() == state
    assert dry.out == table.out
    for mapping, key, action in shown:
        assert re.search(rf"^{re.escape(mapping)}\s+{re.escape(key)}\s+{action}\b", table.out, re.M), table.out
    totals = json.loads(js.out)["totals"]
    assert (totals["update"], totals["terminate"], totals["delete"]) == (0, 1, len(shown) - 1), totals
    # And the plan is what the run then does.
    r = w.run("run", check_rc=w.first_run_rc)
    assert r.summary(w.employees_mapping)["terminated"] == 1
    if w.absences_mapping:
        assert r.summary(w.absences_mapping)["terminated"] == 1
    w.assert_consistent()


# ---------------------------------------------------------------- secrets

def test_debug_output_urls_and_state_hold_no_secret(cworld, tmp_path):
    """The secret read from a file and the database password from another (both 0600); every
    command at debug level, text and JSON; error paths too (a 500 retried, a 2xx that is not
    JSON, the planted refusals, refused credentials); and what the platform issued (tokens),
    renewed in the middle of a run where it expires. Nothing shows, in the output, in any
    URL sent, or in the state."""
    w = cworld
    secret = w.secret()
    key = next(k for k, (var, _) in w.credentials.items() if var == w.secret_var)
    secret_file = tmp_path / "platform-secret"
    secret_file.write_text(secret + "\n")  # an editor's trailing newline is not part of the secret
    os.chmod(secret_file, 0o600)
    pw = tmp_path / "db-password"
    pw.write_text(DB_PASSWORD)
    os.chmod(pw, 0o600)
    text = open(w.path).read()
    assert f"    {key}: {{ env: {w.secret_var} }}\n" in text
    text = text.replace(f"    {key}: {{ env: {w.secret_var} }}", f"    {key}: {{ file: {secret_file} }}")
    text = text.replace("  state_schema: hrsync", f"  state_schema: hrsync\n  password_file: {pw}")
    open(w.path, "w").write(text)
    env = {k: v for k, v in w.env().items() if k != w.secret_var}

    outputs = []
    # Error paths too: a 500 retried, a 2xx that is not JSON, the planted refusals.
    rules = [{"mode": "500", "method": "GET", "every": 5, "count": 2},
             dict(w.lost_answer_rule("html200"), every=40, count=2)]
    with w.sandbox.faulted(*rules), w.credentials_expiring() as expired:
        r = w.run("-v", "run", env=env)
    assert r.rc == w.first_run_rc, r.err[-3000:]
    assert "debug" in r.err, "not at debug level?"
    expired(r)
    outputs.append(r.out + r.err)
    for args in (["-v", "--log-format", "json", "run"], ["-v", "check"], ["-v", "check", "--online"],
                 ["-v", "plan"], ["-v", "status"], ["-v", "failures"],
                 ["-v", "preview", w.employees_mapping, "--limit", "5"]):
        r = w.run(*args, env=env)
        assert r.rc in (0, 1) or (r.rc == 2 and "not available in this build yet" in r.err), (args, r.rc, r.err[-2000:])
        if args[1] == "--log-format":
            assert r.err.lstrip().startswith("{"), r.err[:300]
        outputs.append(r.out + r.err)
    # Credentials refused: the secret that was refused is not printed either, nothing is written.
    # (A leaver gives the run something to send: a night with nothing to send asks nothing.)
    exp = w.expected()
    w.dismiss(sorted(exp["employees"] - exp["dismissed"] - w.duplicate_emails())[0])
    wrong = "wrong-secret-0f9a8b7c6d5e"
    secret_file.write_text(wrong)
    seq = w.sandbox.last_seq()
    r = w.run("-v", "run", env=env, check_rc=3)
    assert "credentials refused" in r.err and all(s in r.err for s in w.refusal_says), r.err[-2000:]
    # (A static key is refused by the first request, which may be the write itself.)
    assert [x for x in w.writes(w.sandbox.requests(since=seq)) if x["status"] < 400] == []
    outputs.append(r.out + r.err)

    everything = "\n".join(outputs) + "\n" + w.state_dump()
    assert_clean(everything, secret, wrong, DB_PASSWORD)
    reqs = w.sandbox.requests()
    urls = "\n".join(x["path"] + "?" + x["query"] for x in reqs)
    assert_clean(urls, secret, wrong)
    if w.issued_secret:
        leaked = re.findall(w.issued_secret, everything + "\n" + urls)
        assert not leaked, f"issued tokens in the output, a URL or the state: {leaked[:3]}"
