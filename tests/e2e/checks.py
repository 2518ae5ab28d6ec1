"""What tests do to a world of any connector and check afterwards: kill its runs, run it to
the end, look at retries, look for secrets. The connector's own checks (what must be on its
platform) are its World's methods (world_<connector>.py)."""
import contextlib
import os
import re
import signal
import socket
import threading
import time

# A header carrying a credential, printed: "X-API-KEY: ..." or "Authorization = ...".
HEADER_VALUE = re.compile(r"(?i)(x-api-key|authorization)\s*[:=]\s*\S")


def wait_for(pred, timeout, what):
    """pred()'s first true value within timeout seconds; else the test fails, naming what it waited for."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def finish(world, timeout=300):
    """Run again to the end: the planted bad rows make it exit first_run_rc."""
    r = world.run("run", timeout=timeout)
    assert r.rc == world.first_run_rc, f"exit {r.rc}\n{r.err[-4000:]}"
    return r


def start_over(world):
    """A first sync again on the same mirror: the sandbox back to its seed, no state."""
    world.sandbox.reset()
    world.sql("DROP SCHEMA IF EXISTS hrsync CASCADE")


@contextlib.contextmanager
def env_added(world, **extra):
    """hrsync runs with these environment variables too, for the block."""
    base = world.env
    world.env = lambda: dict(base(), **extra)
    try:
        yield
    finally:
        world.env = base


def kill_before_commit(world, n):
    """One run SIGKILLed by hrsync's own hook after the platform's nth answer, before its commit."""
    with env_added(world, HRSYNC_TEST_KILL_BEFORE_COMMIT=str(n)):
        r = world.run("run", timeout=300)
    assert r.rc == -signal.SIGKILL, f"the run was not killed at commit {n} (exit {r.rc}):\n{r.err[-3000:]}"
    return r


def kill_when(world, reached, what, deadline_s=120, poll=0.003):
    """Start a run and SIGKILL it once reached(start_seq) is true; it must not end first."""
    start = world.sandbox.last_seq()
    log = os.path.join(world.dir, f"killed-{start}.log")
    p = world.start("run", log=log)
    deadline = time.time() + deadline_s
    killed = False
    try:
        while p.poll() is None and time.time() < deadline:
            if reached(start):
                break
            time.sleep(poll)
        killed = p.poll() is None
        if killed:
            os.kill(p.pid, signal.SIGKILL)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert killed, f"the run ended (exit {p.returncode}) before {what}:\n{open(log).read()[-3000:]}"


def kill_at_request(world, n_requests, deadline_s=120):
    """Start a run and SIGKILL it once the sandbox has seen n_requests more API requests."""
    kill_when(world, lambda start: world.sandbox.last_seq() - start >= n_requests, f"{n_requests} requests",
              deadline_s)


def kill_at_create(world, n_creates, deadline_s=120):
    """Start a run and SIGKILL it once the sandbox has seen n_creates more creates
    (requests on world.creates)."""
    rx = re.compile(world.creates)
    seen = {"seq": None, "n": 0}

    def reached(start):
        since = start if seen["seq"] is None else seen["seq"]
        new = world.sandbox.requests(since=since)
        if new:
            seen["seq"] = new[-1]["seq"]
            seen["n"] += sum(1 for x in new if x["method"] == "POST" and rx.search(x["path"]))
        return seen["n"] >= n_creates
    kill_when(world, reached, f"{n_creates} creates", deadline_s, poll=0.01)


def kill(world, how, n):
    """One step of a World.kill_plans plan."""
    {"requests": kill_at_request, "creates": kill_at_create, "commit": kill_before_commit}[how](world, n)


def retry_delays(reqs):
    """For each request answered 429: seconds until the same request (method, path, query,
    body) was sent again. docs/design.md: the throttled request waits Retry-After, else >= 1 s."""
    out = []
    for i, r in enumerate(reqs):
        if r["status"] != 429:
            continue
        again = next((x for x in reqs[i + 1:] if (x["method"], x["path"], x.get("query"), x.get("body")) ==
                      (r["method"], r["path"], r.get("query"), r.get("body"))), None)
        if again:
            out.append(again["ts"] - r["ts"])
    return out


def assert_backoff(world, faulted):
    """Each faulted idempotent request went out again, not before 1 s (docs/design.md: backoff >= 1 s).
    A connection closed before any byte of answer ('drop') on a reused keep-alive connection
    is sent again at once by libcurl itself, as for any stale connection; a 'timeout' is
    logged by the sandbox when it finally answers, after the client gave up and tried
    again: for those two only that it went out again is checked."""
    reqs = world.sandbox.requests()
    for f in faulted:
        if f["method"] == "POST":
            continue
        again = [x for x in reqs if x["seq"] != f["seq"] and x["method"] == f["method"] and x["path"] == f["path"]
                 and x["query"] == f["query"] and (x["seq"] > f["seq"] or f["fault"] == "timeout")]
        assert again, f"{f['method']} {f['path']}?{f['query']} ({f['fault']}) was never sent again"
        if getattr(world, "shared_reads", False):
            # Records of this connector search the same listing (World.shared_reads): an identical
            # request soon after may be another record's search, not this one's retry.
            again = [x for x in again if x["ts"] - f["ts"] >= 0.95] or again
        gap = again[0]["ts"] - f["ts"]
        assert f["fault"] in ("drop", "timeout") or gap >= 0.95, f"{f['method']} {f['path']} retried after {gap:.2f} s"


def assert_clean(text, *secrets):
    """None of these secrets, and no credential header's value, in the text."""
    for s in secrets:
        assert s not in text, f"secret {s[:6]}... found:\n" + "\n".join(
            l for l in text.splitlines() if s in l)[:2000]
    bad = [l for l in text.splitlines() if HEADER_VALUE.search(l)]
    assert not bad, bad[:5]


class LocalServer:
    """A server on 127.0.0.1 (an ephemeral port) for what no sandbox does: a thread accepts
    connections until close(); handle(conn) serves one and may raise OSError; the connection
    is closed after it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def handle(self, conn):
        raise NotImplementedError

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                self.handle(conn)
            except OSError:  # ssl.SSLError is one
                pass
            finally:
                conn.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()
