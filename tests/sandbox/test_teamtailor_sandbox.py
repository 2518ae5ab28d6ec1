"""Tests for the Teamtailor sandbox (tests/sandbox/teamtailor.py): what it holds hrsync to.
Stdlib clients only.

Run, from the repository's root: /usr/bin/python3 -m pytest -q tests/sandbox/test_teamtailor_sandbox.py
"""

import json
import os
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import sandbox_proc

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "teamtailor.py")
KEY = "tt-test-key-9"
MEDIA = "application/vnd.api+json"


@pytest.fixture(scope="module")
def server():
    empty = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    empty.write("{}")
    empty.close()
    sp = sandbox_proc.start(SCRIPT, "--api-key", KEY, "--no-retry-after", "--seed", empty.name)
    yield "http://127.0.0.1:%d" % sp.port
    sandbox_proc.stop(sp)
    os.unlink(empty.name)


@pytest.fixture(autouse=True)
def fresh(server):
    admin(server, "POST", "/reset")
    yield


def admin(base, method, path, body=None):
    req = urllib.request.Request(base + "/_sandbox" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


HEADERS = {"Authorization": "Token token=" + KEY, "X-Api-Version": "20240904", "Accept": MEDIA,
           "Content-Type": MEDIA}


def call(base, method, path, body=None, **headers):
    h = dict(HEADERS)
    for k, v in headers.items():
        k = k.replace("_", "-")
        if v is None:
            h.pop(k, None)
        else:
            h[k] = v
    req = urllib.request.Request(base + "/v1" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, dict(r.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, dict(e.headers), json.loads(raw) if raw else None


def doc(type_, attrs, rels=None, id_=None):
    d = {"type": type_, "attributes": attrs}
    if rels:
        d["relationships"] = rels
    if id_:
        d["id"] = id_
    return {"data": d}


# ---------------------------------------------------------------- headers the contract requires

def test_missing_or_unknown_version_is_406_naming_the_current_one(server):
    for v in (None, "20230101"):
        st, _h, body = call(server, "GET", "/departments", X_Api_Version=v)
        assert st == 406
        e = body["errors"][0]
        assert e["status"] == 406 and e["title"] == "Invalid/Missing API Version"   # a number here
        assert e["detail"].endswith("Current version is: 20240904")
    admin(server, "POST", "/config", {"current_version": "20240404"})
    assert call(server, "GET", "/departments", X_Api_Version="1")[2]["errors"][0]["detail"].endswith("20240404")


def test_a_bad_key_is_401_and_a_key_without_admin_scope_403_on_users(server):
    st, _h, body = call(server, "GET", "/departments", Authorization="Token token=nope")
    assert st == 401 and body["errors"][0]["status"] == "401"
    assert call(server, "GET", "/departments", Authorization="Bearer " + KEY)[0] == 401
    admin(server, "POST", "/config", {"scope": "internal"})
    assert call(server, "GET", "/departments")[0] == 200
    for method, path in (("GET", "/users"), ("GET", "/job-applications"), ("POST", "/locations")):
        st, _h, body = call(server, method, path, doc("locations", {"name": "x"}) if method == "POST" else None)
        assert st == 403 and body["errors"][0]["status"] == "403", (method, path)


def test_bodies_must_be_json_api(server):
    st, _h, body = call(server, "POST", "/departments", doc("departments", {"name": "A"}), Content_Type="application/json")
    assert st == 415 and body["errors"][0]["code"] == "415"
    st, _h, body = call(server, "POST", "/departments", {"name": "A"})
    assert st == 400 and body["errors"][0]["code"] == "106"
    st, _h, body = call(server, "POST", "/departments", doc("users", {"name": "A"}))
    assert st == 409 and body["errors"][0]["code"] == "116"
    st, _h, body = call(server, "POST", "/departments", doc("departments", {"name": "A", "colour": "red"}))
    assert st == 400 and body["errors"][0]["detail"] == "colour is not allowed."
    st, h, body = call(server, "POST", "/departments", doc("departments", {"name": "A"}))
    assert st == 201 and h["Content-Type"] == MEDIA and body["data"]["type"] == "departments"
    assert isinstance(body["data"]["id"], str) and body["data"]["attributes"]["name"] == "A"
    # PATCH names the record in the body too
    did = body["data"]["id"]
    assert call(server, "PATCH", "/departments/" + did, doc("departments", {"name": "B"}))[0] == 400
    st, _h, body = call(server, "PATCH", "/departments/" + did, doc("departments", {"name": "B"}, id_=did))
    assert st == 200 and body["data"]["attributes"]["name"] == "B"


def test_validation_errors_in_teamtailors_shape(server):
    st, _h, body = call(server, "POST", "/users", doc("users", {"name": "Ann"}))
    assert st == 422
    assert body == {"errors": [{"title": "can't be blank", "detail": "email - can't be blank", "code": "100",
                                "source": {"pointer": "/data/attributes/email"}, "status": "422"}]}
    call(server, "POST", "/users", doc("users", {"name": "Ann", "email": "ann@example.org"}))
    st, _h, body = call(server, "POST", "/users", doc("users", {"name": "Ann 2", "email": "ANN@example.org"}))
    assert st == 422 and body["errors"][0]["detail"] == "email - has already been taken"
    st, _h, body = call(server, "POST", "/users", doc("users", {"name": "A", "email": "a@example.org", "role": "boss"}))
    assert st == 422 and body["errors"][0]["detail"] == "role - is not included in the list"
    st, _h, body = call(server, "POST", "/users", doc("users", {"name": "A", "email": "a@example.org"}, {
        "department": {"data": {"type": "departments", "id": "99999"}}}))
    assert st == 422 and body["errors"][0]["detail"] == "department - must exist"


def test_merge_folds_a_user_into_the_one_with_that_email(server):
    st, _h, body = call(server, "POST", "/users", doc("users", {"name": "Ann", "email": "ann@example.org"}))
    uid = body["data"]["id"]
    st, _h, body = call(server, "POST", "/users", doc("users", {"name": "Ann B", "email": "ann@example.org",
                                                                "external-id": "E1", "merge": True}))
    assert st == 200 and body["data"]["id"] == uid and body["data"]["attributes"]["external-id"] == "E1"
    st, _h, body = call(server, "GET", "/users?filter%5Bexternal-id%5D=E1")
    assert [u["id"] for u in body["data"]] == [uid]


# ---------------------------------------------------------------- pages

def test_pages_of_at_most_30_linked_by_next(server):
    for i in range(65):
        call(server, "POST", "/users", doc("users", {"name": "U%d" % i, "email": "u%d@example.org" % i}))
    st, _h, body = call(server, "GET", "/users?page%5Bsize%5D=31")
    assert st == 400 and body["errors"][0]["code"] == "118"
    assert body["errors"][0]["detail"] == "size exceeds maximum page size of 30."
    st, _h, body = call(server, "GET", "/users")
    assert len(body["data"]) == 10 and body["meta"] == {"record-count": 65, "page-count": 7}   # default 10
    seen = []
    st, _h, body = call(server, "GET", "/users?page%5Bsize%5D=30")
    while True:
        seen += [u["id"] for u in body["data"]]
        nxt = body["links"].get("next")
        if not nxt:
            break
        assert nxt.startswith(server + "/v1/users?") and "page%5Bsize%5D=30" in nxt
        st, _h, body = call(server, "GET", nxt[len(server) + 3:])
    assert len(seen) == 65 == len(set(seen))
    st, _h, body = call(server, "GET", "/users?filter%5Bemail%5D=u1%40example.org&page%5Bsize%5D=30")
    assert [u["attributes"]["email"] for u in body["data"]] == ["u1@example.org"] and "next" not in body["links"]
    assert call(server, "GET", "/users?filter%5Bnickname%5D=x")[2]["errors"][0]["code"] == "102"


# ---------------------------------------------------------------- rate window

def test_a_fixed_window_with_live_headers_and_429(server):
    admin(server, "POST", "/config", {"rate": "5/2"})
    remaining = []
    for _ in range(5):
        st, h, _b = call(server, "GET", "/departments")
        assert st == 200 and h["X-Rate-Limit-Limit"] == "5"
        remaining.append(int(h["X-Rate-Limit-Remaining"]))
        assert 0 < int(h["X-Rate-Limit-Reset"]) <= 2
    assert remaining == [4, 3, 2, 1, 0]
    st, h, body = call(server, "GET", "/departments")
    assert st == 429 and body == {"errors": [{"status": "429", "title": "Too Many Requests"}]}
    assert "Retry-After" not in h and h["X-Rate-Limit-Remaining"] == "0" and int(h["X-Rate-Limit-Reset"]) >= 1
    time.sleep(2.05)
    st, h, _b = call(server, "GET", "/departments")
    assert st == 200 and h["X-Rate-Limit-Remaining"] == "4"


def test_without_a_limit_the_headers_still_show_50_per_10_s(server):
    st, h, _b = call(server, "GET", "/departments")
    assert st == 200 and h["X-Rate-Limit-Limit"] == "50" and int(h["X-Rate-Limit-Remaining"]) <= 49


# ---------------------------------------------------------------- hires

def test_hired_applications_with_candidate_and_job_included(server):
    st, _h, body = call(server, "POST", "/departments", doc("departments", {"name": "Sales"}))
    dep = body["data"]["id"]
    a = admin(server, "POST", "/hires", {"candidate": {"first-name": "Ann", "last-name": "Lee", "email": "a@x.org"},
                                          "job": {"title": "Seller", "department_id": dep}})["data"]
    admin(server, "POST", "/hires", {"candidate": {"first-name": "Bo", "last-name": "Ek", "email": "b@x.org"},
                                      "job": {"title": "Seller"}, "stage-type": "Inbox"})
    st, _h, body = call(server, "GET", "/job-applications?filter%5Bstage-type%5D=Hired&include=candidate%2Cjob"
                                       "&page%5Bsize%5D=30")
    assert st == 200 and [x["id"] for x in body["data"]] == [a["id"]]
    rel = body["data"][0]["relationships"]
    assert rel["candidate"]["data"] == {"type": "candidates", "id": a["candidate_id"]}
    inc = {(x["type"], x["id"]): x for x in body["included"]}
    assert inc[("candidates", a["candidate_id"])]["attributes"]["first-name"] == "Ann"
    job = inc[("jobs", a["job_id"])]
    assert job["attributes"]["title"] == "Seller" and job["relationships"]["department"]["data"]["id"] == dep
    assert call(server, "GET", "/job-applications?include=owner")[2]["errors"][0]["code"] == "112"
    # updated-at filter, and moving out of Hired
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    st, _h, body = call(server, "GET", "/job-applications?filter%5Bupdated-at%5D%5Bfrom%5D=" + later)
    assert body["data"] == []
    admin(server, "POST", "/job-applications/%s/stage" % a["id"], {"stage-type": "In process"})
    st, _h, body = call(server, "GET", "/job-applications?filter%5Bstage-type%5D=Hired")
    assert body["data"] == []
