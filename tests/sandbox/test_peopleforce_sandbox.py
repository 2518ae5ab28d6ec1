"""Tests for the PeopleForce sandbox (tests/sandbox/peopleforce.py). Stdlib clients only.

Run, from the repository's root: /usr/bin/python3 -m pytest -q tests/sandbox
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

import sandbox_proc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "peopleforce.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "peopleforce", "seed.json")
KEY = "test-key-123"
PREFIX = "/api/public/v3"


# ---------------------------------------------------------------------------------------
# fixtures and helpers

def start_sandbox():
    return sandbox_proc.start(SCRIPT, "--api-key", KEY, "--seed", SEED)


@pytest.fixture(scope="module")
def server():
    sp = start_sandbox()
    yield sp.port
    sandbox_proc.stop(sp)


@pytest.fixture(autouse=True)
def fresh(server):
    admin(server, "POST", "/reset")
    yield


def _request(port, method, path, body=None, key=KEY, headers=None, raw=None, timeout=5):
    """urllib request -> (status, headers, parsed JSON or bytes)."""
    url = "http://127.0.0.1:%d%s" % (port, path)
    hdrs = {}
    if key is not None:
        hdrs["X-API-KEY"] = key
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
        status, rh, payload = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, rh, payload = e.code, e.headers, e.read()
    ctype = rh.get("Content-Type") or ""
    if payload and "json" in ctype:
        return status, rh, json.loads(payload.decode("utf-8"))
    return status, rh, payload


def api(port, method, path, body=None, **kw):
    return _request(port, method, PREFIX + path, body, **kw)


def admin(port, method, path, body=None):
    st, _h, data = _request(port, method, "/_sandbox" + path, body, key=None)
    assert st < 300, (st, data)
    return data


def new_employee(port, **fields):
    body = {"first_name": "Anna", "last_name": "Karenina"}
    body.update(fields)
    st, _h, data = api(port, "POST", "/employees", body)
    assert st == 200, data
    return data["data"]


def raw_conn(port, timeout=5):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def keepalive_get(conn, path):
    conn.request("GET", PREFIX + path, headers={"X-API-KEY": KEY})
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()


def errors_of(data):
    assert data["success"] is False
    return {(e.get("field"), e["message"]) for e in data["errors"]}


# ---------------------------------------------------------------------------------------
# auth, basics

def test_auth_401(server):
    for key in (None, "wrong"):
        st, _h, data = api(server, "GET", "/employees", key=key)
        assert st == 401
        assert data == {"success": False, "errors": [{"message": "Unauthorized"}]}
    assert admin(server, "GET", "/health")["ok"] is True
    st, _h, data = api(server, "GET", "/no_such_thing")
    assert st == 404 and data == {"success": False, "errors": [{"message": "Not found"}]}


def test_bad_json_body_is_400(server):
    st, _h, data = api(server, "POST", "/employees", raw=b'{"first_name": ',
                       headers={"Content-Type": "application/json"})
    assert st == 400 and data["success"] is False
    st, _h, data = api(server, "POST", "/employees", raw=b'[1,2]',
                       headers={"Content-Type": "application/json"})
    assert st == 400


def test_create_list_filter_employees(server):
    a = new_employee(server, employee_number="E-1", email="Anna@Example.com", gender="female",
                     hired_on="2020-01-15", date_of_birth="1990-02-28", middle_name="A.")
    b = new_employee(server, first_name="Иван", last_name="Петров", employee_number="E-2",
                     email="ivan@example.ru", gender=None)
    c = new_employee(server, first_name="Jean", last_name="Dupont", employee_number="E-3")
    assert (a["id"], b["id"], c["id"]) == (1000, 1001, 1002)
    assert a["full_name"] == "Anna Karenina" and a["active"] is True
    assert a["termination"] is None and a["position"] is None and a["custom_fields"] == {}
    assert a["created_at"].endswith("Z") and len(a["created_at"]) == 20
    assert b["first_name"] == "Иван"

    st, _h, data = api(server, "GET", "/employees")
    assert st == 200 and [e["id"] for e in data["data"]] == [1000, 1001, 1002]

    st, _h, data = api(server, "GET", "/employees?employee_numbers[]=E-2&employee_numbers[]=E-3")
    assert [e["employee_number"] for e in data["data"]] == ["E-2", "E-3"]
    assert data["metadata"] == {"page": 1, "pages": 1, "count": 2, "items": 2}
    st, _h, data = api(server, "GET", "/employees?employee_numbers%5B%5D=E-1")
    assert [e["id"] for e in data["data"]] == [1000]
    st, _h, data = api(server, "GET", "/employees?employee_numbers[]=nope")
    assert data["data"] == [] and data["metadata"]["count"] == 0
    st, _h, data = api(server, "GET", "/employees?emails[]=anna@example.com")
    assert [e["id"] for e in data["data"]] == [1000]
    st, _h, data = api(server, "GET", "/employees?ids[]=1001&ids[]=1002")
    assert [e["id"] for e in data["data"]] == [1001, 1002]

    st, _h, data = api(server, "GET", "/employees/1001")
    assert st == 200 and data["data"]["last_name"] == "Петров"
    st, _h, data = api(server, "GET", "/employees/999999")
    assert st == 404 and data["errors"] == [{"message": "Not found"}]

    st, _h, data = api(server, "PUT", "/employees/1002", {"middle_name": "Paul", "hired_on": "2024-03-01"})
    assert st == 200 and data["data"]["middle_name"] == "Paul" and data["data"]["first_name"] == "Jean"
    st, _h, data = api(server, "PUT", "/employees/1002", {"first_name": ""})
    assert st == 422 and errors_of(data) == {("first_name", "First name can't be blank")}
    st, _h, data = api(server, "PUT", "/employees/424242", {"first_name": "X"})
    assert st == 404


def test_custom_fields(server):
    e = new_employee(server, tab_number="00042", remote=True, fte=0.5, nested={"x": 1})
    assert e["custom_fields"] == {"tab_number": "00042", "remote": True, "fte": 0.5}
    st, _h, data = api(server, "PUT", "/employees/%d" % e["id"], {"fte": 1, "remote": None, "full_name": "ignored"})
    assert data["data"]["custom_fields"] == {"tab_number": "00042", "fte": 1}
    assert data["data"]["full_name"] == "Anna Karenina"


def test_pagination_and_metadata_styles(server):
    conn = raw_conn(server)
    for i in range(120):
        conn.request("POST", PREFIX + "/employees",
                     body=json.dumps({"first_name": "P%d" % i, "last_name": "L"}),
                     headers={"X-API-KEY": KEY, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 200
    st, _h, d1 = api(server, "GET", "/employees?per_page=200&limit=200")
    assert len(d1["data"]) == 50
    assert d1["metadata"] == {"page": 1, "pages": 3, "count": 120, "items": 50}
    st, _h, d3 = api(server, "GET", "/employees?page=3")
    assert len(d3["data"]) == 20 and d3["data"][-1]["first_name"] == "P119"
    assert d3["metadata"] == {"page": 3, "pages": 3, "count": 120, "items": 20}
    st, _h, d4 = api(server, "GET", "/employees?page=4")
    assert st == 200 and d4["data"] == [] and d4["metadata"]["items"] == 0

    # reference lists: nested by default, page size 50
    st, _h, lt = api(server, "GET", "/leave_types")
    assert lt["metadata"] == {"pagination": {"page": 1, "pages": 1, "count": 10, "items": 10}}
    assert lt["data"][0] == {"id": 101, "name": "Ежегодный отпуск", "unit": "days"}
    for name in ("departments", "locations", "positions", "divisions", "job_levels",
                 "asset_categories", "termination_types", "termination_reasons"):
        st, _h, d = api(server, "GET", "/" + name)
        assert st == 200 and d["data"] and "pagination" in d["metadata"], name

    # leave requests: page size 100, nested by default
    conn = raw_conn(server)
    for i in range(105):
        day = "2025-%02d-%02d" % (1 + i // 28, 1 + i % 28)
        conn.request("POST", PREFIX + "/leave_requests",
                     body=json.dumps({"employee_id": 1000, "leave_type_id": 101,
                                      "starts_on": day, "ends_on": day}),
                     headers={"X-API-KEY": KEY, "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 201
    st, _h, l1 = api(server, "GET", "/leave_requests")
    assert len(l1["data"]) == 100
    assert l1["metadata"] == {"pagination": {"page": 1, "pages": 2, "count": 105, "items": 100}}
    st, _h, l2 = api(server, "GET", "/leave_requests?page=2&per_page=500")
    assert len(l2["data"]) == 5

    admin(server, "POST", "/config", {"metadata_style": "nested"})
    st, _h, d = api(server, "GET", "/employees")
    assert d["metadata"]["pagination"]["count"] == 120
    admin(server, "POST", "/config", {"metadata_style": "flat"})
    st, _h, d = api(server, "GET", "/leave_requests")
    assert d["metadata"]["count"] == 105 and "pagination" not in d["metadata"]
    st, _h, d = api(server, "GET", "/assets")
    assert d["metadata"] == {"page": 1, "pages": 1, "count": 0, "items": 0}


# ---------------------------------------------------------------------------------------
# validation

def test_validation_422(server):
    st, _h, data = api(server, "POST", "/employees", {"middle_name": "x"})
    assert st == 422
    assert errors_of(data) == {("first_name", "First name can't be blank"),
                               ("last_name", "Last name can't be blank")}
    st, _h, data = api(server, "POST", "/employees",
                       {"first_name": "A", "last_name": "B", "gender": "other", "hired_on": "2023-02-30",
                        "date_of_birth": "1990-1-5", "email": "not-an-email", "first_name_x": 1})
    assert st == 422
    assert errors_of(data) == {("gender", "Gender is not included in the list"),
                               ("hired_on", "Hired on is not a valid date"),
                               ("date_of_birth", "Date of birth is not a valid date"),
                               ("email", "Email is invalid")}
    st, _h, data = api(server, "POST", "/employees", {"first_name": 5, "last_name": "B"})
    assert st == 422 and errors_of(data) == {("first_name", "First name must be a string")}
    # nothing was created by the failures
    assert api(server, "GET", "/employees?status=all")[2]["metadata"]["count"] == 0

    e = new_employee(server)
    st, _h, data = api(server, "POST", "/leave_requests",
                       {"employee_id": e["id"], "leave_type_id": 999, "starts_on": "2025-05-01",
                        "ends_on": "2025-05-02"})
    assert st == 422 and errors_of(data) == {("leave_type_id", "Leave type must exist")}
    st, _h, data = api(server, "POST", "/leave_requests",
                       {"employee_id": 1, "leave_type_id": "101", "starts_on": "2025-05-03",
                        "ends_on": "2025-05-02"})
    assert st == 422
    assert errors_of(data) == {("employee_id", "Employee must exist"),
                               ("leave_type_id", "Leave type must be an integer"),
                               ("ends_on", "Ends on must be after or equal to starts on")}
    st, _h, data = api(server, "POST", "/leave_requests", {})
    assert {f for f, _m in errors_of(data)} == {"employee_id", "leave_type_id", "starts_on", "ends_on"}
    st, _h, data = api(server, "POST", "/employees/%d/terminate" % e["id"],
                       {"effective_from": "2025-13-01", "termination_type_id": 99, "termination_reason_id": 11})
    assert st == 422
    assert errors_of(data) == {("effective_from", "Effective from is not a valid date"),
                               ("termination_type_id", "Termination type must exist"),
                               ("eligible_for_rehire", "Eligible for rehire can't be blank")}
    st, _h, data = api(server, "POST", "/employees/%d/terminate" % e["id"],
                       {"effective_from": "2025-12-01", "termination_type_id": 1, "termination_reason_id": 11,
                        "eligible_for_rehire": "yes"})
    assert st == 422 and errors_of(data) == {("eligible_for_rehire", "Eligible for rehire must be true or false")}


def test_uniqueness(server):
    a = new_employee(server, email="dup@example.com", employee_number="N1")
    b = new_employee(server, email="other@example.com", employee_number="N2")
    st, _h, data = api(server, "POST", "/employees",
                       {"first_name": "X", "last_name": "Y", "email": "DUP@example.COM", "employee_number": "N1"})
    assert st == 422
    assert errors_of(data) == {("email", "Email has already been taken"),
                               ("employee_number", "Employee number has already been taken")}
    # updating itself with its own values is fine; taking another's is not
    st, _h, _d = api(server, "PUT", "/employees/%d" % a["id"], {"email": "dup@example.com", "employee_number": "N1"})
    assert st == 200
    st, _h, data = api(server, "PUT", "/employees/%d" % b["id"], {"email": "Dup@Example.com"})
    assert st == 422 and errors_of(data) == {("email", "Email has already been taken")}
    # terminated employees still hold their email
    api(server, "POST", "/employees/%d/terminate" % a["id"],
        {"effective_from": "2025-01-31", "termination_type_id": 1, "termination_reason_id": 11,
         "eligible_for_rehire": False})
    st, _h, data = api(server, "POST", "/employees", {"first_name": "X", "last_name": "Y", "email": "dup@example.com"})
    assert st == 422
    # a changed e-mail or number frees the old one and takes the new one
    st, _h, _d = api(server, "PUT", "/employees/%d" % b["id"], {"email": "b2@example.com", "employee_number": "N3"})
    assert st == 200
    st, _h, _d = api(server, "POST", "/employees", {"first_name": "X", "last_name": "Y",
                                                    "email": "other@example.com", "employee_number": "N2"})
    assert st == 200
    st, _h, data = api(server, "POST", "/employees", {"first_name": "X", "last_name": "Y",
                                                      "email": "B2@example.com", "employee_number": "N3"})
    assert st == 422 and errors_of(data) == {("email", "Email has already been taken"),
                                             ("employee_number", "Employee number has already been taken")}


# ---------------------------------------------------------------------------------------
# terminate / activate / positions

def test_terminate_activate_and_status_filter(server):
    e = new_employee(server, employee_number="T1")
    body = {"effective_from": "2025-06-30", "termination_type_id": 1, "termination_reason_id": 14,
            "eligible_for_rehire": True, "comment": "départ"}
    st, _h, data = api(server, "POST", "/employees/%d/terminate" % e["id"], body)
    assert st == 200
    t = data["data"]
    assert t["active"] is False and t["terminated_on"] == "2025-06-30"
    assert t["termination"] == {"effective_from": "2025-06-30", "termination_type_id": 1,
                                "termination_reason_id": 14, "eligible_for_rehire": True, "comment": "départ"}
    st, _h, data = api(server, "POST", "/employees/%d/terminate" % e["id"], body)
    assert st == 422 and data == {"success": False, "errors": [{"message": "Employee is already terminated"}]}

    assert api(server, "GET", "/employees")[2]["data"] == []
    assert api(server, "GET", "/employees?employee_numbers[]=T1")[2]["data"] == []
    assert len(api(server, "GET", "/employees?employee_numbers[]=T1&status=all")[2]["data"]) == 1
    assert len(api(server, "GET", "/employees?status=terminated")[2]["data"]) == 1
    st, _h, data = api(server, "GET", "/employees?status=bogus")
    assert st == 422

    st, _h, data = api(server, "POST", "/employees/%d/activate" % e["id"])
    assert st == 200 and data["data"]["active"] is True and data["data"]["termination"] is None
    assert data["data"]["terminated_on"] is None
    assert len(api(server, "GET", "/employees?status=employed")[2]["data"]) == 1
    st, _h, data = api(server, "POST", "/employees/777/terminate", body)
    assert st == 404


def test_positions(server):
    boss = new_employee(server, first_name="Boss")
    e = new_employee(server)
    path = "/employees/%d/positions" % e["id"]
    st, _h, data = api(server, "POST", path, {"effective_from": "2024-01-01", "position_id": 401,
                                              "department_id": 201, "location_id": 301, "division_id": 501,
                                              "job_level_id": 601, "reporting_to_id": boss["id"]})
    assert st == 201
    p1 = data["data"]
    assert p1["id"] == 3000 and p1["position_id"] == 401 and p1["reporting_to_id"] == boss["id"]
    st, _h, data = api(server, "POST", path, {"effective_from": "2025-01-01", "position_id": 402})
    p2 = data["data"]
    st, _h, data = api(server, "GET", "/employees/%d" % e["id"])
    assert data["data"]["position"]["id"] == p2["id"]
    st, _h, data = api(server, "POST", path, {"effective_from": "2025-01-01", "position_id": 999,
                                              "reporting_to_id": 5})
    assert st == 422 and errors_of(data) == {("position_id", "Position must exist"),
                                             ("reporting_to_id", "Reporting to must exist")}
    st, _h, data = api(server, "POST", path, {"position_id": 401})
    assert st == 422 and errors_of(data) == {("effective_from", "Effective from can't be blank")}
    st, _h, data = api(server, "PUT", "%s/%d" % (path, p1["id"]), {"effective_from": "2026-01-01"})
    assert st == 200 and data["data"]["effective_from"] == "2026-01-01" and data["data"]["position_id"] == 401
    st, _h, data = api(server, "GET", "/employees/%d" % e["id"])
    assert data["data"]["position"]["id"] == p1["id"]
    st, _h, data = api(server, "GET", path)
    assert [p["id"] for p in data["data"]] == [p2["id"], p1["id"]] and "metadata" not in data
    st, _h, _d = api(server, "DELETE", "%s/%d" % (path, p1["id"]))
    assert st == 204
    st, _h, data = api(server, "GET", "/employees/%d" % e["id"])
    assert data["data"]["position"]["id"] == p2["id"]         # the one left is current again
    st, _h, _d = api(server, "DELETE", "%s/%d" % (path, p1["id"]))
    assert st == 404
    st, _h, _d = api(server, "DELETE", "/employees/%d/positions/%d" % (boss["id"], p2["id"]))
    assert st == 404


# ---------------------------------------------------------------------------------------
# leave requests

def test_leave_requests(server):
    e = new_employee(server)
    other = new_employee(server, first_name="Other")
    st, _h, lr = api(server, "POST", "/leave_requests",
                     {"employee_id": e["id"], "leave_type_id": 111, "starts_on": "2025-07-14",
                      "ends_on": "2025-07-18", "description": "Vacances d'été",
                      "leave_request_entries": [{"occurs_on": "2025-07-14", "amount": 8}]})
    assert st == 201
    assert "data" not in lr                      # unwrapped, as the vendor spec documents
    assert lr["id"] == 5000 and lr["state"] == "pending" and lr["amount"] == 5
    assert lr["leave_type"] == "Congés payés" and lr["tracking_time_in"] == "days"
    assert lr["starts_on"] == "2025-07-14" and lr["ends_on"] == "2025-07-18"
    st, _h, lr2 = api(server, "POST", "/leave_requests",
                      {"employee_id": other["id"], "leave_type_id": 103, "starts_on": "2025-03-01",
                       "ends_on": "2025-03-01", "skip_approval": True})
    assert st == 201 and lr2["state"] == "approved" and lr2["amount"] == 1

    st, _h, data = api(server, "GET", "/leave_requests/%d" % lr["id"])
    assert st == 200 and data["data"]["description"] == "Vacances d'été"
    st, _h, data = api(server, "GET", "/leave_requests")
    assert [x["id"] for x in data["data"]] == [lr2["id"], lr["id"]]          # sorted by starts_on
    st, _h, data = api(server, "GET", "/leave_requests?states[]=approved")
    assert [x["id"] for x in data["data"]] == [lr2["id"]]
    st, _h, data = api(server, "GET", "/leave_requests?employee_ids[]=%d" % e["id"])
    assert [x["id"] for x in data["data"]] == [lr["id"]]
    st, _h, data = api(server, "GET", "/leave_requests?starts_on=2025-07-01&ends_on=2025-07-31")
    assert [x["id"] for x in data["data"]] == [lr["id"]]
    st, _h, data = api(server, "GET", "/leave_requests?starts_on=07/01/2025")
    assert st == 422
    st, _h, data = api(server, "GET", "/leave_requests?updated_at[gt]=2025-01-01")
    assert st == 422

    # pull-side: state changed in the "web UI"
    t = int(time.time()) - 1
    st, _h, data = api(server, "GET", "/leave_requests?updated_at[gt]=%d" % (t + 3600))
    assert data["data"] == []
    admin(server, "POST", "/leave_requests/%d/state" % lr["id"], {"state": "approved"})
    st, _h, data = api(server, "GET", "/leave_requests?updated_at[gt]=%d&states[]=approved" % t)
    assert {x["id"] for x in data["data"]} == {lr["id"], lr2["id"]}
    st, _h, data = api(server, "GET", "/leave_requests?created_at[lt]=%d" % t)
    assert data["data"] == []
    created = admin(server, "POST", "/leave_requests",
                    {"employee_id": e["id"], "leave_type_id": 101, "starts_on": "2025-08-01",
                     "ends_on": "2025-08-02", "state": "approved"})["data"]
    assert created["state"] == "approved"
    st, _h, data = api(server, "GET", "/leave_requests/pending")
    assert data["data"] == []

    st, _h, body = api(server, "DELETE", "/leave_requests/%d" % lr["id"])
    assert st == 204 and body == b""
    st, _h, data = api(server, "DELETE", "/leave_requests/%d" % lr["id"])
    assert st == 404 and data["errors"] == [{"message": "Not found"}]
    st, _h, data = api(server, "GET", "/leave_requests/%d" % lr["id"])
    assert st == 404


# ---------------------------------------------------------------------------------------
# assets

def test_assets_and_assignments(server):
    e = new_employee(server)
    f = new_employee(server, first_name="Second")
    st, _h, a = api(server, "POST", "/assets", {"name": "ThinkPad T14", "code": "NB-001",
                                                "asset_category_id": 701, "location_id": 301,
                                                "serial_number": "SN123"})
    assert st == 201 and "data" not in a
    assert a["id"] == "8000" and isinstance(a["id"], str) and a["asset_assignments"] == []
    st, _h, data = api(server, "POST", "/assets", {"name": "Other", "code": "NB-001",
                                                   "asset_category_id": 799, "location_id": 301})
    assert st == 422 and errors_of(data) == {("code", "Code has already been taken"),
                                             ("asset_category_id", "Asset category must exist")}
    st, _h, data = api(server, "POST", "/assets", {"name": "Other"})
    assert {x for x, _m in errors_of(data)} == {"code", "asset_category_id", "location_id"}
    st, _h, data = api(server, "GET", "/assets/8000")
    assert st == 200 and data["data"]["code"] == "NB-001"
    st, _h, data = api(server, "PUT", "/assets/8000", {"description": "16 GB"})
    assert st == 200 and data["data"]["description"] == "16 GB" and data["data"]["name"] == "ThinkPad T14"

    st, _h, data = api(server, "POST", "/asset_assignments",
                       {"asset_id": "8000", "issued_on": "2025-01-10", "user_id": e["id"]})
    assert st == 200
    asg = data["data"]
    assert asg["id"] == "9000" and asg["asset_id"] == 8000 and asg["returned_on"] is None
    st, _h, data = api(server, "POST", "/asset_assignments",
                       {"asset_id": 8000, "issued_on": "2025-02-10", "user_id": f["id"]})
    assert st == 422 and errors_of(data) == {("asset_id", "Asset is already assigned")}
    st, _h, data = api(server, "POST", "/asset_assignments",
                       {"asset_id": 8999, "issued_on": "2025-02-31", "user_id": 1})
    assert errors_of(data) == {("asset_id", "Asset must exist"), ("issued_on", "Issued on is not a valid date"),
                               ("user_id", "User must exist")}
    st, _h, data = api(server, "GET", "/employees/%d/assets" % e["id"])
    assert [x["id"] for x in data["data"]] == ["8000"]
    assert data["data"][0]["asset_assignments"][0]["id"] == "9000"

    st, _h, data = api(server, "PUT", "/asset_assignments/9000", {"returned_on": "2025-01-01"})
    assert st == 422 and errors_of(data) == {("returned_on", "Returned on must be after or equal to issued on")}
    st, _h, data = api(server, "PUT", "/asset_assignments/9000", {"returned_on": "2025-03-01"})
    assert st == 200 and data["data"]["returned_on"] == "2025-03-01"
    assert api(server, "GET", "/employees/%d/assets" % e["id"])[2]["data"] == []
    st, _h, data = api(server, "POST", "/asset_assignments",
                       {"asset_id": 8000, "issued_on": "2025-03-02", "user_id": f["id"]})
    assert st == 200 and data["data"]["id"] == "9001"
    st, _h, data = api(server, "PUT", "/asset_assignments/9000", {"returned_on": None})
    assert st == 422 and errors_of(data) == {("asset_id", "Asset is already assigned")}
    st, _h, _d = api(server, "DELETE", "/asset_assignments/9001")
    assert st == 204
    st, _h, _d = api(server, "DELETE", "/asset_assignments/9001")
    assert st == 404
    st, _h, _d = api(server, "DELETE", "/assets/8000")
    assert st == 204
    st, _h, _d = api(server, "GET", "/assets/8000")
    assert st == 404


# ---------------------------------------------------------------------------------------
# rate limiting, latency

def test_rate_limit(server):
    admin(server, "POST", "/config", {"rate": "5/1"})
    conn = raw_conn(server)
    statuses, retry = [], []
    for _ in range(10):
        st, hdrs, _b = keepalive_get(conn, "/leave_types")
        statuses.append(st)
        retry.append(dict(hdrs).get("Retry-After"))
    assert statuses[:5] == [200] * 5 and statuses.count(429) >= 4
    for st, ra in zip(statuses, retry):
        if st == 429:
            assert ra is not None and int(ra) >= 1
    # admin calls are never limited
    assert admin(server, "GET", "/health")["ok"]

    admin(server, "POST", "/config", {"rate": "5/1", "retry_after": False})
    got = []
    for _ in range(10):
        st, hdrs, body = keepalive_get(conn, "/leave_types")
        got.append((st, dict(hdrs).get("Retry-After"), body))
    limited = [g for g in got if g[0] == 429]
    assert limited and all(ra is None for _s, ra, _b in limited)
    assert json.loads(limited[0][2]) == {"success": False, "errors": [{"message": "Too many requests"}]}

    admin(server, "POST", "/config", {"rate": 0})
    assert all(keepalive_get(conn, "/leave_types")[0] == 200 for _ in range(20))
    st, _h, data = _request(server, "POST", "/_sandbox/config", {"rate": "fast"}, key=None)
    assert st == 400


def test_the_limiter_counts_a_request_when_it_reached_the_socket():
    """A platform counts a request when it arrives; the sandbox's handler threads may get to it
    later (here the whole sandbox is stopped a while). Limit 2/s: r1 at 0 s, r2 at 0.3 s, r3 at
    0.4 s, all read at ~1.3 s. Counted when read, r2 and r3 would both pass (r1 is then more
    than a second old); counted when they reached the socket, three arrived within 0.4 s."""
    sp = start_sandbox()
    proc, port = sp.proc, sp.port
    try:
        conns = [raw_conn(port) for _ in range(3)]
        for c in conns:  # each connection served once, so its handler thread is waiting on it
            assert keepalive_get(c, "/leave_types")[0] == 200
        admin(port, "POST", "/config", {"rate": "2/1"})
        seq0 = max(e["seq"] for e in admin(port, "GET", "/requests"))
        assert keepalive_get(conns[0], "/leave_types")[0] == 200
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            time.sleep(0.3)
            conns[1].request("GET", PREFIX + "/leave_types", headers={"X-API-KEY": KEY})
            time.sleep(0.1)
            conns[2].request("GET", PREFIX + "/leave_types", headers={"X-API-KEY": KEY})
            time.sleep(0.9)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        got = []
        for c in conns[1:]:
            r = c.getresponse()
            r.read()
            got.append(r.status)
        assert sorted(got) == [200, 429]
        log = [e for e in admin(port, "GET", "/requests") if e["seq"] > seq0]
        arrived = sorted(e["arrived"] for e in log)
        assert len(arrived) == 3
        assert 0.25 <= arrived[1] - arrived[0] <= 0.6 and 0.05 <= arrived[2] - arrived[1] <= 0.3, arrived
    finally:
        proc.kill()
        proc.wait()


def test_the_limiter_lets_through_no_more_than_the_limit_around_any_arrival():
    """Arrivals counted out of order (threads race to the limiter): one passes only if no limit
    + 1 of those let through, itself included, arrived within less than the window."""
    sys.path.insert(0, HERE)
    from sandbox_base import window_admit
    win = []
    assert [window_admit(win, 2, 1.0, t) for t in (0.0, 0.6)] == [None, None]
    assert window_admit(win, 2, 1.0, 0.4) == 1          # earlier than 0.6, counted later: three in 0.6 s
    assert window_admit(win, 2, 1.0, 1.0) is None        # 0.0 is a full window before it
    assert win == [0.0, 0.6, 1.0]
    assert window_admit(win, 2, 1.0, 1.5) == 1           # 0.6, 1.0, 1.5
    assert window_admit(win, 2, 1.0, 1.7, count=False) is None and win == [0.0, 0.6, 1.0]
    assert window_admit(win, 2, 1.0, 5.0) is None and win == [5.0]   # the old ones forgotten
    # in order, the same as a plain sliding window: at most n in any w
    win, passed = [], []
    for i in range(200):
        t = i * 0.013
        if window_admit(win, 50, 1.0, t) is None:
            passed.append(t)
    assert all(b - a >= 1.0 for a, b in zip(passed, passed[50:]))
    assert len(passed) >= 100


def test_delay(server):
    admin(server, "POST", "/config", {"delay_ms": 200})
    t0 = time.time()
    assert api(server, "GET", "/leave_types")[0] == 200
    assert time.time() - t0 >= 0.19
    t0 = time.time()
    admin(server, "GET", "/health")
    assert time.time() - t0 < 0.15


# ---------------------------------------------------------------------------------------
# faults

def _expect_connection_failure(port, method, path, body=None):
    conn = raw_conn(port, timeout=5)
    hdrs = {"X-API-KEY": KEY}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, PREFIX + path, body=body, headers=hdrs)
    with pytest.raises((http.client.HTTPException, OSError)) as ei:
        r = conn.getresponse()
        r.read()
    conn.close()
    return ei.value


def count_employees(port):
    return len(admin(port, "GET", "/store")["employees"])


def test_fault_status_modes(server):
    admin(server, "POST", "/faults", [{"mode": "429", "count": 1, "retry_after": 7},
                                      {"mode": "500", "count": 1},
                                      {"mode": "502", "count": 1},
                                      {"mode": "503", "count": 1},
                                      {"mode": "408", "count": 1},
                                      {"mode": "401", "count": 1},
                                      {"mode": "html200", "count": 1},
                                      {"mode": "malformed", "count": 1}])
    body = {"first_name": "F", "last_name": "L"}
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 429 and h["Retry-After"] == "7"
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 500 and d["success"] is False
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 502 and b"Bad Gateway" in d
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 503
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 408 and h["Connection"] == "close"
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 401 and d == {"success": False, "errors": [{"message": "Unauthorized"}]}
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 200 and h["Content-Type"].startswith("text/html") and d.startswith(b"<!DOCTYPE html>")
    with pytest.raises(ValueError):
        api(server, "POST", "/employees", body)  # malformed JSON, 200
    assert count_employees(server) == 0            # no fault applied anything
    st, h, d = api(server, "POST", "/employees", body)
    assert st == 200 and count_employees(server) == 1
    rules = admin(server, "GET", "/faults")["faults"]
    assert [r["fired"] for r in rules] == [1] * 8
    log = admin(server, "GET", "/requests")
    assert [e["fault"] for e in log] == ["429", "500", "502", "503", "408", "401", "html200", "malformed", None]
    assert [e["status"] for e in log] == [429, 500, 502, 503, 408, 401, 200, 200, 200]


def test_fault_connection_modes(server):
    # drop: no answer at all, nothing stored
    admin(server, "POST", "/faults", {"mode": "drop", "count": 1, "method": "POST"})
    exc = _expect_connection_failure(server, "POST", "/employees", {"first_name": "D", "last_name": "X"})
    assert isinstance(exc, (http.client.RemoteDisconnected, ConnectionError))
    assert count_employees(server) == 0

    # reset_midbody: headers + half a body, then RST
    admin(server, "POST", "/faults", {"mode": "reset_midbody", "count": 1})
    exc = _expect_connection_failure(server, "GET", "/leave_types")
    assert isinstance(exc, (http.client.IncompleteRead, ConnectionError, http.client.RemoteDisconnected))

    # truncated: 200, full Content-Length announced, JSON cut in half, clean close
    admin(server, "POST", "/faults", {"mode": "truncated", "count": 1, "path": "^/employees$"})
    conn = raw_conn(server)
    conn.request("POST", PREFIX + "/employees", body=json.dumps({"first_name": "T", "last_name": "X"}),
                 headers={"X-API-KEY": KEY, "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    assert count_employees(server) == 0

    # commit_then_drop: applied, answer lost
    admin(server, "POST", "/faults", {"mode": "commit_then_drop", "count": 1, "method": "POST",
                                      "path": "^/employees$"})
    _expect_connection_failure(server, "POST", "/employees",
                               {"first_name": "C", "last_name": "X", "employee_number": "CTD-1"})
    store = admin(server, "GET", "/store")
    assert [e["employee_number"] for e in store["employees"]] == ["CTD-1"]
    st, _h, d = api(server, "GET", "/employees?employee_numbers[]=CTD-1")
    assert len(d["data"]) == 1
    log = admin(server, "GET", "/requests")
    assert [(e["fault"], e["status"]) for e in log[:4]] == [
        ("drop", None), ("reset_midbody", 200), ("truncated", 200), ("commit_then_drop", 200)]


def test_fault_timeout(server):
    admin(server, "POST", "/faults", {"mode": "timeout", "count": 2, "delay_ms": 400})
    conn = raw_conn(server, timeout=0.1)
    conn.request("GET", PREFIX + "/leave_types", headers={"X-API-KEY": KEY})
    with pytest.raises((TimeoutError, OSError)):
        conn.getresponse()
    conn.close()
    t0 = time.time()
    st, _h, d = api(server, "GET", "/leave_types", timeout=5)   # second firing: slow but normal
    assert st == 200 and d["data"] and time.time() - t0 >= 0.39
    t0 = time.time()
    assert api(server, "GET", "/leave_types")[0] == 200
    assert time.time() - t0 < 0.3


def test_fault_every_method_path(server):
    admin(server, "POST", "/faults", {"mode": "503", "every": 3, "method": "GET", "path": "^/leave_types$"})
    got = [api(server, "GET", "/leave_types")[0] for _ in range(7)]
    assert got == [200, 200, 503, 200, 200, 503, 200]
    assert api(server, "GET", "/departments")[0] == 200
    assert api(server, "POST", "/leave_types", {})[0] == 404   # no such route, and method does not match
    admin(server, "DELETE", "/faults")
    assert api(server, "GET", "/leave_types")[0] == 200
    st, _h, d = _request(server, "POST", "/_sandbox/faults", {"mode": "explode"}, key=None)
    assert st == 400 and d["ok"] is False


# ---------------------------------------------------------------------------------------
# request log, stats, reset, keep-alive

def test_request_log_and_stats(server):
    new_employee(server, email="log@example.com")
    api(server, "GET", "/employees?status=all&page=1")
    api(server, "GET", "/employees", key="bad")
    admin(server, "GET", "/store")                    # admin calls are not logged
    log = admin(server, "GET", "/requests")
    assert [e["seq"] for e in log] == [1, 2, 3]
    e1, e2, e3 = log
    assert e1["method"] == "POST" and e1["path"] == "/employees" and e1["status"] == 200
    assert e1["body"] == {"first_name": "Anna", "last_name": "Karenina", "email": "log@example.com"}
    assert e1["fault"] is None and isinstance(e1["ts"], float)
    assert e2["query"] == "status=all&page=1" and e2["body"] is None
    assert e3["status"] == 401
    assert [e["seq"] for e in admin(server, "GET", "/requests?since=2")] == [3]
    stats = admin(server, "GET", "/stats")
    assert stats["total"] == 3
    assert stats["by_status"] == {"200": 2, "401": 1}
    assert stats["by_method"] == {"POST": 1, "GET": 2}


def test_reset(server):
    new_employee(server)
    admin(server, "POST", "/faults", {"mode": "500"})
    admin(server, "POST", "/config", {"rate": "1/60", "delay_ms": 5, "metadata_style": "nested"})
    admin(server, "POST", "/reset")
    assert admin(server, "GET", "/store")["employees"] == []
    assert admin(server, "GET", "/requests") == []
    assert admin(server, "GET", "/faults")["faults"] == []
    assert admin(server, "GET", "/config") == {"rate": "0", "delay_ms": 0, "retry_after": True,
                                               "metadata_style": "alternate"}
    e = new_employee(server)
    assert e["id"] == 1000                            # id counters restart too


def test_keepalive_parallel(server):
    """8 keep-alive connections in parallel, like hrsync's libcurl multi."""
    errors = []

    def worker(n):
        try:
            conn = raw_conn(server)
            for i in range(40):
                conn.request("POST", PREFIX + "/employees",
                             body=json.dumps({"first_name": "W%d" % n, "last_name": str(i),
                                              "employee_number": "W%d-%d" % (n, i)}),
                             headers={"X-API-KEY": KEY, "Content-Type": "application/json"})
                r = conn.getresponse()
                assert r.getheader("Content-Length") is not None
                r.read()
                assert r.status == 200, r.status
                st, _h, _b = keepalive_get(conn, "/employees?page=1")
                assert st == 200
            conn.close()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    assert time.time() - t0 < 10
    assert len(admin(server, "GET", "/store")["employees"]) == 320
    assert len({e["id"] for e in admin(server, "GET", "/store")["employees"]}) == 320


def test_admin_hand_edits_a_person_twice_and_a_deletion(server):
    """What people do in PeopleForce's screens (hrsync reconcile's tests): a second record
    with a taken employee number (the API refuses it), an employee deleted with its positions."""
    e = new_employee(server, employee_number="E-1", email="anna@example.com")
    st, _h, data = api(server, "POST", "/employees", {"first_name": "A", "last_name": "B", "employee_number": "E-1"})
    assert st == 422, data
    dup = admin(server, "POST", "/employees", {"first_name": "A", "last_name": "B", "employee_number": "E-1",
                                               "email": "anna@example.com"})["data"]
    assert dup["id"] != e["id"] and dup["employee_number"] == "E-1"
    st, _h, data = api(server, "POST", "/employees/%d/positions" % e["id"], {"effective_from": "2024-01-01"})
    assert st in (200, 201), data
    admin(server, "DELETE", "/employees/%d" % e["id"])
    st, _h, _d = api(server, "GET", "/employees/%d" % e["id"])
    assert st == 404
    store = admin(server, "GET", "/store")
    assert [x["id"] for x in store["employees"]] == [dup["id"]]
    assert not [p for p in store["employee_positions"] if p["employee_id"] == e["id"]]
    st, _h, _d = _request(server, "DELETE", "/_sandbox/employees/%d" % e["id"], key=None)
    assert st == 404
