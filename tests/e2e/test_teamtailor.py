"""Teamtailor end to end: the organisation pushed through JSON:API, users found by
external-id and by e-mail, terminated as no_access, hires pulled back into the ERP, and
the version, key and scope refusals, against tests/sandbox/teamtailor.py."""
import pytest

from conftest import make_world
from world_teamtailor import TeamtailorWorld


@pytest.fixture(scope="session")
def tt_sandbox(sandboxes):
    return sandboxes(TeamtailorWorld)


@pytest.fixture
def tworld(cluster, template, tt_sandbox, tmp_path):
    yield from make_world(TeamtailorWorld, cluster, template, tt_sandbox, tmp_path)


def writes(reqs):
    return [r for r in reqs if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]


def test_first_push_then_no_change_run_sends_no_write(tworld):
    w = tworld
    r = w.run("run", check_rc=None)
    assert r.rc in (0, 1), r.err[-3000:]
    w.assert_end_state()
    reqs = w.sandbox.requests()
    # JSON:API bodies: type, attributes, relationships wrapped by the connector
    users = [q for q in reqs if q["method"] == "POST" and q["path"] == "/users"]
    assert users, "no user created"
    b = users[0]["body"]["data"]
    assert b["type"] == "users" and b["attributes"]["merge"] is True and "external-id" in b["attributes"]
    assert "relationships" not in b["attributes"]
    assert b["relationships"]["department"]["data"]["type"] == "departments"
    assert all("page%5Bsize%5D=30" in q["query"] for q in reqs if q["method"] == "GET" and "page" in q["query"])
    seq = w.sandbox.last_seq()
    r2 = w.run("run", check_rc=None)
    assert writes(w.sandbox.requests(since=seq)) == []
    assert r2.summary("users")["created"] == 0

