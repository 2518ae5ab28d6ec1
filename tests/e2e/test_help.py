"""Command help (issue #16): `hrsync COMMAND --help`, `hrsync COMMAND -h` and `hrsync help
COMMAND` print that command's usage with every option explained, on stdout, exit 0, for every
command; `hrsync --help` is unchanged. Before #16, `hrsync status --help` exited 2 with
"unknown argument '--help'" and `hrsync help status` was an unknown command.

No database and no sandbox: the configuration named does not exist, and help never reads it."""
import re
import subprocess

import pytest

from harness import HRSYNC

NO_CONFIG = "/nonexistent/hrsync-help-test.yaml"
COMMANDS = ["run", "plan", "preview", "check", "daemon", "status", "failures", "retry", "reconcile", "db",
            "version", "help"]
# Options documented before their command parses them (none now): the help test checks they
# are explained; the parser check waits for them.
PENDING = set()
# A value the parser accepts, for options that take one.
VALUES = {"NAME": "employees", "table|json": "json", "N": "3", "KEY": "1000", "TIME": "+1h"}
REFUSED = re.compile(r"unknown argument|unexpected argument|unknown option|usage:")


def hrsync(*args):
    return subprocess.run([HRSYNC, "-c", NO_CONFIG, *args], capture_output=True, text=True, timeout=30)


def options_of(text):
    """The options of a help text's usage line, with their value placeholder if any:
    {"--mapping": "NAME", "--full": None}."""
    usage = text.split("\n\n", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"\[(--[a-z-]+)(?: ([A-Za-z|]+))?\]", usage)}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help_three_ways(command):
    forms = [(command, "--help"), (command, "-h"), ("help", command)]
    outs = []
    for form in forms:
        r = hrsync(*form)
        assert r.returncode == 0, (form, r.returncode, r.stderr)
        assert r.stderr == "", (form, r.stderr)
        assert r.stdout.startswith(f"usage: hrsync {command}"), (form, r.stdout[:200])
        assert "\n  -h, --help " in r.stdout
        assert "\nExit status: " in r.stdout
        assert max(len(line) for line in r.stdout.splitlines()) <= 79, form
        outs.append(r.stdout)
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_the_usage_line_is_explained(command):
    text = hrsync(command, "--help").stdout
    options = options_of(text)
    body = text.split("\nOptions:\n", 1)[1]
    for opt, value in options.items():
        spelling = f"  {opt} {value}" if value else f"  {opt}"
        line = next((ln for ln in body.splitlines() if ln.startswith(spelling)), None)
        assert line is not None, f"{command}: {opt} is not explained:\n{text}"
        # The explanation follows on the same line or the next (long spellings).
        rest = line[len(spelling):].strip() or body.split(line + "\n", 1)[1].splitlines()[0].strip()
        assert len(rest) > 10, (command, opt, rest)
    if command in ("run", "plan", "status", "failures", "preview", "check"):
        assert options or command == "preview", f"{command}: no option found in its usage line"


@pytest.mark.parametrize("command", ["run", "plan", "preview", "check", "status", "failures"])
def test_every_option_explained_is_one_the_command_takes(command):
    """The help describes the parser: each option it explains gets past the command's own
    argument check and fails only on the missing configuration."""
    text = hrsync(command, "--help").stdout
    body = text.split("\nOptions:\n", 1)[1]
    options = re.findall(r"^  (--[a-z-]+)(?: ([A-Za-z|]+))?", body, re.M)
    assert options, text
    for opt, value in options:
        if opt == "--help" or (command, opt) in PENDING:
            continue
        args = [command] + (["employees"] if command == "preview" else []) + [opt]
        if value:
            args.append(VALUES[value])
        r = hrsync(*args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert not REFUSED.search(r.stderr), (args, r.stderr)
        assert NO_CONFIG in r.stderr, (args, r.stderr)


def test_help_lists_the_same_commands_as_the_usage():
    usage = subprocess.run([HRSYNC, "--help"], capture_output=True, text=True, timeout=30)
    listed = {m.group(1) for m in re.finditer(r"^  ([a-z]+)\b", usage.stdout, re.M)}
    explained = set(COMMANDS) - {"help"}
    assert listed == explained, (listed, explained)
    for c in listed:
        assert hrsync("help", c).returncode == 0, c


def test_hrsync_help_alone_is_hrsync_dash_dash_help():
    plain = subprocess.run([HRSYNC, "--help"], capture_output=True, text=True, timeout=30)
    assert plain.returncode == 0 and plain.stdout.startswith("usage: hrsync [-c FILE]")
    r = hrsync("help")
    assert (r.returncode, r.stdout, r.stderr) == (0, plain.stdout, "")


def test_help_for_an_unknown_command_is_a_usage_error():
    for args in (["help", "frobnicate"], ["frobnicate", "--help"]):
        r = hrsync(*args)
        assert r.returncode == 2, args
        assert r.stdout == ""
        assert "unknown command 'frobnicate'" in r.stderr


def test_help_wins_over_the_other_arguments():
    """`--help` anywhere after the command: the help, even with arguments the command would refuse."""
    r = hrsync("failures", "employees", "--format", "xml", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: hrsync failures"), r.stderr
    r = hrsync("retry", "employees", "1000", "-h")
    assert r.returncode == 0 and r.stdout.startswith("usage: hrsync retry"), r.stderr
    r = hrsync("db", "migrate", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: hrsync db"), r.stderr


def test_run_help_explains_until():
    text = hrsync("run", "--help").stdout
    assert "[--until TIME]" in text.split("\n\n", 1)[0]
    assert re.search(r"^  --until TIME +stop sending at TIME", text, re.M), text
