"""Tests for the Workelo sandbox (tests/sandbox/workelo.py), which holds hrsync to its wire
contract for Workelo. Stdlib clients only.

Run, from the repository's root: /usr/bin/python3 -m pytest -q tests/sandbox/test_workelo_sandbox.py
"""

import json
import os
import time
import urllib.error
import urllib.request

import pytest

import sandbox_proc

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "workelo.py")
CLIENT_ID = "wk-test-client"
SECRET = "wk-test-secret"


@pytest.fixture(scope="module")
def server():
    sp = sandbox_proc.start(SCRIPT, "--api-key", SECRET, "--client-id", CLIENT_ID)
    yield sp.port
    sandbox_proc.stop(sp)


@pytest.fixture(autouse=True)
def fresh(server):
    admin(server, "POST", "/reset")


def http(port, method, path, body=None, token=None, form=None):
    """-> (status, headers, parsed JSON or None)."""
    headers = {}
    data = None
    if form is not None:
        data, headers["Content-Type"] = form.encode(), "application/x-www-form-urlencoded"
    elif body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, dict(r.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, dict(e.headers), json.loads(raw) if raw else None


def admin(port, method, path, body=None):
    return http(port, method, "/_sandbox" + path, body)[2]


def token(port, secret=SECRET):
    st, _h, b = http(port, "POST", "/oauth/token",
                     form="grant_type=client_credentials&client_id=%s&client_secret=%s" % (CLIENT_ID, secret))
    assert st == 200, b
    return b["access_token"]


def api(port, method, path, body=None):
    return http(port, method, "/v1" + path, body, token=token(port))


def tree(port):
    g = api(port, "POST", "/unit_organizations", {"external_id": "G", "name": "Group", "level_organization_id": 1})
    r = api(port, "POST", "/unit_organizations", {"external_id": "R", "name": "Region", "level_organization_id": 2,
                                                  "parent_id": g[2]["data"]["id"]})
    e = api(port, "POST", "/unit_organizations", {"external_id": "E", "name": "Site", "level_organization_id": 3,
                                                  "parent_id": r[2]["data"]["id"]})
    return g[2]["data"]["id"], r[2]["data"]["id"], e[2]["data"]["id"]


def employee(port, unit, ext="E1", email="a.b@example.com"):
    return api(port, "POST", "/employees", {"first_name": "A", "last_name": "B", "email": email, "external_id": ext,
                                            "unit_organization_id": unit})


def test_token_credentials_and_expiry(server):
    st, _h, b = http(server, "POST", "/oauth/token",
                     form="grant_type=client_credentials&client_id=%s&client_secret=wrong" % CLIENT_ID)
    assert st == 401 and b["error"] == "invalid_client"
    t = token(server)
    assert http(server, "GET", "/v1/user_roles", token=t)[0] == 200
    admin(server, "POST", "/tokens/expire")
    st, _h, b = http(server, "GET", "/v1/user_roles", token=t)
    assert st == 401 and b["error"] == "invalid_token"
    assert http(server, "GET", "/v1/user_roles")[0] == 401


def test_lists_page_by_limit_and_offset(server):
    st, _h, b = api(server, "GET", "/user_roles?limit=2&offset=1")
    assert st == 200 and len(b["data"]) == 2 and b["meta"] == {"total": 6, "limit": 2, "offset": 1}
    st, _h, b = api(server, "GET", "/user_roles?limit=101")
    assert st == 422 and b["errors"][0]["field"] == "limit"


def test_units_parent_first_and_unique_external_id(server):
    st, _h, b = api(server, "POST", "/unit_organizations", {"external_id": "X", "name": "X",
                                                            "level_organization_id": 3, "parent_id": 999})
    assert st == 422 and b["errors"][0] == {"field": "parent_id", "message": "must exist: create the parent unit first"}
    g, r, e = tree(server)
    st, _h, b = api(server, "POST", "/unit_organizations", {"external_id": "G", "name": "again", "level_organization_id": 1})
    assert st == 422 and b["errors"][0]["message"] == "has already been taken"
    st, _h, b = api(server, "POST", "/unit_organizations", {"external_id": "Y", "name": "Y", "level_organization_id": 1,
                                                            "parent_id": e})
    assert st == 422 and "higher level" in b["errors"][0]["message"]
    st, _h, b = api(server, "GET", "/unit_organizations?external_id=R")
    assert [u["id"] for u in b["data"]] == [r]


def test_employees_lowest_level_unique_email_and_external_id(server):
    g, r, e = tree(server)
    st, _h, b = employee(server, r)
    assert st == 422 and b["errors"][0]["field"] == "unit_organization_id" and "lowest level" in b["errors"][0]["message"]
    assert employee(server, e)[0] == 201
    st, _h, b = employee(server, e, ext="E2")
    assert st == 422 and b["errors"] == [{"field": "email", "message": "has already been taken"}]
    st, _h, b = employee(server, e, email="other@example.com")
    assert st == 422 and b["errors"] == [{"field": "external_id", "message": "has already been taken"}]


def test_delete_employee_wipes_their_journeys(server):
    _g, _r, e = tree(server)
    emp = employee(server, e)[2]["data"]["id"]
    st, _h, t = api(server, "POST", "/tracks", {"mobility": "onboarding", "start_date": "2026-06-01",
                                                 "employee_id": emp, "template_ids": [999056]})
    assert st == 201 and t["data"]["status"] == "draft"
    assert api(server, "DELETE", "/employees/%d" % emp)[0] == 204
    store = admin(server, "GET", "/store")
    assert store["tracks"] == [] and store["deleted_employees"][0]["tracks_wiped"] == [t["data"]["id"]]


def test_track_draft_start_update_cancel(server):
    _g, _r, e = tree(server)
    emp = employee(server, e)[2]["data"]["id"]
    st, _h, b = api(server, "POST", "/tracks", {"mobility": "onboarding", "start_date": "2026-06-01",
                                                 "employee_id": emp, "template_ids": [999057]})
    assert st == 422 and "not a onboarding template" in b["errors"][0]["message"]
    st, _h, b = api(server, "POST", "/tracks", {"mobility": "onboarding", "start_date": "2026-06-01",
                                                 "end_date": "2026-09-01", "employee_id": emp,
                                                 "implications": {"manager_id": 1}, "template_ids": [999056]})
    assert st == 422 and b["errors"][0]["field"] == "implications.manager_id"
    t = api(server, "POST", "/tracks", {"mobility": "onboarding", "start_date": "2026-06-01", "employee_id": emp,
                                        "implications": {"manager_id": emp}, "template_ids": [999056]})[2]["data"]
    path = "/tracks/%d" % t["id"]
    assert api(server, "PUT", path + "/start", {})[2]["data"]["status"] == "invitation_sent"
    assert api(server, "PUT", path + "/start", {})[2]["data"]["status"] == "invitation_sent"  # again: unchanged
    st, _h, b = api(server, "PUT", path, {"start_date": "2026-06-15", "apply_on_actions": True, "mobility": "offboarding"})
    assert st == 422 and b["errors"][0]["field"] == "mobility"
    assert api(server, "PUT", path, {"start_date": "2026-06-15", "apply_on_actions": True})[2]["data"]["start_date"] == "2026-06-15"
    assert api(server, "PUT", path + "/cancel")[2]["data"]["status"] == "cancelled"
    st, _h, b = api(server, "PUT", path + "/cancel")
    assert st == 422 and "already cancelled" in b["errors"][0]["message"]
    st, _h, b = api(server, "GET", "/tracks?employee_id=%d&mobility=onboarding" % emp)
    assert [x["id"] for x in b["data"]] == [t["id"]]


def test_identifications_one_per_resource(server):
    _g, _r, e = tree(server)
    emp = employee(server, e)[2]["data"]["id"]
    path = "/employees/%d/identifications" % emp
    i = api(server, "POST", path, {"identification_resource_id": 6, "value": "M-1"})[2]["data"]
    st, _h, b = api(server, "POST", path, {"identification_resource_id": 6, "value": "M-2"})
    assert st == 422 and b["errors"][0]["message"] == "has already been taken"
    st, _h, b = api(server, "POST", path, {"identification_resource_id": 8, "value": "Expert"})
    assert st == 422 and "not one of the options" in b["errors"][0]["message"]
    assert api(server, "PUT", "/identifications/%d" % i["id"], {"value": "M-3"})[2]["data"]["value"] == "M-3"
    assert [x["value"] for x in api(server, "GET", path)[2]["data"]] == ["M-3"]


@pytest.mark.parametrize("style,prefix", [("workelo", "X-RateLimit-"), ("teamtailor", "X-Rate-Limit-")])
def test_hourly_limit_headers_and_429(server, style, prefix):
    admin(server, "POST", "/config", {"hourly": "5/30", "rate_headers": style})
    t = token(server)                                 # counted: 1
    admin(server, "POST", "/consume", {"n": 2})       # another client of the token: 3
    st, h, _b = http(server, "GET", "/v1/user_roles", token=t)
    assert st == 200 and h[prefix + "Limit"] == "5" and h[prefix + "Remaining"] == "1"
    reset = int(h[prefix + "Reset"])
    if style == "workelo":
        assert 0 < reset - time.time() <= 31          # epoch seconds
    else:
        assert 0 < reset <= 30                        # seconds left
    assert http(server, "GET", "/v1/user_roles", token=t)[0] == 200
    st, h, b = http(server, "GET", "/v1/user_roles", token=t)
    assert st == 429 and h[prefix + "Remaining"] == "0" and int(h["Retry-After"]) >= 1 and b["error"] == "rate_limited"
    assert admin(server, "GET", "/store")["throttled"] == 1
