"""Bash completion (issue #16): completion/hrsync completes the commands, each command's
options (from its --help), and the configuration's mapping names (from `check
--list-mappings`), as bash-completion would call it: COMP_WORDS and COMP_CWORD set, _hrsync
run, COMPREPLY read back. The binary under test is the `hrsync` found first on PATH."""
import os
import shlex
import subprocess

import pytest

from harness import HRSYNC, ROOT

SCRIPT = os.path.join(ROOT, "completion", "hrsync")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
DEMO = os.path.join(ROOT, "config", "demo.yaml")


def shipped_names(config):
    """The names of the mappings a configuration lists (its `mappings:` globs, read here
    without hrsync): a file's `name:`, else its name without .yaml."""
    import glob
    import re
    text = open(config).read()
    globs = re.findall(r"[\w./*-]+\.yaml", text[text.index("\nmappings:"):].split("\nguards:")[0])
    names = set()
    for g in globs:
        for f in glob.glob(os.path.join(os.path.dirname(config), g)):
            m = re.search(r"^name:\s*(\S+)", open(f).read(), re.M)
            names.add(m.group(1) if m else os.path.basename(f)[:-5])
    return names


DEMO_MAPPINGS = shipped_names(DEMO)


def complete(line, env=None):
    """The words bash would offer at the end of line (a trailing space: a new word)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    script = f"""
source {BASH_COMPLETION}
source {SCRIPT}
COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})
COMP_CWORD={len(words) - 1}
COMP_LINE={shlex.quote(line)}
COMP_POINT={len(line)}
_hrsync
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    e = dict(os.environ, PATH=os.path.dirname(HRSYNC) + ":" + os.environ["PATH"])
    e.pop("HRSYNC_CONFIG", None)
    e.update(env or {})
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=e, timeout=60)
    assert r.returncode == 0, r.stderr
    return set(filter(None, r.stdout.split("\n")))


@pytest.fixture(autouse=True, scope="module")
def named_hrsync():
    assert os.path.basename(HRSYNC) == "hrsync", "the completion runs `hrsync` from PATH"
    assert os.path.isfile(BASH_COMPLETION), "bash-completion is installed by tests/setup/deps.sh"


def test_commands():
    assert complete("hrsync ") == {"run", "plan", "preview", "check", "daemon", "status", "failures",
                                   "retry", "reconcile", "db", "version", "help"}
    assert complete("hrsync st") == {"status"}
    assert complete("hrsync -q -c x.yaml re") == {"retry", "reconcile"}
    assert complete("hrsync -q -c x.yaml rec") == {"reconcile"}
    assert complete("hrsync reconcile --") == {"--mapping", "--format", "--repair", "--help"}
    assert complete("hrsync help fa") == {"failures"}
    assert complete("hrsync db ") == {"migrate", "grants"}


def test_options_come_from_each_command_s_help():
    assert complete("hrsync run --") == {"--dry-run", "--mapping", "--full", "--force", "--until", "--help"}
    assert complete("hrsync status --") == {"--runs", "--format", "--help"}
    assert complete("hrsync check --") == {"--online", "--list-mappings", "--help"}
    assert complete("hrsync --log") == {"--log-format"}
    assert complete("hrsync --log-format ") == {"auto", "text", "json", "journal"}
    assert complete("hrsync plan --format ") == {"table", "json"}


def test_mapping_names_of_the_configuration():
    assert complete(f"hrsync -c {DEMO} run --mapping ") == DEMO_MAPPINGS
    assert complete(f"hrsync -c {DEMO} plan --mapping personio_abs") == {
        "personio_absences", "personio_absences_inbound", "personio_absence_periods_inbound"}
    assert complete(f"hrsync -c {DEMO} preview as") == {"assets"}
    assert complete(f"hrsync -c {DEMO} failures --format json ") == DEMO_MAPPINGS
    # retry MAPPING KEY...: a mapping first, then keys (not completed).
    assert complete(f"hrsync -c {DEMO} retry ") == DEMO_MAPPINGS
    assert complete(f"hrsync -c {DEMO} retry employees ") == set()
    # $HRSYNC_CONFIG, as hrsync itself reads it.
    assert complete("hrsync run --mapping ", env={"HRSYNC_CONFIG": DEMO}) == DEMO_MAPPINGS


def test_an_unreadable_configuration_offers_nothing():
    assert complete("hrsync -c /nonexistent.yaml run --mapping ") == set()


def test_list_mappings_prints_names_only():
    r = subprocess.run([HRSYNC, "-c", DEMO, "check", "--list-mappings"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == DEMO_MAPPINGS and len(r.stdout.split()) == len(DEMO_MAPPINGS)
    assert r.stderr == ""
    r = subprocess.run([HRSYNC, "-c", "/nonexistent.yaml", "check", "--list-mappings"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and r.stdout == ""
    assert "/nonexistent.yaml" in r.stderr


def test_make_install_puts_the_completion_where_bash_completion_looks(tmp_path):
    build = os.path.dirname(os.path.abspath(HRSYNC))
    for prefix, where in (("/usr", "usr/share/bash-completion/completions/hrsync"),
                          (None, "usr/local/share/bash-completion/completions/hrsync")):
        dest = tmp_path / (prefix or "default").strip("/")
        args = ["make", "-s", "-C", ROOT, "-o", HRSYNC, "install", f"DESTDIR={dest}", f"BUILD={build}"]
        subprocess.run(args + ([f"PREFIX={prefix}"] if prefix else []), check=True, capture_output=True, text=True)
        with open(dest / where) as f, open(SCRIPT) as g:
            assert f.read() == g.read()
        assert oct(os.stat(dest / where).st_mode & 0o777) == "0o644"
