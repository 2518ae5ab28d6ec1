#!/usr/bin/env python3
"""Personio API sandbox (v1 personnel data + v2 auth and attendance periods) for hrsync tests.

    python3 tests/sandbox/personio.py --port 0 --api-key CLIENT_SECRET [--client-id ID] \
        --seed tests/fixtures/personio/seed.json

Base URL: http://127.0.0.1:PORT (paths /v1/... and /v2/... as on https://api.personio.de).
Behaviour follows Personio's published API documents (the personnel data API v1 OpenAPI file,
the v2 authentication endpoint and common components) and its published rate limits;
tests/sandbox/README.md describes it.

What it reproduces on purpose:
  * client-credentials tokens (POST /v2/auth/token, x-www-form-urlencoded), expiring after
    `token_ttl` seconds (admin config) or at once (POST /_sandbox/tokens/expire);
  * error bodies in the v1 shape {"success":false,"error":{"code","message"}} (with
    error_data for field errors), the v2 problem shape {"personio_trace_id","timestamp",
    "errors":[{"title","detail","type","_meta"}]}, and OAuth errors on the token endpoint;
  * `offset` = page number (1-based, 0 coerced to 1) on time-offs and absence periods, a
    record offset on employees and time-off types;
  * the documented limits: 300/min (burst 15/s) on GET /v1/company/employees, 150/min on the
    token endpoint (then 1 request/s for 60 s), 2000/min on all v1 endpoints; 429 without
    Retry-After unless the sandbox is started without --no-retry-after;
  * a single-day absence with both half-day flags is refused (400), as since Jan 2025;
  * POST /company/time-offs and /company/absence-periods take x-www-form-urlencoded bodies
    (the only content type the OpenAPI file documents), booleans as 1/0 (Laravel's rule).
"""

import base64
import collections
import datetime
import json
import math
import os
import re
import sys
import time
import uuid
import zoneinfo
from urllib.parse import parse_qs, urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sandbox_base import ApiError, Sandbox, main, parse_rate, rate_to_str, window_admit  # noqa: E402

TZ = zoneinfo.ZoneInfo("Europe/Berlin")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
HHMM_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
LOCAL_DT_RE = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
EMPLOYEE_STATUSES = ("onboarding", "active", "leave", "inactive")
GENDERS = ("male", "female", "diverse")
TIME_OFF_STATUSES = ("approved", "pending", "rejected", "cancelled")
ATTENDANCE_TYPES = ("WORK", "BREAK")
EMPLOYEE_ORG = (("subcompany", "subcompanies"), ("department", "departments"), ("office", "offices"))
VALIDATION = "The given data failed to pass validation."
BOTH_HALVES = "Both half day start and half day end are true for a single-day period"
START_IDS = {"employees": 4001, "time_offs": 700001}
WORKDAY_MIN = 480


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_date(v):
    if not isinstance(v, str) or not DATE_RE.fullmatch(v):
        return None
    try:
        return datetime.date.fromisoformat(v)
    except ValueError:
        return None


def local_iso(d, hh=0, mm=0):
    """2017-12-27T00:00:00+01:00 style (v1 time-offs), in Europe/Berlin."""
    dt = datetime.datetime(d.year, d.month, d.day, hh, mm, tzinfo=TZ)
    return dt.isoformat()


def utc_iso(d, hh=0, mm=0):
    """The UTC instant of a Berlin wall-clock time, as absence periods show it (…Z)."""
    dt = datetime.datetime(d.year, d.month, d.day, hh, mm, tzinfo=TZ).astimezone(datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.0Z")


def ts_iso(ts):
    return datetime.datetime.fromtimestamp(ts, TZ).isoformat(timespec="seconds")


def wrap(label, value, typ="standard", uid=None):
    return {"label": label, "value": value, "type": typ, "universal_id": uid}


class Fields:
    """Typed access to a request body, JSON or x-www-form-urlencoded, with Laravel's rules:
    a form value is a string; booleans are true/false/1/0/"1"/"0" (not "true"/"false")."""

    def __init__(self, data, form):
        self.data = data
        self.form = form
        self.errors = []
        self.values = {}

    def error(self, field, message):
        self.errors.append({"field": field, "message": message})

    @staticmethod
    def human(field):
        return field.replace("_", " ")

    def present(self, field, required):
        v = self.data.get(field)
        if v is None or (isinstance(v, str) and v.strip() == ""):
            if required:
                self.error(field, "The %s field is required." % self.human(field))
            return False, None
        return True, v

    def integer(self, field, required=False):
        ok, v = self.present(field, required)
        if not ok:
            return None
        if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
            v = int(v.strip())
        if not is_int(v):
            self.error(field, "The %s must be an integer." % self.human(field))
            return None
        self.values[field] = v
        return v

    def number(self, field, required=False):
        ok, v = self.present(field, required)
        if not ok:
            return None
        if isinstance(v, str):
            try:
                v = float(v) if "." in v else int(v)
            except ValueError:
                pass
        if not (is_int(v) or (isinstance(v, float) and math.isfinite(v))):
            self.error(field, "The %s must be a number." % self.human(field))
            return None
        self.values[field] = v
        return v

    def boolean(self, field, required=False):
        ok, v = self.present(field, required)
        if not ok:
            return None
        if v in (True, False, 1, 0, "1", "0") and not isinstance(v, float):
            b = v in (True, 1, "1")
            self.values[field] = b
            return b
        self.error(field, "The %s field must be true or false." % self.human(field))
        return None

    def string(self, field, required=False, max_len=None):
        ok, v = self.present(field, required)
        if not ok:
            return None
        if not isinstance(v, str):
            self.error(field, "The %s must be a string." % self.human(field))
            return None
        if max_len and len(v) > max_len:
            self.error(field, "The %s may not be greater than %d characters." % (self.human(field), max_len))
            return None
        self.values[field] = v
        return v

    def date(self, field, required=False):
        ok, v = self.present(field, required)
        if not ok:
            return None
        d = parse_date(v)
        if d is None:
            self.error(field, "The %s does not match the format Y-m-d." % self.human(field))
            return None
        self.values[field] = v
        return d

    def hhmm(self, field, required=False):
        ok, v = self.present(field, required)
        if not ok:
            return None
        if not isinstance(v, str) or not HHMM_RE.fullmatch(v):
            self.error(field, "The %s does not match the format H:i." % self.human(field))
            return None
        self.values[field] = v
        return v

    def enum(self, field, choices, required=False):
        ok, v = self.present(field, required)
        if not ok:
            return None
        if v not in choices:
            self.error(field, "The selected %s is invalid." % self.human(field))
            return None
        self.values[field] = v
        return v

    def done(self, status=422):
        if self.errors:
            raise ApiError(status, self.errors)
        return self.values


class PersonioSandbox(Sandbox):
    """Personio API sandbox (v1 personnel data, v2 auth and attendance periods)."""

    name = "personio"
    api_prefix = ""
    client_id = "hrsync-sandbox-client"

    # ---- base hooks --------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--client-id", default=None,
                            help="the only client id accepted (default: the seed's client_id); "
                                 "--api-key is the client secret")

    def apply_args(self, args):
        if args.client_id:
            self.client_id = self._cli_client_id = args.client_id

    def config_defaults(self):
        return {"token_ttl": 86400, "employees_rate": "300/60", "employees_burst": "15/1",
                "token_rate": "150/60", "token_cooldown": 60, "v1_rate": "2000/60",
                "half_day_ints": False}

    def check_config(self, key, value):
        if key in ("employees_rate", "employees_burst", "token_rate", "v1_rate"):
            return rate_to_str(parse_rate(value))
        if key in ("token_ttl", "token_cooldown"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError("%s must be a number of seconds >= 0" % key)
            return value
        if key == "half_day_ints":
            if not isinstance(value, bool):
                raise ValueError("half_day_ints must be true or false")
            return value
        raise ValueError("unknown config key %r" % key)

    def _api(self, req=None):
        req = req or self.current_request()
        path = req.path if req is not None else ""
        if path == "/v2/auth/token":
            return "oauth"
        return "v2" if path.startswith("/v2/") else "v1"

    def format_error(self, status, errors):
        kind = self._api()
        msgs = [e.get("message") or e.get("detail") or "" for e in errors]
        if kind == "oauth":
            code = (errors[0].get("code") if errors else None) or {
                400: "invalid_request", 401: "invalid_client", 429: "too_many_requests"}.get(status, "server_error")
            return {"error": code, "error_description": "; ".join(m for m in msgs if m)}
        if kind == "v2":
            out = []
            for e in errors:
                item = {"title": e.get("title") or {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                                                    409: "Conflict", 422: "Unprocessable Entity",
                                                    429: "Too Many Requests"}.get(status, "Error"),
                        "detail": e.get("message") or e.get("detail") or "",
                        "type": "https://developer.personio.de/reference/errors#%s" % (
                            e.get("code") or "common.%d" % status),
                        "_meta": {"field": e["field"]} if e.get("field") else {}}
                out.append(item)
            return {"personio_trace_id": str(uuid.uuid4()),
                    "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "errors": out}
        fields = [e for e in errors if e.get("field")]
        if fields:
            data = {}
            for e in fields:
                data.setdefault(e["field"], []).append(e["message"])
            return {"success": False, "error": {"code": 0 if status == 422 else status, "message": VALIDATION,
                                                "error_data": data}}
        return {"success": False, "error": {"code": status, "message": "; ".join(m for m in msgs if m)}}

    def unauthorized(self, why="Unauthorized: the access token is missing, invalid or expired"):
        return 401, {}, self.format_error(401, [{"message": why, "code": "common.unauthorized"}])

    def authenticate(self, req):
        if req.path == "/v2/auth/token":
            return None
        return self.bearer_check(req, "Unauthorized: ")

    def route_rate_check_locked(self, req, now):
        st = self.store
        if req.path == "/v2/auth/token":
            if now < st["token_cooldown_until"]:
                return self._window(st["windows"], "token_cooldown", (1, 1.0), now)
            w = self._window(st["windows"], "token", parse_rate(self.config["token_rate"]), now)
            if w is not None:
                # Over the limit: from now on one request a second, for token_cooldown seconds.
                st["token_cooldown_until"] = now + float(self.config["token_cooldown"])
                st["windows"]["token_cooldown"] = [now]
            return w
        if req.path.startswith("/v1/"):
            w = self._window(st["windows"], "v1", parse_rate(self.config["v1_rate"]), now, count=False)
            if w is not None:
                return w
            if req.method == "GET" and req.path == "/v1/company/employees":
                for name in ("employees_rate", "employees_burst"):
                    w = self._window(st["windows"], name, parse_rate(self.config[name]), now, count=False)
                    if w is not None:
                        return w
                self._window(st["windows"], "employees_rate", parse_rate(self.config["employees_rate"]), now)
                self._window(st["windows"], "employees_burst", parse_rate(self.config["employees_burst"]), now)
            self._window(st["windows"], "v1", parse_rate(self.config["v1_rate"]), now)
        return None

    @staticmethod
    def _window(windows, name, rate, now, count=True):
        """Sliding window: None if allowed (and counted unless count=False), else seconds to wait."""
        if rate is None:
            return None
        n, w = rate
        return window_admit(windows.setdefault(name, []), n, w, now, count)

    def log_body(self, req):
        if self._is_form(req):
            out = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace"),
                                                  keep_blank_values=True).items()}
            if "client_secret" in out:
                out["client_secret"] = "***"
            return out
        return req.json_or_none()

    # ---- store -------------------------------------------------------------------
    def build_store(self, seed):
        if seed.get("client_id") and not getattr(self, "_cli_client_id", None):
            self.client_id = seed["client_id"]
        st = {"tokens": {}, "tokens_issued": 0, "token_rejections": 0, "windows": {},
              "token_cooldown_until": 0.0, "refs": {}, "custom_attributes": {},
              "employees": {}, "time_offs": {}, "absence_periods": {}, "attendance_periods": {},
              "next_id": dict(START_IDS),
              # lower-cased e-mail -> how many employees hold it (an edit by hand may make two):
              # the platform's index, instead of a scan of every employee per create
              "emails": collections.Counter()}
        for name in ("time_off_types", "departments", "offices", "subcompanies"):
            items = seed.get(name) or []
            table = {}
            for it in items:
                if not isinstance(it, dict) or not is_int(it.get("id")) or not isinstance(it.get("name"), str):
                    raise ValueError("%s: every entry needs an integer id and a name" % name)
                table[it["id"]] = dict(it)
            st["refs"][name] = table
        for t in st["refs"]["time_off_types"].values():
            if t.get("unit") not in ("day", "hour"):
                raise ValueError("time_off_types: unit must be day or hour (%r)" % t.get("name"))
            t["uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "personio-type-%d" % t["id"]))
        for ca in seed.get("custom_attributes") or []:
            if not re.fullmatch(r"dynamic_\d+", ca.get("key", "")):
                raise ValueError("custom_attributes: key must be dynamic_<digits>")
            st["custom_attributes"][ca["key"]] = dict(ca)
        self.store = st
        return st

    def store_snapshot(self):
        st = self.store
        return {
            "employees": [self.flat_employee(e) for e in st["employees"].values()],
            "time_offs": [self.render_time_off(t)["attributes"] for t in st["time_offs"].values()],
            "absence_periods": [self.render_absence_period(p)["attributes"] for p in st["absence_periods"].values()],
            "attendance_periods": [self.render_attendance(a) for a in st["attendance_periods"].values()],
            "refs": {k: list(v.values()) for k, v in st["refs"].items()},
            "tokens": {"issued": st["tokens_issued"], "live": sum(1 for e in st["tokens"].values() if e > time.time()),
                       "rejected_expired": st["token_rejections"]},
        }

    def _next_id(self, kind):
        n = self.store["next_id"][kind]
        self.store["next_id"][kind] = n + 1
        return n

    # ---- routes ------------------------------------------------------------------
    def register_routes(self):
        r = self.route
        r("POST", r"/v2/auth/token", self.token)
        r("GET", r"/v1/company/employees", self.list_employees)
        r("POST", r"/v1/company/employees", self.create_employee)
        r("GET", r"/v1/company/employees/(\d+)", self.get_employee)
        r("PATCH", r"/v1/company/employees/(\d+)", self.patch_employee)
        r("GET", r"/v1/company/time-off-types", self.list_time_off_types)
        r("GET", r"/v1/company/time-offs", self.list_time_offs)
        r("POST", r"/v1/company/time-offs", self.create_time_off)
        r("GET", r"/v1/company/time-offs/(\d+)", self.get_time_off)
        r("DELETE", r"/v1/company/time-offs/(\d+)", self.delete_time_off)
        r("GET", r"/v1/company/absence-periods", self.list_absence_periods)
        r("POST", r"/v1/company/absence-periods", self.create_absence_period)
        r("DELETE", r"/v1/company/absence-periods/([^/]+)", self.delete_absence_period)
        r("GET", r"/v2/attendance-periods", self.list_attendances)
        r("POST", r"/v2/attendance-periods", self.create_attendance)
        r("GET", r"/v2/attendance-periods/([^/]+)", self.get_attendance)
        r("PATCH", r"/v2/attendance-periods/([^/]+)", self.patch_attendance)
        r("DELETE", r"/v2/attendance-periods/([^/]+)", self.delete_attendance)
        a = self.admin_route
        a("POST", r"/tokens/expire", self.admin_expire_tokens)
        a("POST", r"/employees", self.admin_create_employee)
        a("POST", r"/employees/(\d+)", self.admin_edit_employee)
        a("DELETE", r"/employees/(\d+)", self.admin_delete_employee)
        a("POST", r"/time-offs", self.admin_create_time_off)
        a("POST", r"/time-offs/(\d+)/status", self.admin_time_off_status)
        a("POST", r"/absence-periods", self.admin_create_absence_period)
        a("POST", r"/absence-periods/([^/]+)/status", self.admin_absence_period_status)

    # ---- request bodies ----------------------------------------------------------
    @staticmethod
    def _is_form(req):
        return "application/x-www-form-urlencoded" in (req.headers.get("Content-Type") or "").lower()

    def _form(self, req):
        if not self._is_form(req):
            raise ApiError(415, "Unsupported Media Type: this endpoint takes application/x-www-form-urlencoded")
        try:
            text = req.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "The request body is not valid UTF-8")
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def _body(self, req):
        """JSON object or form fields (the employee endpoints document both)."""
        if self._is_form(req):
            return self._form(req), True
        return req.json(), False

    # ---- auth --------------------------------------------------------------------
    def token(self, req):
        ctype = (req.headers.get("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" not in ctype:
            raise ApiError(400, [{"code": "invalid_request",
                                  "message": "the token request must be application/x-www-form-urlencoded"}])
        f = self._form(req)
        for k in ("grant_type", "client_id", "client_secret"):
            if not f.get(k):
                raise ApiError(400, [{"code": "invalid_request", "message": "missing %s" % k}])
        if f["grant_type"] != "client_credentials":
            raise ApiError(400, [{"code": "unsupported_grant_type", "message": "grant_type must be client_credentials"}])
        if f["client_id"] != self.client_id or f["client_secret"] != self.api_key:
            raise ApiError(401, [{"code": "invalid_client", "message": "client authentication failed"}])
        tok = "papi-" + uuid.uuid4().hex + uuid.uuid4().hex
        ttl = self.config["token_ttl"]
        self.store["tokens"][tok] = time.time() + ttl
        self.store["tokens_issued"] += 1
        return 200, {}, {"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl) if ttl == int(ttl) else ttl,
                         "scope": "personio:persons:read personio:persons:write personio:absences:read "
                                  "personio:absences:write personio:attendances:read personio:attendances:write"}

    def admin_expire_tokens(self, req):
        now = time.time()
        n = 0
        for k, exp in self.store["tokens"].items():
            if exp > now:
                self.store["tokens"][k] = now - 1
                n += 1
        return 200, {}, {"ok": True, "expired": n}

    # ---- employees ---------------------------------------------------------------
    def _ref_by_name(self, table, name):
        key = name.strip().lower()
        for r in self.store["refs"][table].values():
            if r["name"].strip().lower() == key:
                return r
        return None

    def _employee(self, eid):
        e = self.store["employees"].get(eid)
        if e is None:
            raise ApiError(404, "Employee not found")
        return e

    def flat_employee(self, e):
        refs = self.store["refs"]
        out = {k: e[k] for k in ("id", "email", "first_name", "last_name", "preferred_name", "gender", "position",
                                 "hire_date", "weekly_working_hours", "status", "supervisor_id")}
        for field, table in EMPLOYEE_ORG:
            r = refs[table].get(e[field + "_id"])
            out[field] = r["name"] if r else None
        out["custom_attributes"] = dict(e["custom"])
        out["created_at"] = ts_iso(e["created_at"])
        out["last_modified_at"] = ts_iso(e["updated_at"])
        return out

    def render_employee(self, e, only=None):
        refs = self.store["refs"]
        hd = parse_date(e["hire_date"]) if e["hire_date"] else None
        a = {
            "id": wrap("ID", e["id"], "integer", "id"),
            "first_name": wrap("First name", e["first_name"], uid="first_name"),
            "last_name": wrap("Last name", e["last_name"], uid="last_name"),
            "preferred_name": wrap("Name (preferred)", e["preferred_name"], uid="preferred_name"),
            "email": wrap("Email", e["email"], uid="email"),
            "gender": wrap("Gender", e["gender"], uid="gender"),
            "status": wrap("Status", e["status"], uid="status"),
            "position": wrap("Position", e["position"], uid="position"),
            "supervisor": wrap("Supervisor", {"type": "Employee", "attributes": {
                "id": wrap("ID", e["supervisor_id"], "integer", "id")}} if e["supervisor_id"] else None,
                uid="supervisor"),
            "weekly_working_hours": wrap("Weekly hours", None if e["weekly_working_hours"] is None
                                         else str(e["weekly_working_hours"]), uid="weekly_working_hours"),
            "hire_date": wrap("Hire date", local_iso(hd) if hd else None, "date", "hire_date"),
            "termination_date": wrap("Termination date", None, "date", "termination_date"),
            "created_at": wrap("created_at", ts_iso(e["created_at"]), "date", "created_at"),
            "last_modified_at": wrap("Last modified", ts_iso(e["updated_at"]), "date", "last_modified_at"),
        }
        for field, table in EMPLOYEE_ORG:
            r = refs[table].get(e[field + "_id"])
            label = {"subcompany": "Subcompany", "department": "Department", "office": "Office"}[field]
            a[field] = wrap(label, {"type": label, "attributes": {"id": r["id"], "name": r["name"]}} if r else None,
                            uid=field)
        for k, ca in self.store["custom_attributes"].items():
            a[k] = wrap(ca.get("label", k), e["custom"].get(k), ca.get("type", "standard"))
        if only:
            a = {k: v for k, v in a.items() if k == "id" or k in only}
        return {"type": "Employee", "attributes": a}

    def list_employees(self, req):
        def int_param(name, default, lo, hi):
            raw = req.param(name)
            if raw in (None, ""):
                return default
            try:
                v = int(raw)
            except ValueError:
                raise ApiError(400, "%s must be an integer" % name)
            if v < lo or (hi is not None and v > hi):
                raise ApiError(400, "%s must be between %d and %s" % (name, lo, hi if hi is not None else "∞"))
            return v
        limit = int_param("limit", 50, 1, 100)       # pagination enforced since 31 Jan 2025: max 100
        offset = int_param("offset", 0, 0, None)     # a record offset on employees
        only = set(req.param_list("attributes[]"))
        since = req.param("updated_since")
        items = sorted(self.store["employees"].values(), key=lambda e: e["id"])
        if since:
            m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}):(\d{2}):(\d{2}))?", since)
            if not m or parse_date(m.group(1)) is None:
                raise ApiError(400, "updated_since must be ISO 8601 (2022-12-24T08:15:30) or YYYY-MM-DD")
            d = parse_date(m.group(1))
            t = datetime.datetime(d.year, d.month, d.day, int(m.group(2) or 0), int(m.group(3) or 0),
                                  int(m.group(4) or 0), tzinfo=TZ).timestamp()
            items = [e for e in items if e["updated_at"] > t]
            limit, offset = max(1, len(items)), 0     # email, limit and offset are ignored with updated_since
        elif req.param("email") is not None:
            want = req.param("email").strip().lower()
            items = [e for e in items if (e["email"] or "").lower() == want]
        total = len(items)
        page = items[offset: offset + limit]
        return 200, {}, {
            "success": True,
            "metadata": {"total_elements": total, "current_page": offset // limit,
                         "total_pages": max(1, int(math.ceil(total / float(limit))))},
            "offset": offset, "limit": limit,
            "data": [self.render_employee(e, only or None) for e in page]}

    def get_employee(self, req):
        e = self._employee(int(req.match.group(1)))
        return 200, {}, {"success": True, "data": self.render_employee(e)}

    def _employee_fields(self, req):
        body, form = self._body(req)
        if form:
            emp = {}
            for k, v in body.items():
                m = re.fullmatch(r"employee\[(\w+)\](?:\[(\w+)\])?", k)
                if m and m.group(2):
                    emp.setdefault(m.group(1), {})[m.group(2)] = v
                elif m:
                    emp[m.group(1)] = v
        else:
            emp = body.get("employee")
            if not isinstance(emp, dict):
                raise ApiError(422, [{"field": "employee", "message": "The employee field is required and must be an object."}])
        return emp, form

    def _check_employee(self, emp, form, current=None):
        """Validated values, org ids, custom attributes and the meta errors (names ignored)."""
        f = Fields(emp, form)
        create = current is None
        f.string("first_name", required=create, max_len=255)
        f.string("last_name", required=create, max_len=255)
        if create:
            email = f.string("email", required=True)
            if email is not None:
                if not EMAIL_RE.fullmatch(email.strip()):
                    f.error("email", "The email must be a valid email address.")
                elif self.store["emails"][email.strip().lower()] > 0:
                    f.error("email", "The email has already been taken.")
        f.string("preferred_name", max_len=255)
        f.enum("gender", GENDERS)
        f.string("position", max_len=255)
        hd = f.date("hire_date")
        f.number("weekly_working_hours")
        f.enum("status", EMPLOYEE_STATUSES)
        sup = f.integer("supervisor_id")
        meta, org = [], {}
        for field, table in EMPLOYEE_ORG:
            v = f.string(field)
            if field in emp and emp[field] is None and not create:
                org[field + "_id"] = None
            if v is not None:
                r = self._ref_by_name(table, v)
                if r is None:
                    meta.append("%s '%s' does not exist in Personio: ignored" % (field.capitalize(), v))
                else:
                    org[field + "_id"] = r["id"]
        custom = {}
        ca = emp.get("custom_attributes")
        if ca is not None:
            if not isinstance(ca, dict):
                f.error("custom_attributes", "The custom attributes must be an object.")
            else:
                for k, v in ca.items():
                    if k not in self.store["custom_attributes"]:
                        f.error("custom_attributes", "Unknown custom attribute %s." % k)
                    elif v is not None and not isinstance(v, (str, int, float)):
                        f.error("custom_attributes", "The custom attribute %s must be a string." % k)
                    else:
                        custom[k] = v
        if f.errors:
            f.done()
        if sup is not None:
            if sup not in self.store["employees"] or (current and current["id"] == sup):
                raise ApiError(422, "Supervisor with ID %d not found" % sup)
        values = dict(f.values)
        if create:
            values["email"] = values["email"].strip()
            if "status" not in values:
                values["status"] = "onboarding" if hd and hd > datetime.date.today() else "active"
        if "supervisor_id" in emp and emp["supervisor_id"] is None and not create:
            values["supervisor_id"] = None
        return values, org, custom, meta

    def _create_employee(self, emp, form):
        values, org, custom, meta = self._check_employee(emp, form)
        now = time.time()
        e = {"id": self._next_id("employees"), "email": None, "first_name": None, "last_name": None,
             "preferred_name": None, "gender": None, "position": None, "hire_date": None,
             "weekly_working_hours": None, "status": "active", "supervisor_id": None,
             "subcompany_id": None, "department_id": None, "office_id": None, "custom": custom,
             "created_at": now, "updated_at": now}
        e.update(values)
        e.update(org)
        self.store["employees"][e["id"]] = e
        if e["email"]:
            self.store["emails"][e["email"].lower()] += 1
        return e, meta

    def create_employee(self, req):
        emp, form = self._employee_fields(req)
        e, meta = self._create_employee(emp, form)
        body = {"success": True, "data": {"id": e["id"], "message": "success"}}
        if meta:
            body["meta"] = meta
        return 200, {}, body

    def admin_create_employee(self, req):
        e, meta = self._create_employee(req.json(), False)
        return 201, {}, {"id": e["id"], "meta": meta}

    def admin_edit_employee(self, req):
        """What HR does by hand in Personio's web UI: any field, the email included."""
        e = self._employee(int(req.match.group(1)))
        body = req.json()
        if "email" in body:
            f = Fields(body, False)
            email = f.string("email", required=True)
            if email and not EMAIL_RE.fullmatch(email.strip()):
                f.error("email", "The email must be a valid email address.")
            f.done()
            if e["email"]:
                self.store["emails"][e["email"].lower()] -= 1
            e["email"] = email.strip()
            self.store["emails"][e["email"].lower()] += 1
        values, org, custom, meta = self._check_employee({k: v for k, v in body.items() if k != "email"}, False,
                                                         current=e)
        e.update(values)
        e.update(org)
        e["custom"].update(custom)
        e["updated_at"] = time.time()
        return 200, {}, {"ok": True, "employee": self.flat_employee(e), "meta": meta}

    def admin_delete_employee(self, req):
        """An employee deleted in Personio's web UI (the API cannot)."""
        e = self._employee(int(req.match.group(1)))
        del self.store["employees"][e["id"]]
        if e["email"]:
            self.store["emails"][e["email"].lower()] -= 1
        return 200, {}, {"ok": True}

    def patch_employee(self, req):
        e = self._employee(int(req.match.group(1)))
        emp, form = self._employee_fields(req)
        values, org, custom, meta = self._check_employee(emp, form, current=e)
        before = self.flat_employee(e)
        e.update(values)
        e.update(org)
        e["custom"].update(custom)
        if self.flat_employee(e) != before:
            e["updated_at"] = time.time()
        return 200, {}, {"success": True, "data": {"id": e["id"]}, "meta": meta}

    # ---- time-off types ----------------------------------------------------------
    def list_time_off_types(self, req):
        try:
            limit = int(req.param("limit") or 200)
            offset = int(req.param("offset") or 0)
        except ValueError:
            raise ApiError(400, "limit and offset must be integers")
        if limit < 1 or offset < 0:
            raise ApiError(400, "limit must be >= 1 and offset >= 0")
        items = sorted(self.store["refs"]["time_off_types"].values(), key=lambda t: t["id"])
        return 200, {}, {"success": True, "data": [
            {"type": "TimeOffType", "attributes": {k: t.get(k) for k in ("id", "name", "category", "unit",
                                                                      "approval_required")}}
            for t in items[offset: offset + limit]]}

    # ---- absences: shared --------------------------------------------------------
    def _page_params(self, req):
        """limit (default 200) and offset = page number, 1-based, 0 coerced to 1 (api-docs PR #82)."""
        try:
            limit = int(req.param("limit") or 200)
            page = int(req.param("offset") or 0)
        except ValueError:
            raise ApiError(400, "limit and offset must be integers")
        if limit < 1 or limit > 200 or page < 0:
            raise ApiError(400, "limit must be between 1 and 200 and offset >= 0")
        return limit, max(page, 1)

    def _paged(self, items, limit, page, render):
        total = len(items)
        pages = max(1, int(math.ceil(total / float(limit))))
        chunk = items[(page - 1) * limit: page * limit]
        return 200, {}, {"success": True,
                         "metadata": {"total_elements": total, "current_page": page, "total_pages": pages},
                         "offset": page, "limit": limit, "data": [render(x) for x in chunk]}

    def _employee_filter(self, req):
        raw = req.param_list("employees[]")
        if "employees" in req.params and not raw:
            raise ApiError(400, "employees must be an array")     # api-docs issue #29
        try:
            return {int(x) for x in raw} if raw else None
        except ValueError:
            raise ApiError(400, "employees[] must be integers")

    def _date_param(self, req, name):
        raw = req.param(name)
        if raw in (None, ""):
            return None
        d = parse_date(raw)
        if d is None:
            raise ApiError(400, "%s must be a date (YYYY-MM-DD)" % name)
        return d

    def _datetime_param(self, req, name):
        raw = req.param(name)
        if raw in (None, ""):
            return None
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?(Z|[+-]\d{2}:?\d{2})?", raw)
        if not m or parse_date(m.group(1)) is None:
            raise ApiError(400, "%s must be a date-time (ISO 8601)" % name)
        d = parse_date(m.group(1))
        dt = datetime.datetime(d.year, d.month, d.day, int(m.group(2) or 0), int(m.group(3) or 0),
                               int(m.group(4) or 0), tzinfo=TZ)
        if m.group(5):
            off = m.group(5)
            if off == "Z":
                dt = dt.replace(tzinfo=datetime.timezone.utc)
            else:
                sign = -1 if off[0] == "-" else 1
                hh, mm = int(off[1:3]), int(off[-2:])
                dt = dt.replace(tzinfo=datetime.timezone(sign * datetime.timedelta(hours=hh, minutes=mm)))
        return dt.timestamp()

    def _short_employee(self, eid):
        e = self.store["employees"].get(eid)
        return {"type": "Employee", "attributes": {
            "id": wrap("id", eid, "integer", "id"),
            "first_name": wrap("First name", e["first_name"] if e else None, uid="first_name"),
            "last_name": wrap("Last name", e["last_name"] if e else None, uid="last_name"),
            "email": wrap("Email", e["email"] if e else None, uid="email")}}

    def _half(self, v):
        return (1 if v else 0) if self.config["half_day_ints"] else bool(v)

    def _check_absence(self, body, form, unit, admin=False):
        """Validated fields of a time-off / absence-period create (CreateTimeOffPeriodRequest,
        CreateAbsencePeriodRequest)."""
        st = self.store
        f = Fields(body, form)
        eid = f.integer("employee_id", required=True)
        tid = f.integer("time_off_type_id", required=True)
        sd = f.date("start_date", required=True)
        ed = f.date("end_date", required=True)
        day = unit == "day"
        hs = f.boolean("half_day_start", required=day)
        he = f.boolean("half_day_end", required=day)
        f.string("comment", max_len=5000)
        f.boolean("skip_approval")
        if admin:
            f.enum("status", TIME_OFF_STATUSES)
        if not day:
            single = sd is not None and sd == ed
            st_ = f.hhmm("start_time", required=single)
            et_ = f.hhmm("end_time", required=single)
            if single and st_ and et_ and et_ <= st_:
                f.error("end_time", "The end time must be a time after start time.")
        if sd and ed and ed < sd:
            f.error("end_date", "The end date must be a date after or equal to start date.")
        f.done()
        if eid not in st["employees"]:
            raise ApiError(404, "Employee not found.")
        t = st["refs"]["time_off_types"].get(tid)
        if t is None:
            raise ApiError(404, "Time-off type not found." if day else "Absence type not found.")
        if t["unit"] != unit:
            raise ApiError(400, "Error when trying to insert absence period: time-off type %d is tracked in %ss; "
                                "use %s" % (tid, t["unit"], "/company/time-offs" if t["unit"] == "day"
                                            else "/company/absence-periods"))
        if not day and t.get("certificate_required"):
            raise ApiError(400, "Error when trying to insert absence period: absence types that require a "
                                "certificate are not supported")
        if sd is not None and sd == ed and hs and he:
            raise ApiError(400, BOTH_HALVES)
        v = dict(f.values)
        if "status" not in v:
            skip = v.get("skip_approval", True)
            v["status"] = "pending" if (skip is False and t.get("approval_required")) else "approved"
        return v, t

    # ---- time-offs (days) --------------------------------------------------------
    def render_time_off(self, x):
        t = self.store["refs"]["time_off_types"].get(x["time_off_type_id"]) or {}
        sd, ed = parse_date(x["start_date"]), parse_date(x["end_date"])
        days = (ed - sd).days + 1 - 0.5 * (x["half_day_start"] + x["half_day_end"])
        return {"type": "TimeOffPeriod", "attributes": {
            "id": x["id"], "id_v2": x["id_v2"], "status": x["status"], "comment": x["comment"],
            "start_date": local_iso(sd), "end_date": local_iso(ed), "days_count": days,
            "half_day_start": self._half(x["half_day_start"]), "half_day_end": self._half(x["half_day_end"]),
            "time_off_type": {"type": "TimeOffType", "attributes": {"id": t.get("id"), "name": t.get("name"),
                                                                   "category": t.get("category")}},
            "employee": self._short_employee(x["employee_id"]),
            "certificate": {"status": "not-required"},
            "created_at": ts_iso(x["created_at"]), "created_by": x["created_by"],
            "updated_at": ts_iso(x["updated_at"])}}

    def _create_time_off(self, body, form, admin=False):
        v, t = self._check_absence(body, form, "day", admin)
        now = time.time()
        x = {"id": self._next_id("time_offs"), "id_v2": str(uuid.uuid4()), "employee_id": v["employee_id"],
             "time_off_type_id": v["time_off_type_id"], "start_date": v["start_date"], "end_date": v["end_date"],
             "half_day_start": bool(v.get("half_day_start")), "half_day_end": bool(v.get("half_day_end")),
             "comment": v.get("comment"), "status": v["status"], "created_by": "HR" if admin else "API",
             "created_at": now, "updated_at": now}
        self.store["time_offs"][x["id"]] = x
        return x

    def create_time_off(self, req):
        x = self._create_time_off(self._form(req), True)
        return 200, {}, {"success": True, "data": self.render_time_off(x)}

    def admin_create_time_off(self, req):
        x = self._create_time_off(req.json(), False, admin=True)
        return 201, {}, {"success": True, "data": self.render_time_off(x)}

    def _time_off(self, req):
        x = self.store["time_offs"].get(int(req.match.group(1)))
        if x is None:
            raise ApiError(404, "The absence period was not found.")
        return x

    def get_time_off(self, req):
        return 200, {}, {"success": True, "data": self.render_time_off(self._time_off(req))}

    def delete_time_off(self, req):
        x = self._time_off(req)
        del self.store["time_offs"][x["id"]]
        return 200, {}, {"success": True, "data": {"message": "The absence period was deleted."}}

    def admin_time_off_status(self, req):
        x = self._time_off(req)
        f = Fields(req.json(), False)
        f.enum("status", TIME_OFF_STATUSES, required=True)
        x["status"] = f.done()["status"]
        x["updated_at"] = max(time.time(), x["updated_at"] + 0.001)
        return 200, {}, {"success": True, "data": self.render_time_off(x)}

    def _absence_filter(self, req, items, dated):
        emps = self._employee_filter(req)
        sd, ed = self._date_param(req, "start_date"), self._date_param(req, "end_date")
        out = []
        for x in items:
            if emps is not None and x["employee_id"] not in emps:
                continue
            xs, xe = parse_date(x["start_date"]), parse_date(x["end_date"])
            if sd and xe < sd:
                continue
            if ed and xs > ed:
                continue
            if not dated(x):
                continue
            out.append(x)
        out.sort(key=lambda x: (x["start_date"], str(x["id"])))
        return out

    def list_time_offs(self, req):
        limit, page = self._page_params(req)
        uf, ut = self._date_param(req, "updated_from"), self._date_param(req, "updated_to")

        def dated(x):
            d = datetime.datetime.fromtimestamp(x["updated_at"], TZ).date()
            return not ((uf and d < uf) or (ut and d > ut))
        items = self._absence_filter(req, self.store["time_offs"].values(), dated)
        return self._paged(items, limit, page, self.render_time_off)

    # ---- absence periods (hours) -------------------------------------------------
    def render_absence_period(self, x):
        t = self.store["refs"]["time_off_types"].get(x["time_off_type_id"]) or {}
        sd, ed = parse_date(x["start_date"]), parse_date(x["end_date"])
        if sd == ed:
            (h1, m1), (h2, m2) = [map(int, s.split(":")) for s in (x["start_time"], x["end_time"])]
            start, end = utc_iso(sd, h1, m1), utc_iso(sd, h2, m2)
            breakdowns = [{"date": x["start_date"], "effective_duration": (h2 * 60 + m2) - (h1 * 60 + m1)}]
        else:
            start, end = utc_iso(sd), utc_iso(ed + datetime.timedelta(days=1))
            breakdowns = []
            d = sd
            while d <= ed:
                mins = WORKDAY_MIN
                if (d == sd and x["half_day_start"]) or (d == ed and x["half_day_end"]):
                    mins //= 2
                breakdowns.append({"date": d.isoformat(), "effective_duration": mins})
                d += datetime.timedelta(days=1)
        return {"type": "AbsencePeriod", "attributes": {
            "id": x["id"], "measurement_unit": "hour",
            "effective_duration": sum(b["effective_duration"] for b in breakdowns),
            "employee": self._short_employee(x["employee_id"]),
            "absence_type": {"type": "AbsenceType", "attributes": {"id": t.get("uuid"), "name": t.get("name"),
                                                                  "time_off_type_id": t.get("id")}},
            "certificate": {"status": "not-required"}, "start": start, "end": end,
            "half_day_start": self._half(x["half_day_start"]), "half_day_end": self._half(x["half_day_end"]),
            "comment": x["comment"], "origin": "web" if x["created_by"] == "HR" else "api", "status": x["status"],
            "timezone": "Europe/Berlin", "created_by": 1,
            "created_at": ts_iso(x["created_at"]), "updated_at": ts_iso(x["updated_at"]),
            "approved_at": ts_iso(x["updated_at"]) if x["status"] == "approved" else None,
            "breakdowns": breakdowns}}

    def _create_absence_period(self, body, form, admin=False):
        v, t = self._check_absence(body, form, "hour", admin)
        sd, ed = parse_date(v["start_date"]), parse_date(v["end_date"])
        single = sd == ed
        now = time.time()
        x = {"id": str(uuid.uuid4()), "employee_id": v["employee_id"], "time_off_type_id": v["time_off_type_id"],
             "start_date": v["start_date"], "end_date": v["end_date"],
             "start_time": v.get("start_time") if single else None, "end_time": v.get("end_time") if single else None,
             # half-day flags are only considered when the period spans several days
             "half_day_start": bool(v.get("half_day_start")) and not single,
             "half_day_end": bool(v.get("half_day_end")) and not single,
             "comment": v.get("comment"), "status": v["status"], "created_by": "HR" if admin else "API",
             "created_at": now, "updated_at": now}
        self.store["absence_periods"][x["id"]] = x
        return x

    def create_absence_period(self, req):
        x = self._create_absence_period(self._form(req), True)
        # The vendor's own example answers a list in "data" (the schema says an object).
        return 201, {}, {"success": True, "data": [self.render_absence_period(x)]}

    def admin_create_absence_period(self, req):
        x = self._create_absence_period(req.json(), False, admin=True)
        return 201, {}, {"success": True, "data": self.render_absence_period(x)}

    def _absence_period(self, req):
        x = self.store["absence_periods"].get(req.match.group(1))
        if x is None:
            try:
                uuid.UUID(req.match.group(1))
            except ValueError:
                raise ApiError(400, "The absence period id is invalid.")
            raise ApiError(404, "The absence period was not found.")
        return x

    def delete_absence_period(self, req):
        x = self._absence_period(req)
        del self.store["absence_periods"][x["id"]]
        return 200, {}, {"success": True, "data": {"message": "The absence period was deleted."}}

    def admin_absence_period_status(self, req):
        x = self._absence_period(req)
        f = Fields(req.json(), False)
        f.enum("status", TIME_OFF_STATUSES, required=True)
        x["status"] = f.done()["status"]
        x["updated_at"] = max(time.time(), x["updated_at"] + 0.001)
        return 200, {}, {"success": True, "data": self.render_absence_period(x)}

    def list_absence_periods(self, req):
        limit, page = self._page_params(req)       # page-level offset since Aug 2023
        uf, ut = self._datetime_param(req, "updated_from"), self._datetime_param(req, "updated_to")
        types = set(req.param_list("absence_types[]"))
        ids = set(req.param_list("absence_periods[]"))
        by_uuid = {t["uuid"]: t["id"] for t in self.store["refs"]["time_off_types"].values()}

        def dated(x):
            if uf and x["updated_at"] < uf:
                return False
            if ut and x["updated_at"] > ut:
                return False
            if types and not ({str(x["time_off_type_id"])} | {u for u, i in by_uuid.items()
                                                              if i == x["time_off_type_id"]}) & types:
                return False
            return not ids or x["id"] in ids
        items = self._absence_filter(req, self.store["absence_periods"].values(), dated)
        return self._paged(items, limit, page, self.render_absence_period)

    # ---- v2 attendance periods ---------------------------------------------------
    @staticmethod
    def _local_dt(v):
        """A local date-time without offset (what v2 takes), as a naive datetime; None if malformed."""
        if not isinstance(v, str):
            return None
        m = LOCAL_DT_RE.fullmatch(v)
        if not m or parse_date(m.group(1)) is None:
            return None
        try:
            d = parse_date(m.group(1))
            return datetime.datetime(d.year, d.month, d.day, int(m.group(2)), int(m.group(3)), int(m.group(4) or 0))
        except ValueError:
            return None

    def render_attendance(self, a):
        return {"id": a["id"], "person": {"id": str(a["person_id"])}, "type": a["type"],
                "start": {"date_time": a["start"]}, "end": {"date_time": a["end"]} if a["end"] else None,
                "comment": a["comment"], "status": a["status"], "timezone_id": "Europe/Berlin",
                "project": {"id": a["project_id"]} if a["project_id"] else None,
                "created_at": ts_iso(a["created_at"]), "updated_at": ts_iso(a["updated_at"])}

    def _check_attendance(self, body, current=None):
        errs = []

        def bad(field, msg):
            errs.append({"field": field, "message": msg})
        create = current is None
        person = body.get("person", None if create else current and {"id": str(current["person_id"])})
        pid = None
        if create or "person" in body:
            if not isinstance(person, dict) or not isinstance(person.get("id"), str) or not person["id"].isdigit():
                bad("person.id", "person.id is required and must be a string holding the person's id")
            else:
                pid = int(person["id"])
                if not create and pid != current["person_id"]:
                    bad("person.id", "the person of an attendance period cannot be changed")
                elif pid not in self.store["employees"]:
                    errs.append({"field": "person.id", "message": "Person %s not found" % person["id"],
                                 "status": 404})
        typ = body.get("type", "WORK" if create else current["type"])
        if typ not in ATTENDANCE_TYPES:
            bad("type", "type must be one of WORK, BREAK")
        start = current["start"] if current else None
        if create or "start" in body:
            s = body.get("start")
            start = s.get("date_time") if isinstance(s, dict) else None
            if self._local_dt(start) is None:
                bad("start.date_time", "start.date_time is required: a local date-time without offset, "
                                       "e.g. 2026-11-02T09:00:00")
        end = current["end"] if current else None
        if "end" in body:
            e = body.get("end")
            end = e.get("date_time") if isinstance(e, dict) else None
            if e is not None and self._local_dt(end) is None:
                bad("end.date_time", "end.date_time must be a local date-time without offset, e.g. 2026-11-02T17:00:00")
        if not errs and end and self._local_dt(end) <= self._local_dt(start):
            bad("end.date_time", "the end must be after the start")
        comment = body.get("comment", current["comment"] if current else None)
        if comment is not None and not isinstance(comment, str):
            bad("comment", "comment must be a string")
        project = body.get("project", None)
        if project is not None:
            bad("project.id", "Project %s not found" % (project.get("id") if isinstance(project, dict) else project))
        if errs:
            status = 404 if all(e.get("status") == 404 for e in errs) else 422
            raise ApiError(status, errs)
        pid = pid if pid is not None else current["person_id"]
        s0, e0 = self._local_dt(start), self._local_dt(end) if end else None
        for a in self.store["attendance_periods"].values():
            if a["person_id"] != pid or (current and a["id"] == current["id"]) or a["type"] != typ:
                continue
            as0 = self._local_dt(a["start"])
            ae0 = self._local_dt(a["end"]) if a["end"] else None
            if (e0 is None or as0 < e0) and (ae0 is None or s0 < ae0):
                raise ApiError(409, [{"message": "The attendance period overlaps with attendance period %s" % a["id"],
                                      "title": "Conflict"}])
        return {"person_id": pid, "type": typ, "start": start, "end": end, "comment": comment, "project_id": None}

    def create_attendance(self, req):
        body = req.json()
        skip = req.param("skip_approval", "true")
        if skip not in ("true", "false"):
            raise ApiError(400, [{"field": "skip_approval", "message": "skip_approval must be true or false"}])
        v = self._check_attendance(body)
        now = time.time()
        a = dict(v, id=str(uuid.uuid4()), status="CONFIRMED" if skip == "true" else "PENDING",
                 created_at=now, updated_at=now)
        self.store["attendance_periods"][a["id"]] = a
        host = req.headers.get("Host") or "127.0.0.1"
        return 201, {}, {"id": a["id"], "_meta": {"links": {"self": {
            "href": "http://%s/v2/attendance-periods/%s" % (host, a["id"])}}}}

    def _attendance(self, req):
        a = self.store["attendance_periods"].get(req.match.group(1))
        if a is None:
            raise ApiError(404, [{"message": "The requested resource was not found.", "title": "Resource not found",
                                  "code": "common.requested_resource_not_found"}])
        return a

    def get_attendance(self, req):
        return 200, {}, self.render_attendance(self._attendance(req))

    def patch_attendance(self, req):
        a = self._attendance(req)
        v = self._check_attendance(req.json(), current=a)
        changed = any(a[k] != v[k] for k in ("type", "start", "end", "comment"))
        a.update({k: v[k] for k in ("type", "start", "end", "comment")})
        if changed:
            a["updated_at"] = time.time()
        return 200, {}, self.render_attendance(a)

    def delete_attendance(self, req):
        a = self._attendance(req)
        del self.store["attendance_periods"][a["id"]]
        return 204, {}, None

    def list_attendances(self, req):
        def v2_dt(name):
            raw = req.param(name)
            if raw in (None, ""):
                return None
            dt = self._local_dt(raw)
            if dt is None:      # forum: the documented "…Z" form is refused with this very message
                raise ApiError(400, [{"message": "Invalid request content.", "title": "Bad Request"}])
            return dt
        try:
            limit = int(req.param("limit") or 100)
        except ValueError:
            raise ApiError(400, [{"field": "limit", "message": "limit must be an integer"}])
        if not 1 <= limit <= 200:
            raise ApiError(400, [{"field": "limit", "message": "limit must be between 1 and 200"}])
        cursor = req.param("cursor")
        start = 0
        if cursor:
            try:
                start = int(base64.urlsafe_b64decode(cursor.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, [{"field": "cursor", "message": "invalid cursor"}])
        persons = set()
        for raw in req.param_list("person.id"):
            persons |= {x for x in raw.split(",") if x}
        bounds = [(k, v2_dt(k)) for k in ("start.date_time.gte", "start.date_time.lte",
                                          "updated_at.gte", "updated_at.lte")]
        out = []
        for a in sorted(self.store["attendance_periods"].values(), key=lambda a: (a["start"], a["id"])):
            if persons and str(a["person_id"]) not in persons:
                continue
            s = self._local_dt(a["start"])
            u = datetime.datetime.fromtimestamp(a["updated_at"], TZ).replace(tzinfo=None)
            ok = True
            for k, b in bounds:
                if b is None:
                    continue
                val = s if k.startswith("start") else u
                if (k.endswith("gte") and val < b) or (k.endswith("lte") and val > b):
                    ok = False
            if ok:
                out.append(a)
        page = out[start: start + limit]
        host = req.headers.get("Host") or "127.0.0.1"
        q = {k: v[-1] for k, v in req.params.items() if k != "cursor"}
        links = {"self": {"href": "http://%s/v2/attendance-periods?%s" % (host, urlencode(dict(q, **(
            {"cursor": cursor} if cursor else {}))))}}
        if start + limit < len(out):
            nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            links["next"] = {"href": "http://%s/v2/attendance-periods?%s" % (host, urlencode(dict(q, cursor=nxt)))}
        return 200, {}, {"_data": [self.render_attendance(a) for a in page], "_meta": {"links": links}}


def _default_seed():
    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "personio", "seed.json")
    return os.path.normpath(p) if os.path.exists(p) else None


if __name__ == "__main__":
    sys.exit(main(PersonioSandbox, default_seed=_default_seed()))
