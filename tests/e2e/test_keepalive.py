"""Writes on kept-alive connections (issue 18): POSTs reuse connections like reads, and the
copy libcurl would send again by itself when a reused connection dies under a request never
goes out (daemon/http.c on_prereq)."""
import json
import re

from checks import finish


def test_a_post_on_a_reused_connection_that_dies_is_not_sent_again_by_libcurl(world):
    """The platform carries out a create, then closes the kept-alive connection without an
    answer: libcurl would send the same POST again on a new connection. hrsync stops that
    copy; the create is settled by its connector (found by its natural key), sent once."""
    w = world
    rule = {"mode": "commit_then_drop", "method": "POST", "path": r"^/employees$", "every": 9, "count": 6}
    with w.sandbox.faulted(rule):
        r = w.run("-v", "run")
        fired = w.sandbox.fired()
    assert len(fired) == 6 and all(f["status"] in (200, 201) for f in fired), fired
    # At least one of them came on a reused connection, where libcurl wanted to send it again.
    assert "not sent twice" in r.err, r.err[-3000:]
    creates = [q for q in w.sandbox.requests() if q["method"] == "POST" and re.match(r"^/employees$", q["path"])]
    numbers = [json.loads(q["body"]).get("employee_number") if isinstance(q["body"], str)
               else (q["body"] or {}).get("employee_number") for q in creates]
    assert all(numbers), creates[:3]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    assert twice == [], twice
    finish(w)
    w.assert_consistent()


def test_creates_share_connections(world):
    """A first sync opens a handful of connections, not one per create: the sandbox counts
    the connections it accepted (the /stats calls around the run open one each)."""
    w = world
    w.use_mappings("employees.yaml")
    before = w.sandbox.call("GET", "/stats")
    r = w.run("run")
    after = w.sandbox.call("GET", "/stats")
    assert r.rc == w.first_run_rc, r.err[-3000:]
    posts = after["by_method"].get("POST", 0) - before["by_method"].get("POST", 0)
    opened = after["connections"] - before["connections"] - 1
    assert posts > 200, posts
    # max_in_flight (8) connections, and a few more where the sandbox or libcurl closed one.
    assert 1 <= opened <= 24, (opened, posts)
