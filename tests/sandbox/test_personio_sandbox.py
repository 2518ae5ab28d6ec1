"""Tests for the Personio sandbox (tests/sandbox/personio.py). Stdlib clients only.

Run, from the repository's root: /usr/bin/python3 -m pytest -q tests/sandbox/test_personio_sandbox.py
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import sandbox_proc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "personio.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "personio", "seed.json")
CLIENT_ID = "sandbox-test-client"
SECRET = "sandbox-test-secret"


@pytest.fixture(scope="module")
def server():
    sp = sandbox_proc.start(SCRIPT, "--api-key", SECRET, "--client-id", CLIENT_ID, "--seed", SEED, "--no-retry-after")
    yield sp.port
    sandbox_proc.stop(sp)


@pytest.fixture(autouse=True)
def fresh(server):
    admin(server, "POST", "/reset")
    yield


def request(port, method, path, body=None, form=None, token=None, headers=None):
    """-> (status, headers, parsed JSON or None)."""
    hdrs = dict(headers or {})
    data = None
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data, method=method, headers=hdrs)
    try:
        resp = urllib.request.urlopen(req, timeout=5)
        status, rh, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, e.headers, e.read()
    return status, rh, json.loads(raw) if raw else None


def admin(port, method, path, body=None):
    return request(port, method, "/_sandbox" + path, body=body)[2]


def token(port):
    st, _, b = request(port, "POST", "/v2/auth/token",
                       form={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
    assert st == 200, b
    return b["access_token"]


@pytest.fixture
def tok(server):
    return token(server)


def employee(port, tok, **kw):
    body = {"email": "anna.petrova@example-group.ru", "first_name": "Анна", "last_name": "Петрова",
            "hire_date": "2021-03-01"}
    body.update(kw)
    st, _, b = request(port, "POST", "/v1/company/employees", body={"employee": body}, token=tok)
    assert st == 200, b
    return b["data"]["id"]


def time_off(port, tok, eid, **kw):
    f = {"employee_id": eid, "time_off_type_id": 9001, "start_date": "2026-12-01", "end_date": "2026-12-03",
         "half_day_start": 0, "half_day_end": 0}
    f.update(kw)
    return request(port, "POST", "/v1/company/time-offs", form=f, token=tok)


# ---------------------------------------------------------------------------------------
# auth

def test_token_needs_a_form_the_right_grant_and_the_right_client(server):
    st, _, b = request(server, "POST", "/v2/auth/token",
                       body={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
    assert st == 400 and b["error"] == "invalid_request"
    st, _, b = request(server, "POST", "/v2/auth/token",
                       form={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": SECRET})
    assert st == 400 and b["error"] == "unsupported_grant_type"
    st, _, b = request(server, "POST", "/v2/auth/token",
                       form={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"})
    assert st == 401 and b == {"error": "invalid_client", "error_description": "client authentication failed"}
    st, _, b = request(server, "POST", "/v2/auth/token",
                       form={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
    assert st == 200 and b["access_token"].startswith("papi-") and b["token_type"] == "Bearer"
    assert b["expires_in"] == 86400 and "personio:absences:write" in b["scope"]
    # The request log never shows the secret.
    logged = admin(server, "GET", "/requests")
    assert logged[-1]["body"]["client_secret"] == "***"


def test_missing_invalid_and_expired_tokens_get_401_in_each_versions_shape(server, tok):
    st, _, b = request(server, "GET", "/v1/company/employees")
    assert st == 401 and b["success"] is False and b["error"]["code"] == 401
    st, _, b = request(server, "GET", "/v1/company/employees", token="papi-forged")
    assert st == 401 and "invalid" in b["error"]["message"]
    assert request(server, "GET", "/v1/company/employees", token=tok)[0] == 200
    assert admin(server, "POST", "/tokens/expire") == {"ok": True, "expired": 1}
    st, _, b = request(server, "GET", "/v1/company/employees", token=tok)
    assert st == 401 and "expired" in b["error"]["message"]
    st, _, b = request(server, "GET", "/v2/attendance-periods", token=tok)
    assert st == 401 and b["errors"][0]["title"] == "Unauthorized" and "expired" in b["errors"][0]["detail"]
    assert {"personio_trace_id", "timestamp", "errors"} <= set(b)
    assert admin(server, "GET", "/store")["tokens"]["rejected_expired"] == 2


def test_token_lifetime_is_configurable(server):
    admin(server, "POST", "/config", {"token_ttl": 1})
    st, _, b = request(server, "POST", "/v2/auth/token",
                       form={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET})
    assert b["expires_in"] == 1
    assert request(server, "GET", "/v1/company/time-off-types", token=b["access_token"])[0] == 200
    time.sleep(1.1)
    assert request(server, "GET", "/v1/company/time-off-types", token=b["access_token"])[0] == 401


# ---------------------------------------------------------------------------------------
# employees

def test_employee_create_takes_the_envelope_validates_and_answers_its_id(server, tok):
    st, _, b = request(server, "POST", "/v1/company/employees", body={"first_name": "A"}, token=tok)
    assert st == 422 and b["error"]["error_data"]["employee"]
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok, body={"employee": {
        "first_name": "A", "gender": "m", "hire_date": "01.02.2020", "status": "fired", "email": "not-an-email"}})
    assert st == 422 and b["success"] is False and b["error"]["message"] == "The given data failed to pass validation."
    assert set(b["error"]["error_data"]) == {"last_name", "gender", "hire_date", "status", "email"}
    eid = employee(server, tok, gender="female", department="  склад ", office="Nowhere",
                   custom_attributes={"dynamic_1001": "000123"})
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok, body={"employee": {
        "email": "ANNA.PETROVA@example-group.ru", "first_name": "A", "last_name": "B"}})
    assert st == 422 and "already been taken" in b["error"]["error_data"]["email"][0]
    (e,) = admin(server, "GET", "/store")["employees"]
    assert e["id"] == eid and e["department"] == "Склад" and e["office"] is None and e["status"] == "active"
    assert e["custom_attributes"] == {"dynamic_1001": "000123"}
    # Unknown names are ignored with a meta error; an unknown custom attribute is an error.
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok, body={"employee": {
        "email": "x@example.fr", "first_name": "X", "last_name": "Y", "office": "Nowhere"}})
    assert st == 200 and b["meta"] == ["Office 'Nowhere' does not exist in Personio: ignored"]
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok, body={"employee": {
        "email": "z@example.fr", "first_name": "X", "last_name": "Y", "custom_attributes": {"dynamic_9": "1"}}})
    assert st == 422


def test_employee_form_body_and_future_hire_date_give_onboarding(server, tok):
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok, form={
        "employee[email]": "new@example.fr", "employee[first_name]": "N", "employee[last_name]": "E",
        "employee[hire_date]": "2099-01-01", "employee[custom_attributes][dynamic_1004]": "Senior"})
    assert st == 200, b
    (e,) = admin(server, "GET", "/store")["employees"]
    assert e["status"] == "onboarding" and e["custom_attributes"] == {"dynamic_1004": "Senior"}


def test_employee_patch_cannot_change_the_email(server, tok):
    eid = employee(server, tok)
    st, _, b = request(server, "PATCH", "/v1/company/employees/%d" % eid, token=tok,
                       body={"employee": {"email": "other@example.ru", "status": "inactive", "position": "Кладовщик"}})
    assert st == 200 and b["data"]["id"] == eid
    (e,) = admin(server, "GET", "/store")["employees"]
    assert e["email"] == "anna.petrova@example-group.ru" and e["status"] == "inactive" and e["position"] == "Кладовщик"
    assert request(server, "PATCH", "/v1/company/employees/999", token=tok, body={"employee": {}})[0] == 404
    # HR can, by hand (admin helper).
    admin(server, "POST", "/employees/%d" % eid, {"email": "other@example.ru"})
    assert admin(server, "GET", "/store")["employees"][0]["email"] == "other@example.ru"
    # ... which frees the old e-mail for a new employee and takes the new one
    new = {"first_name": "N", "last_name": "E"}
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok,
                       body={"employee": dict(new, email="Anna.Petrova@example-group.ru")})
    assert st == 200, b
    st, _, b = request(server, "POST", "/v1/company/employees", token=tok,
                       body={"employee": dict(new, email="OTHER@example.ru")})
    assert st == 422 and "already been taken" in b["error"]["error_data"]["email"][0]


def test_employee_list_record_offset_email_filter_and_projection(server, tok):
    ids = [employee(server, tok, email="e%d@example.fr" % i) for i in range(5)]
    st, _, b = request(server, "GET", "/v1/company/employees?limit=2&offset=2", token=tok)
    assert st == 200 and [d["attributes"]["id"]["value"] for d in b["data"]] == ids[2:4]
    assert b["metadata"] == {"total_elements": 5, "current_page": 1, "total_pages": 3}
    st, _, b = request(server, "GET", "/v1/company/employees?email=E3@example.fr&attributes%5B%5D=email", token=tok)
    (d,) = b["data"]
    assert set(d["attributes"]) == {"id", "email"} and d["attributes"]["email"]["value"] == "e3@example.fr"
    assert d["attributes"]["email"]["label"] == "Email"    # v1 wraps every value
    assert request(server, "GET", "/v1/company/employees?limit=101", token=tok)[0] == 400


# ---------------------------------------------------------------------------------------
# time-offs and absence periods

def test_time_off_takes_a_form_with_both_half_day_flags_as_1_or_0(server, tok):
    eid = employee(server, tok)
    st, _, b = request(server, "POST", "/v1/company/time-offs", token=tok, body={
        "employee_id": eid, "time_off_type_id": 9001, "start_date": "2026-12-01", "end_date": "2026-12-01",
        "half_day_start": False, "half_day_end": False})
    assert st == 415
    st, _, b = time_off(server, tok, eid, half_day_start="true")
    assert st == 422 and b["error"]["error_data"] == {"half_day_start": ["The half day start field must be true or false."]}
    f = {"employee_id": eid, "time_off_type_id": 9001, "start_date": "2026-12-01", "end_date": "2026-12-03"}
    st, _, b = request(server, "POST", "/v1/company/time-offs", form=f, token=tok)
    assert st == 422 and set(b["error"]["error_data"]) == {"half_day_start", "half_day_end"}
    st, _, b = time_off(server, tok, eid, start_date="2026-12-05", end_date="2026-12-04")
    assert st == 422 and "end_date" in b["error"]["error_data"]
    st, _, b = time_off(server, tok, eid, start_date="2026-12-05", end_date="2026-12-05", half_day_start=1,
                        half_day_end=1)
    assert st == 400 and b == {"success": False, "error": {
        "code": 400, "message": "Both half day start and half day end are true for a single-day period"}}
    st, _, b = time_off(server, tok, eid, time_off_type_id=4242)
    assert st == 404 and b["error"]["message"] == "Time-off type not found."
    st, _, b = time_off(server, tok, eid, time_off_type_id=9004)
    assert st == 400 and "hours" in b["error"]["message"]
    st, _, b = time_off(server, tok, eid, start_date="2026-12-05", end_date="2026-12-05", half_day_start=1,
                        comment="Отпуск [hrsync:ОТП-1#0123456789abcdef]")
    assert st == 200, b
    a = b["data"]["attributes"]
    assert a["half_day_start"] is True and a["days_count"] == 0.5 and a["status"] == "approved"
    assert a["start_date"] == "2026-12-05T00:00:00+01:00" and a["comment"].endswith("#0123456789abcdef]")
    assert a["employee"]["attributes"]["id"]["value"] == eid and a["time_off_type"]["attributes"]["id"] == 9001
    # skip_approval=0 on a type that needs approval: pending.
    st, _, b = time_off(server, tok, eid, start_date="2026-12-10", end_date="2026-12-10", skip_approval=0)
    assert b["data"]["attributes"]["status"] == "pending"
    assert request(server, "DELETE", "/v1/company/time-offs/%d" % a["id"], token=tok)[0] == 200
    st, _, b = request(server, "DELETE", "/v1/company/time-offs/%d" % a["id"], token=tok)
    assert st == 404 and b["error"]["message"] == "The absence period was not found."


def test_time_off_offset_is_a_page_number_from_1_and_0_reads_as_1(server, tok):
    eid = employee(server, tok)
    for d in range(1, 6):
        assert time_off(server, tok, eid, start_date="2026-12-%02d" % d, end_date="2026-12-%02d" % d)[0] == 200
    pages = {}
    for off in (0, 1, 2, 3):
        st, _, b = request(server, "GET", "/v1/company/time-offs?limit=2&offset=%d" % off, token=tok)
        assert st == 200
        pages[off] = [x["attributes"]["start_date"][:10] for x in b["data"]]
        assert b["metadata"]["total_pages"] == 3 and b["metadata"]["total_elements"] == 5
    assert pages[0] == pages[1] == ["2026-12-01", "2026-12-02"]      # a client counting 0,1,2 gets page 1 twice
    assert pages[2] == ["2026-12-03", "2026-12-04"] and pages[3] == ["2026-12-05"]
    st, _, b = request(server, "GET", "/v1/company/time-offs?employees%%5B%%5D=%d&start_date=2026-12-02"
                       "&end_date=2026-12-03" % eid, token=tok)
    assert [x["attributes"]["start_date"][:10] for x in b["data"]] == ["2026-12-02", "2026-12-03"]
    st, _, b = request(server, "GET", "/v1/company/time-offs?employees=%d" % eid, token=tok)
    assert st == 400 and b["error"]["message"] == "employees must be an array"
    assert request(server, "GET", "/v1/company/time-offs?updated_from=yesterday", token=tok)[0] == 400


def test_absence_period_hours_single_day_needs_times(server, tok):
    eid = employee(server, tok)
    f = {"employee_id": eid, "time_off_type_id": 9012, "start_date": "2026-12-07", "end_date": "2026-12-07"}
    st, _, b = request(server, "POST", "/v1/company/absence-periods", form=f, token=tok)
    assert st == 422 and set(b["error"]["error_data"]) == {"start_time", "end_time"}
    st, _, b = request(server, "POST", "/v1/company/absence-periods", token=tok,
                       form=dict(f, start_time="9:00", end_time="13:00"))
    assert st == 422 and set(b["error"]["error_data"]) == {"start_time"}
    st, _, b = request(server, "POST", "/v1/company/absence-periods", token=tok,
                       form=dict(f, start_time="09:00", end_time="13:00", comment="RTT"))
    assert st == 201
    (x,) = b["data"]                           # a list of one, as the vendor's example shows
    a = x["attributes"]
    assert a["effective_duration"] == 240 and a["start"] == "2026-12-07T08:00:00.0Z"
    assert a["absence_type"]["attributes"]["time_off_type_id"] == 9012
    # Several days: no times, half days allowed; a certificate type is refused.
    st, _, b = request(server, "POST", "/v1/company/absence-periods", token=tok, form={
        "employee_id": eid, "time_off_type_id": 9004, "start_date": "2026-12-14", "end_date": "2026-12-16",
        "half_day_end": 1})
    assert st == 201 and b["data"][0]["attributes"]["effective_duration"] == 480 * 2 + 240
    st, _, b = request(server, "POST", "/v1/company/absence-periods", token=tok,
                       form=dict(f, time_off_type_id=9020, start_time="09:00", end_time="10:00"))
    assert st == 400 and "certificate" in b["error"]["message"]
    st, _, b = request(server, "POST", "/v1/company/absence-periods", token=tok,
                       form=dict(f, time_off_type_id=9001, start_time="09:00", end_time="10:00"))
    assert st == 400 and "days" in b["error"]["message"]
    st, _, b = request(server, "GET", "/v1/company/absence-periods?offset=0&limit=1", token=tok)
    assert b["metadata"] == {"total_elements": 2, "current_page": 1, "total_pages": 2}
    assert request(server, "DELETE", "/v1/company/absence-periods/" + a["id"], token=tok)[0] == 200
    assert request(server, "DELETE", "/v1/company/absence-periods/not-a-uuid", token=tok)[0] == 400


def test_time_off_types_day_and_hour(server, tok):
    st, _, b = request(server, "GET", "/v1/company/time-off-types", token=tok)
    units = {x["attributes"]["name"]: x["attributes"]["unit"] for x in b["data"]}
    assert units["Ежегодный отпуск"] == "day" and units["Командировка"] == "hour" and units["RTT"] == "hour"
    st, _, b = request(server, "GET", "/v1/company/time-off-types?limit=2&offset=1", token=tok)
    assert [x["attributes"]["id"] for x in b["data"]] == [9002, 9003]     # a record offset here


def test_admin_status_and_hr_made_absences(server, tok):
    eid = employee(server, tok)
    st, _, b = request(server, "POST", "/_sandbox/time-offs", body={
        "employee_id": eid, "time_off_type_id": 9011, "start_date": "2026-12-21", "end_date": "2026-12-24",
        "half_day_start": False, "half_day_end": False, "status": "pending"})
    assert st == 201
    tid = b["data"]["attributes"]["id"]
    admin(server, "POST", "/time-offs/%d/status" % tid, {"status": "approved"})
    st, _, b = request(server, "GET", "/v1/company/time-offs/%d" % tid, token=tok)
    assert b["data"]["attributes"]["status"] == "approved" and b["data"]["attributes"]["created_by"] == "HR"


# ---------------------------------------------------------------------------------------
# v2 attendance periods

def test_attendance_periods_v2_create_list_patch_delete(server, tok):
    eid = employee(server, tok)
    body = {"person": {"id": str(eid)}, "type": "WORK", "start": {"date_time": "2026-11-02T09:00:00"},
            "end": {"date_time": "2026-11-02T17:00:00Z"}}
    st, _, b = request(server, "POST", "/v2/attendance-periods?skip_approval=true", body=body, token=tok)
    assert st == 422 and b["errors"][0]["_meta"] == {"field": "end.date_time"} and "without offset" in b["errors"][0]["detail"]
    body["end"]["date_time"] = "2026-11-02T17:00:00"
    st, _, b = request(server, "POST", "/v2/attendance-periods?skip_approval=true", body=body, token=tok)
    assert st == 201 and b["_meta"]["links"]["self"]["href"].startswith("http://")
    aid = b["id"]
    st, _, b = request(server, "POST", "/v2/attendance-periods", token=tok,
                       body=dict(body, start={"date_time": "2026-11-02T12:00:00"}))
    assert st == 409 and "overlaps" in b["errors"][0]["detail"]
    st, _, b = request(server, "POST", "/v2/attendance-periods", token=tok, body=dict(body, person={"id": "77"}))
    assert st == 404
    for d in (3, 4, 5):
        body2 = dict(body, start={"date_time": "2026-11-%02dT09:00:00" % d}, end={"date_time": "2026-11-%02dT17:00:00" % d})
        assert request(server, "POST", "/v2/attendance-periods", body=body2, token=tok)[0] == 201
    st, _, b = request(server, "GET", "/v2/attendance-periods?person.id=%d&limit=3" % eid, token=tok)
    assert len(b["_data"]) == 3
    nxt = b["_meta"]["links"]["next"]["href"]
    assert nxt.startswith("http://127.0.0.1:%d/v2/attendance-periods?" % server)   # absolute (changelog)
    st, _, b2 = request(server, "GET", nxt[len("http://127.0.0.1:%d" % server):], token=tok)
    assert len(b2["_data"]) == 1 and "next" not in b2["_meta"]["links"]
    st, _, b = request(server, "GET", "/v2/attendance-periods?start.date_time.gte=2026-11-04T00:00:00", token=tok)
    assert [a["start"]["date_time"][:10] for a in b["_data"]] == ["2026-11-04", "2026-11-05"]
    st, _, b = request(server, "GET", "/v2/attendance-periods?updated_at.gte=2026-01-01T00:00:00Z", token=tok)
    assert st == 400 and b["errors"][0]["detail"] == "Invalid request content."
    st, _, b = request(server, "PATCH", "/v2/attendance-periods/" + aid, token=tok,
                       body={"end": {"date_time": "2026-11-02T16:00:00"}, "comment": "corrigé"})
    assert st == 200 and b["end"]["date_time"] == "2026-11-02T16:00:00" and b["comment"] == "corrigé"
    assert request(server, "DELETE", "/v2/attendance-periods/" + aid, token=tok)[0] == 204
    st, _, b = request(server, "GET", "/v2/attendance-periods/" + aid, token=tok)
    assert st == 404 and b["errors"][0]["title"] == "Resource not found"


# ---------------------------------------------------------------------------------------
# rate limits, faults

def test_employee_list_limit_and_burst_answer_429_in_the_v1_shape(server, tok):
    admin(server, "POST", "/config", {"employees_burst": "3/1"})
    codes = [request(server, "GET", "/v1/company/employees", token=tok)[0] for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    st, h, b = request(server, "GET", "/v1/company/employees", token=tok)
    assert st == 429 and b["success"] is False and b["error"]["code"] == 429 and h.get("Retry-After") is None
    assert request(server, "GET", "/v1/company/time-off-types", token=tok)[0] == 200  # other endpoints are not held
    time.sleep(1.05)
    assert request(server, "GET", "/v1/company/employees", token=tok)[0] == 200
    admin(server, "POST", "/config", {"employees_burst": "0", "employees_rate": "2/60"})
    codes = [request(server, "GET", "/v1/company/employees", token=tok)[0] for _ in range(3)]
    assert codes[-1] == 429


def test_token_endpoint_limit_then_one_a_second(server):
    admin(server, "POST", "/config", {"token_rate": "2/60", "token_cooldown": 2})
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}
    codes = [request(server, "POST", "/v2/auth/token", form=form)[0] for _ in range(3)]
    assert codes == [200, 200, 429]
    st, _, b = request(server, "POST", "/v2/auth/token", form=form)
    assert st == 429 and b["error"] == "too_many_requests"
    time.sleep(1.05)
    assert request(server, "POST", "/v2/auth/token", form=form)[0] == 200      # 1 a second during the cool-down
    assert request(server, "POST", "/v2/auth/token", form=form)[0] == 429


def test_v1_overall_limit(server, tok):
    admin(server, "POST", "/config", {"v1_rate": "3/60"})
    codes = [request(server, "GET", "/v1/company/time-off-types", token=tok)[0] for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert request(server, "GET", "/v2/attendance-periods", token=tok)[0] == 200


def test_fault_modes_and_error_shapes_follow_the_path(server, tok):
    admin(server, "POST", "/faults", [{"mode": "500", "path": "^/v2/", "count": 1},
                                      {"mode": "500", "path": "^/v1/", "count": 1}])
    st, _, b = request(server, "GET", "/v2/attendance-periods", token=tok)
    assert st == 500 and b["errors"][0]["title"] == "Error"
    st, _, b = request(server, "GET", "/v1/company/employees", token=tok)
    assert st == 500 and b == {"success": False, "error": {"code": 500, "message": "Internal server error"}}
    st, _, b = request(server, "GET", "/v1/company/nothing", token=tok)
    assert st == 404 and b["success"] is False


def test_admin_deletes_an_employee_and_frees_its_email(server, tok):
    """An employee deleted in Personio's web UI (hrsync reconcile's tests): gone from the API,
    its e-mail free again."""
    eid = admin(server, "POST", "/employees", {"email": "gone@example.com", "first_name": "A", "last_name": "B"})["id"]
    assert admin(server, "DELETE", "/employees/%d" % eid) == {"ok": True}
    assert admin(server, "GET", "/store")["employees"] == []
    again = admin(server, "POST", "/employees", {"email": "gone@example.com", "first_name": "A", "last_name": "B"})
    assert again["id"] != eid
