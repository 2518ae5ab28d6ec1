"""A sandbox started for a test module, as its own process: tests/sandbox/test_*_sandbox.py."""

import signal
import subprocess
import sys
import tempfile

import pytest


class SandboxProcess:
    def __init__(self, proc, port, errlog):
        self.proc, self.port, self.errlog = proc, port, errlog


def start(script, *args):
    """The sandbox `script` serving on an ephemeral port with `args` (--quiet always)."""
    errlog = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, script, "--port", "0", "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=errlog, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        errlog.seek(0)
        pytest.fail("sandbox did not start: %r %s" % (line, errlog.read()))
    return SandboxProcess(proc, int(line.split()[2]), errlog)


def stop(sp):
    """SIGTERM: the sandbox must stop at once, with status 0 and no traceback on stderr."""
    sp.proc.send_signal(signal.SIGTERM)
    try:
        rc = sp.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sp.proc.kill()
        pytest.fail("sandbox did not stop on SIGTERM")
    sp.errlog.seek(0)
    err = sp.errlog.read()
    assert rc == 0, err
    assert "Traceback" not in err, err
