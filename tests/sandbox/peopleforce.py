#!/usr/bin/env python3
"""PeopleForce public API v3 sandbox for hrsync tests (Python 3 stdlib only).

    python3 tests/sandbox/peopleforce.py --port 0 --api-key K \
        --seed tests/fixtures/peopleforce/seed.json

Behaviour follows PeopleForce's published API v3 documentation (its OpenAPI document) where
it speaks, and what hrsync's tests need where it is silent; tests/sandbox/README.md describes it.
"""

import datetime
import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sandbox_base import ApiError, Sandbox, iso_utc, main  # noqa: E402

REF_LISTS = ("leave_types", "departments", "locations", "positions", "divisions",
             "job_levels", "asset_categories", "termination_types", "termination_reasons")

PAGE_EMPLOYEES = 50
PAGE_ASSETS = 50
PAGE_REFS = 50
PAGE_LEAVES = 100

LEAVE_STATES = ("pending", "approved", "rejected", "withdrawn")
EMPLOYEE_STATUSES = ("active", "all", "terminated", "employed")

EMPLOYEE_STRING_FIELDS = ("employee_number", "middle_name", "mobile_number", "work_phone_number")
# keys of the employee object that are never custom fields (read-only or known)
EMPLOYEE_KNOWN_KEYS = {
    "id", "employee_number", "first_name", "middle_name", "last_name", "full_name", "email",
    "personal_email", "mobile_number", "work_phone_number", "date_of_birth", "gender", "hired_on",
    "active", "terminated_on", "termination", "position", "custom_fields", "created_at",
    "updated_at", "status",
}
POSITION_REFS = (("position_id", "positions"), ("location_id", "locations"),
                 ("division_id", "divisions"), ("department_id", "departments"),
                 ("job_level_id", "job_levels"))

EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

START_IDS = {"employees": 1000, "leave_requests": 5000, "assets": 8000,
             "asset_assignments": 9000, "employee_positions": 3000}


def humanize(field):
    f = field[:-3] if field.endswith("_id") else field
    s = f.replace("_", " ")
    return s[:1].upper() + s[1:]


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def parse_date(v):
    """date or None for a strict YYYY-MM-DD real calendar date."""
    if not isinstance(v, str) or not DATE_RE.fullmatch(v):
        return None
    try:
        return datetime.date.fromisoformat(v)
    except ValueError:
        return None


class Checker:
    """Collects Rails-style validation errors: {"field": f, "message": "<Human> <msg>"}."""

    def __init__(self, body, partial=False):
        self.body = body
        self.partial = partial
        self.errors = []
        self.values = {}

    def error(self, field, message, full=False):
        self.errors.append({"field": field,
                            "message": message if full else "%s %s" % (humanize(field), message)})

    def has_error(self, field):
        return any(e["field"] == field for e in self.errors)

    def _get(self, field, required):
        """(True, value) when there is a non-blank value to type-check."""
        if field not in self.body:
            if required and not self.partial:
                self.error(field, "can't be blank")
            return False, None
        v = self.body[field]
        if v is None or (isinstance(v, str) and v.strip() == ""):
            if required:
                self.error(field, "can't be blank")
            else:
                self.values[field] = None
            return False, None
        return True, v

    def string(self, field, required=False):
        ok, v = self._get(field, required)
        if ok:
            if isinstance(v, str):
                self.values[field] = v
            else:
                self.error(field, "must be a string")

    def integer(self, field, required=False, digit_string=False):
        ok, v = self._get(field, required)
        if not ok:
            return None
        if digit_string and isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        if not is_int(v):
            self.error(field, "must be an integer")
            return None
        self.values[field] = v
        return v

    def ref(self, field, table, required=False, digit_string=False):
        v = self.integer(field, required, digit_string)
        if v is not None and v not in table:
            self.values.pop(field, None)
            self.error(field, "must exist")

    def number(self, field, required=False):
        ok, v = self._get(field, required)
        if ok:
            if (is_int(v) or isinstance(v, float)) and not (isinstance(v, float) and not math.isfinite(v)):
                self.values[field] = v
            else:
                self.error(field, "is not a number")

    def date(self, field, required=False):
        ok, v = self._get(field, required)
        if ok:
            if parse_date(v) is None:
                self.error(field, "is not a valid date")
            else:
                self.values[field] = v

    def boolean(self, field, required=False):
        ok, v = self._get(field, required)
        if ok:
            if isinstance(v, bool):
                self.values[field] = v
            else:
                self.error(field, "must be true or false")

    def enum(self, field, choices, required=False):
        ok, v = self._get(field, required)
        if ok:
            if isinstance(v, str) and v in choices:
                self.values[field] = v
            else:
                self.error(field, "is not included in the list")

    def email(self, field, required=False):
        ok, v = self._get(field, required)
        if ok:
            if isinstance(v, str) and EMAIL_RE.fullmatch(v.strip()):
                self.values[field] = v.strip()
            else:
                self.error(field, "is invalid")

    def done(self):
        if self.errors:
            raise ApiError(422, self.errors)
        return self.values


def not_found():
    return ApiError(404, "Not found")


class PeopleForceSandbox(Sandbox):
    """PeopleForce public API v3 sandbox."""

    name = "peopleforce"
    api_prefix = "/api/public/v3"

    # ---- base hooks --------------------------------------------------------------
    def config_defaults(self):
        return {"metadata_style": "alternate"}

    def check_config(self, key, value):
        if key == "metadata_style":
            if value not in ("flat", "nested", "alternate"):
                raise ValueError("metadata_style must be flat, nested or alternate")
            return value
        raise ValueError("unknown config key %r" % key)

    def authenticate(self, req):
        if req.headers.get("X-API-KEY") != self.api_key:
            return self.unauthorized()
        return None

    def format_error(self, status, errors):
        return {"success": False, "errors": errors}

    def build_store(self, seed):
        st = {"refs": {}, "employees": {}, "employee_positions": {}, "leave_requests": {},
              "assets": {}, "asset_assignments": {}, "next_id": dict(START_IDS),
              # unique keys of employees -> id, as the platform's own indexes: a scan of every
              # employee per write held the interpreter long enough to bunch the requests
              # queued meanwhile at the rate limiter
              "employee_keys": {},
              # employee id -> ids of its positions: rendering one employee looks at its own
              # positions, not at every position of the store (which slowed each create as the
              # store grew)
              "positions_of": {}}
        for name in REF_LISTS:
            items = seed.get(name) or []
            if not isinstance(items, list):
                raise ValueError("%s must be a list" % name)
            table = {}
            for it in items:
                if not isinstance(it, dict) or not is_int(it.get("id")):
                    raise ValueError("%s: every entry needs an integer id" % name)
                table[it["id"]] = dict(it)
            st["refs"][name] = table
        self.store = st
        # optional pre-existing records (same validation as the API)
        try:
            for body in seed.get("employees") or []:
                self._create_employee(body)
            for body in seed.get("assets") or []:
                self._create_asset(body)
            for body in seed.get("leave_requests") or []:
                self._create_leave_request(body, admin=True)
        except ApiError as e:
            raise ValueError("seed record rejected: %s" % e.errors)
        return st

    def store_snapshot(self):
        st = self.store
        pidx, aidx = self.position_index(), self.assignment_index()
        return {
            "employees": [self.render_employee(e, pidx) for e in st["employees"].values()],
            "employee_positions": [dict(self.render_position(p), employee_id=p["employee_id"])
                                   for p in st["employee_positions"].values()],
            "leave_requests": [self.render_leave(l) for l in st["leave_requests"].values()],
            "assets": [self.render_asset(a, aidx) for a in st["assets"].values()],
            "asset_assignments": [self.render_assignment(a) for a in st["asset_assignments"].values()],
            "refs": {k: list(v.values()) for k, v in st["refs"].items()},
            "next_id": st["next_id"],
        }

    # ---- routes ------------------------------------------------------------------
    def register_routes(self):
        r = self.route
        r("GET", r"/employees", self.list_employees)
        r("POST", r"/employees", self.create_employee)
        r("GET", r"/employees/(\d+)", self.get_employee)
        r("PUT", r"/employees/(\d+)", self.update_employee)
        r("POST", r"/employees/(\d+)/terminate", self.terminate_employee)
        r("POST", r"/employees/(\d+)/activate", self.activate_employee)
        r("GET", r"/employees/(\d+)/positions", self.list_positions)
        r("POST", r"/employees/(\d+)/positions", self.create_position)
        r("PUT", r"/employees/(\d+)/positions/(\d+)", self.update_position)
        r("DELETE", r"/employees/(\d+)/positions/(\d+)", self.delete_position)
        r("GET", r"/employees/(\d+)/assets", self.employee_assets)
        r("GET", r"/leave_requests", self.list_leave_requests)
        r("GET", r"/leave_requests/pending", self.list_pending_leave_requests)
        r("POST", r"/leave_requests", self.create_leave_request)
        r("GET", r"/leave_requests/(\d+)", self.get_leave_request)
        r("DELETE", r"/leave_requests/(\d+)", self.delete_leave_request)
        r("GET", r"/assets", self.list_assets)
        r("POST", r"/assets", self.create_asset)
        r("GET", r"/assets/(\d+)", self.get_asset)
        r("PUT", r"/assets/(\d+)", self.update_asset)
        r("DELETE", r"/assets/(\d+)", self.delete_asset)
        r("POST", r"/asset_assignments", self.create_assignment)
        r("PUT", r"/asset_assignments/(\d+)", self.update_assignment)
        r("DELETE", r"/asset_assignments/(\d+)", self.delete_assignment)
        for name in REF_LISTS:
            r("GET", "/" + name, self._ref_lister(name))
        a = self.admin_route
        a("POST", r"/leave_requests", self.admin_create_leave_request)
        a("POST", r"/leave_requests/(\d+)/state", self.admin_leave_state)
        # what people do by hand in PeopleForce's own screens (hrsync reconcile's tests)
        a("POST", r"/employees", self.admin_create_employee)
        a("DELETE", r"/employees/(\d+)", self.admin_delete_employee)
        a("DELETE", r"/assets/(\d+)", self.delete_asset)

    # ---- helpers -----------------------------------------------------------------
    def _next_id(self, kind):
        n = self.store["next_id"][kind]
        self.store["next_id"][kind] = n + 1
        return n

    def _style(self, default):
        s = self.config.get("metadata_style", "alternate")
        return default if s == "alternate" else s

    def paginate(self, req, items, size, default_style, render=None):
        """items: the full filtered list; only the requested page is rendered."""
        try:
            page = int(req.param("page", "1"))
        except ValueError:
            page = 1
        page = max(page, 1)
        total = len(items)
        pages = max(1, int(math.ceil(total / float(size))))
        data = items[(page - 1) * size: page * size]
        if render is not None:
            data = [render(x) for x in data]
        meta = {"page": page, "pages": pages, "count": total, "items": len(data)}
        if self._style(default_style) == "nested":
            meta = {"pagination": meta}
        return 200, {}, {"data": data, "metadata": meta}

    def _ref_lister(self, name):
        def handler(req):
            items = list(self.store["refs"][name].values())
            return self.paginate(req, items, PAGE_REFS, "nested")
        return handler

    def _employee(self, req, group=1):
        e = self.store["employees"].get(int(req.match.group(group)))
        if e is None:
            raise not_found()
        return e

    # ---- rendering ---------------------------------------------------------------
    def render_position(self, p):
        return {k: p[k] for k in ("id", "effective_from", "position_id", "location_id",
                                  "division_id", "department_id", "job_level_id", "reporting_to_id")}

    def position_index(self):
        """employee id -> current position record, for every employee that has one."""
        return {eid: self.current_position(eid) for eid, ids in self.store["positions_of"].items() if ids}

    def current_position(self, employee_id):
        """The employee's current position (latest effective_from, then highest id), or None."""
        ps = self.store["employee_positions"]
        return max((ps[pid] for pid in self.store["positions_of"].get(employee_id, ())),
                   key=lambda p: (p["effective_from"], p["id"]), default=None)

    def render_employee(self, e, pos_index=None):
        out = {k: e[k] for k in ("id", "employee_number", "first_name", "middle_name", "last_name")}
        out["full_name"] = " ".join(x for x in (e["first_name"], e["last_name"]) if x)
        for k in ("email", "personal_email", "mobile_number", "work_phone_number", "date_of_birth",
                  "gender", "hired_on", "active", "terminated_on"):
            out[k] = e[k]
        out["termination"] = dict(e["termination"]) if e["termination"] else None
        cur = self.current_position(e["id"]) if pos_index is None else pos_index.get(e["id"])
        out["position"] = self.render_position(cur) if cur else None
        out["custom_fields"] = dict(e["custom_fields"])
        out["created_at"] = iso_utc(e["created_at"])
        out["updated_at"] = iso_utc(e["updated_at"])
        return out

    def render_leave(self, l):
        lt = self.store["refs"]["leave_types"].get(l["leave_type_id"]) or {}
        return {
            "id": l["id"], "employee_id": l["employee_id"], "leave_type_id": l["leave_type_id"],
            "leave_type": lt.get("name"), "state": l["state"], "amount": l["amount"],
            "tracking_time_in": lt.get("unit") or "days", "starts_on": l["starts_on"],
            "ends_on": l["ends_on"], "description": l["description"],
            "entries": [dict(x) for x in l["entries"]],
            "created_at": iso_utc(l["created_at"]), "updated_at": iso_utc(l["updated_at"]),
        }

    def render_assignment(self, a):
        return {"id": str(a["id"]), "asset_id": a["asset_id"], "user_id": a["user_id"],
                "issued_on": a["issued_on"], "returned_on": a["returned_on"],
                "created_at": iso_utc(a["created_at"]), "updated_at": iso_utc(a["updated_at"])}

    def assignment_index(self):
        idx = {}
        for x in self.store["asset_assignments"].values():
            idx.setdefault(x["asset_id"], []).append(x)
        return idx

    def render_asset(self, a, asg_index=None):
        if asg_index is None:
            asg_index = self.assignment_index()
        assignments = [self.render_assignment(x) for x in asg_index.get(a["id"], [])]
        return {"id": str(a["id"]), "name": a["name"], "code": a["code"],
                "serial_number": a["serial_number"], "description": a["description"],
                "location_id": a["location_id"], "asset_category_id": a["asset_category_id"],
                "asset_assignments": assignments,
                "created_at": iso_utc(a["created_at"]), "updated_at": iso_utc(a["updated_at"])}

    # ---- employees ---------------------------------------------------------------
    def list_employees(self, req):
        status = req.param("status", "active") or "active"
        if status not in EMPLOYEE_STATUSES:
            raise ApiError(422, [{"field": "status", "message": "Status is not included in the list"}])
        ids = set(req.param_list("ids[]"))
        emails = {x.strip().lower() for x in req.param_list("emails[]")}
        numbers = set(req.param_list("employee_numbers[]"))
        today = datetime.date.today().isoformat()
        out = []
        for e in self.store["employees"].values():
            if status == "active" and not e["active"]:
                continue
            if status == "terminated" and e["active"]:
                continue
            if status == "employed" and not (e["active"] and (e["hired_on"] is None or e["hired_on"] <= today)):
                continue
            if "ids[]" in req.params and str(e["id"]) not in ids:
                continue
            if "emails[]" in req.params and (e["email"] or "").lower() not in emails:
                continue
            if "employee_numbers[]" in req.params and e["employee_number"] not in numbers:
                continue
            out.append(e)
        idx = self.position_index()
        return self.paginate(req, out, PAGE_EMPLOYEES, "flat", lambda e: self.render_employee(e, idx))

    def get_employee(self, req):
        return 200, {}, {"data": self.render_employee(self._employee(req))}

    def _check_employee(self, body, partial, self_id=None, unique=True):
        c = Checker(body, partial)
        c.string("first_name", required=True)
        c.string("last_name", required=True)
        for f in EMPLOYEE_STRING_FIELDS:
            c.string(f)
        c.email("email")
        c.email("personal_email")
        c.date("date_of_birth")
        c.date("hired_on")
        c.enum("gender", ("male", "female"))
        email = c.values.get("email")
        number = c.values.get("employee_number")
        keys = self.store["employee_keys"]
        if unique and email and keys.get(("email", email.lower()), self_id) != self_id \
                and not c.has_error("email"):
            c.error("email", "Email has already been taken", full=True)
        if unique and number is not None and keys.get(("number", number), self_id) != self_id \
                and not c.has_error("employee_number"):
            c.error("employee_number", "Employee number has already been taken", full=True)
        values = c.done()
        custom, removed = {}, []
        for k, v in body.items():
            if k in EMPLOYEE_KNOWN_KEYS:
                continue
            if v is None:
                removed.append(k)
            elif isinstance(v, (str, int, float, bool)):
                custom[k] = v
        return values, custom, removed

    def _create_employee(self, body, unique=True):
        values, custom, _ = self._check_employee(body, partial=False, unique=unique)
        now = time.time()
        e = {"id": self._next_id("employees"), "employee_number": None, "first_name": None,
             "middle_name": None, "last_name": None, "email": None, "personal_email": None,
             "mobile_number": None, "work_phone_number": None, "date_of_birth": None,
             "gender": None, "hired_on": None, "active": True, "terminated_on": None,
             "termination": None, "custom_fields": custom, "created_at": now, "updated_at": now}
        e.update(values)
        self.store["employees"][e["id"]] = e
        self._index_employee(e, None)
        return e

    def _index_employee(self, e, before):
        """Keeps employee_keys in step with e (before: its (email, number) until now, or None)."""
        keys = self.store["employee_keys"]
        if before:
            old_email, old_number = before
            if old_email and keys.get(("email", old_email.lower())) == e["id"]:
                del keys[("email", old_email.lower())]
            if old_number is not None and keys.get(("number", old_number)) == e["id"]:
                del keys[("number", old_number)]
        if e["email"]:
            keys[("email", e["email"].lower())] = e["id"]
        if e["employee_number"] is not None:
            keys[("number", e["employee_number"])] = e["id"]

    def admin_create_employee(self, req):
        """An employee typed in by hand, or imported from a spreadsheet: the screens do not
        check that its employee number or e-mail is free (how a person gets two records)."""
        e = self._create_employee(req.json(), unique=False)
        return 200, {}, {"data": self.render_employee(e)}

    def admin_delete_employee(self, req):
        """An employee deleted in the screens (the API has no DELETE): its positions go too."""
        e = self._employee(req)
        del self.store["employees"][e["id"]]
        keys = self.store["employee_keys"]
        for k in [k for k, v in keys.items() if v == e["id"]]:
            del keys[k]
        for pid in self.store["positions_of"].pop(e["id"], ()):
            del self.store["employee_positions"][pid]
        return 200, {}, {"ok": True}

    def create_employee(self, req):
        e = self._create_employee(req.json())
        return 200, {}, {"data": self.render_employee(e)}

    def update_employee(self, req):
        e = self._employee(req)
        values, custom, removed = self._check_employee(req.json(), partial=True, self_id=e["id"])
        before = self.render_employee(e)
        was = (e["email"], e["employee_number"])
        e.update(values)
        self._index_employee(e, was)
        e["custom_fields"].update(custom)
        for k in removed:
            e["custom_fields"].pop(k, None)
        if self.render_employee(e) != before:
            e["updated_at"] = time.time()
        return 200, {}, {"data": self.render_employee(e)}

    def terminate_employee(self, req):
        e = self._employee(req)
        body = req.json()
        if not e["active"]:
            raise ApiError(422, [{"message": "Employee is already terminated"}])
        refs = self.store["refs"]
        c = Checker(body)
        c.date("effective_from", required=True)
        c.ref("termination_type_id", refs["termination_types"], required=True)
        c.ref("termination_reason_id", refs["termination_reasons"], required=True)
        c.boolean("eligible_for_rehire", required=True)
        c.string("comment")
        v = c.done()
        e["active"] = False
        e["terminated_on"] = v["effective_from"]
        e["termination"] = {"effective_from": v["effective_from"],
                            "termination_type_id": v["termination_type_id"],
                            "termination_reason_id": v["termination_reason_id"],
                            "eligible_for_rehire": v["eligible_for_rehire"],
                            "comment": v.get("comment")}
        e["updated_at"] = time.time()
        return 200, {}, {"data": self.render_employee(e)}

    def activate_employee(self, req):
        e = self._employee(req)
        if not e["active"]:
            e["active"] = True
            e["terminated_on"] = None
            e["termination"] = None
            e["updated_at"] = time.time()
        return 200, {}, {"data": self.render_employee(e)}

    # ---- positions ---------------------------------------------------------------
    def list_positions(self, req):
        e = self._employee(req)
        items = [self.render_position(p) for p in self.store["employee_positions"].values()
                 if p["employee_id"] == e["id"]]
        items.sort(key=lambda p: (p["effective_from"], p["id"]))
        return 200, {}, {"data": items}

    def _check_position(self, body, partial):
        refs = self.store["refs"]
        c = Checker(body, partial)
        c.date("effective_from", required=True)
        for field, table in POSITION_REFS:
            c.ref(field, refs[table])
        c.ref("reporting_to_id", self.store["employees"])
        return c.done()

    def create_position(self, req):
        e = self._employee(req)
        v = self._check_position(req.json(), partial=False)
        p = {"id": self._next_id("employee_positions"), "employee_id": e["id"],
             "effective_from": None, "position_id": None, "location_id": None, "division_id": None,
             "department_id": None, "job_level_id": None, "reporting_to_id": None}
        p.update(v)
        self.store["employee_positions"][p["id"]] = p
        self.store["positions_of"].setdefault(e["id"], set()).add(p["id"])
        e["updated_at"] = time.time()
        return 201, {}, {"data": self.render_position(p)}

    def _position(self, req):
        e = self._employee(req)
        p = self.store["employee_positions"].get(int(req.match.group(2)))
        if p is None or p["employee_id"] != e["id"]:
            raise not_found()
        return e, p

    def update_position(self, req):
        e, p = self._position(req)
        v = self._check_position(req.json(), partial=True)
        if any(p[k] != val for k, val in v.items()):
            p.update(v)
            e["updated_at"] = time.time()
        return 200, {}, {"data": self.render_position(p)}

    def delete_position(self, req):
        e, p = self._position(req)
        del self.store["employee_positions"][p["id"]]
        self.store["positions_of"][e["id"]].discard(p["id"])
        e["updated_at"] = time.time()
        return 204, {}, None

    def employee_assets(self, req):
        e = self._employee(req)
        asset_ids = {a["asset_id"] for a in self.store["asset_assignments"].values()
                     if a["user_id"] == e["id"] and a["returned_on"] is None}
        idx = self.assignment_index()
        items = [self.render_asset(a, idx) for a in self.store["assets"].values() if a["id"] in asset_ids]
        return 200, {}, {"data": items}

    # ---- leave requests ----------------------------------------------------------
    def _filter_int(self, req, name):
        raw = req.param(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise ApiError(422, [{"field": name, "message": "%s must be a Unix timestamp (integer)" % name}])

    def _filter_date(self, req, name):
        raw = req.param(name)
        if raw is None or raw == "":
            return None
        if parse_date(raw) is None:
            raise ApiError(422, [{"field": name, "message": "%s is not a valid date" % humanize(name)}])
        return raw

    def _leave_list(self, req, states=None):
        emp_ids = set(req.param_list("employee_ids[]"))
        if states is None and "states[]" in req.params:
            states = set(req.param_list("states[]"))
        starts_on = self._filter_date(req, "starts_on")
        ends_on = self._filter_date(req, "ends_on")
        bounds = [(f, op, self._filter_int(req, "%s[%s]" % (f, op)))
                  for f in ("created_at", "updated_at") for op in ("gt", "lt")]
        out = []
        for l in self.store["leave_requests"].values():
            if "employee_ids[]" in req.params and str(l["employee_id"]) not in emp_ids:
                continue
            if states is not None and l["state"] not in states:
                continue
            if starts_on and l["starts_on"] < starts_on:
                continue
            if ends_on and l["ends_on"] > ends_on:
                continue
            skip = False
            for f, op, ts in bounds:
                if ts is not None and not (l[f] > ts if op == "gt" else l[f] < ts):
                    skip = True
                    break
            if not skip:
                out.append(l)
        out.sort(key=lambda l: (l["starts_on"], l["id"]))
        return self.paginate(req, out, PAGE_LEAVES, "nested", self.render_leave)

    def list_leave_requests(self, req):
        return self._leave_list(req)

    def list_pending_leave_requests(self, req):
        return self._leave_list(req, states={"pending"})

    def get_leave_request(self, req):
        l = self.store["leave_requests"].get(int(req.match.group(1)))
        if l is None:
            raise not_found()
        return 200, {}, {"data": self.render_leave(l)}

    def _create_leave_request(self, body, admin=False):
        st = self.store
        c = Checker(body)
        c.ref("employee_id", st["employees"], required=True)
        c.ref("leave_type_id", st["refs"]["leave_types"], required=True)
        c.date("starts_on", required=True)
        c.date("ends_on", required=True)
        c.string("description")
        c.boolean("skip_approval")
        if admin:
            c.enum("state", LEAVE_STATES)
        s, e = parse_date(c.values.get("starts_on")), parse_date(c.values.get("ends_on"))
        if s and e and e < s:
            c.error("ends_on", "Ends on must be after or equal to starts on", full=True)
        entries = []
        raw = body.get("leave_request_entries")
        if raw is not None:
            if not isinstance(raw, list):
                c.error("leave_request_entries", "must be an array")
            else:
                for i, ent in enumerate(raw):
                    f = "leave_request_entries"
                    if not isinstance(ent, dict):
                        c.error(f, "Leave request entries[%d] must be an object" % i, full=True)
                        continue
                    d = parse_date(ent.get("occurs_on"))
                    amt = ent.get("amount")
                    if d is None:
                        c.error(f, "Leave request entries[%d] occurs on is not a valid date" % i, full=True)
                    elif s and e and not (s <= d <= e):
                        c.error(f, "Leave request entries[%d] occurs on must be within the leave request dates" % i,
                                full=True)
                    if not ((is_int(amt) or isinstance(amt, float)) and amt >= 0):
                        c.error(f, "Leave request entries[%d] amount is not a number" % i, full=True)
                    if d is not None and (is_int(amt) or isinstance(amt, float)):
                        entries.append({"date": ent["occurs_on"], "amount": amt})
        v = c.done()
        now = time.time()
        state = v.get("state") or ("approved" if v.get("skip_approval") else "pending")
        l = {"id": self._next_id("leave_requests"), "employee_id": v["employee_id"],
             "leave_type_id": v["leave_type_id"], "state": state,
             "amount": (e - s).days + 1, "starts_on": v["starts_on"], "ends_on": v["ends_on"],
             "description": v.get("description"), "entries": entries,
             "created_at": now, "updated_at": now}
        st["leave_requests"][l["id"]] = l
        return l

    def create_leave_request(self, req):
        l = self._create_leave_request(req.json())
        return 201, {}, self.render_leave(l)          # NOT wrapped in "data" (vendor spec)

    def delete_leave_request(self, req):
        lid = int(req.match.group(1))
        if lid not in self.store["leave_requests"]:
            raise not_found()
        del self.store["leave_requests"][lid]
        return 204, {}, None

    def admin_create_leave_request(self, req):
        l = self._create_leave_request(req.json(), admin=True)
        return 201, {}, {"data": self.render_leave(l)}

    def admin_leave_state(self, req):
        l = self.store["leave_requests"].get(int(req.match.group(1)))
        if l is None:
            raise not_found()
        c = Checker(req.json())
        c.enum("state", LEAVE_STATES, required=True)
        v = c.done()
        l["state"] = v["state"]
        l["updated_at"] = max(time.time(), l["updated_at"] + 0.001)
        return 200, {}, {"data": self.render_leave(l)}

    # ---- assets ------------------------------------------------------------------
    def list_assets(self, req):
        idx = self.assignment_index()
        return self.paginate(req, list(self.store["assets"].values()), PAGE_ASSETS, "flat",
                             lambda a: self.render_asset(a, idx))

    def _asset(self, req):
        a = self.store["assets"].get(int(req.match.group(1)))
        if a is None:
            raise not_found()
        return a

    def get_asset(self, req):
        return 200, {}, {"data": self.render_asset(self._asset(req))}

    def _check_asset(self, body, partial, self_id=None):
        refs = self.store["refs"]
        c = Checker(body, partial)
        c.string("name", required=True)
        c.string("code", required=True)
        c.ref("asset_category_id", refs["asset_categories"], required=True)
        c.ref("location_id", refs["locations"], required=True)
        c.string("serial_number")
        c.string("description")
        code = c.values.get("code")
        if code is not None:
            for a in self.store["assets"].values():
                if a["id"] != self_id and a["code"] == code:
                    c.error("code", "Code has already been taken", full=True)
                    break
        return c.done()

    def _create_asset(self, body):
        v = self._check_asset(body, partial=False)
        now = time.time()
        a = {"id": self._next_id("assets"), "name": None, "code": None, "serial_number": None,
             "description": None, "location_id": None, "asset_category_id": None,
             "created_at": now, "updated_at": now}
        a.update(v)
        self.store["assets"][a["id"]] = a
        return a

    def create_asset(self, req):
        a = self._create_asset(req.json())
        return 201, {}, self.render_asset(a)          # NOT wrapped in "data" (vendor spec)

    def update_asset(self, req):
        a = self._asset(req)
        v = self._check_asset(req.json(), partial=True, self_id=a["id"])
        if any(a[k] != val for k, val in v.items()):
            a.update(v)
            a["updated_at"] = time.time()
        return 200, {}, {"data": self.render_asset(a)}

    def delete_asset(self, req):
        a = self._asset(req)
        del self.store["assets"][a["id"]]
        for aid in [x["id"] for x in self.store["asset_assignments"].values() if x["asset_id"] == a["id"]]:
            del self.store["asset_assignments"][aid]
        return 204, {}, None

    # ---- asset assignments -------------------------------------------------------
    def _open_assignment(self, asset_id, exclude=None):
        for x in self.store["asset_assignments"].values():
            if x["asset_id"] == asset_id and x["returned_on"] is None and x["id"] != exclude:
                return x
        return None

    def create_assignment(self, req):
        st = self.store
        c = Checker(req.json())
        c.ref("asset_id", st["assets"], required=True, digit_string=True)
        c.date("issued_on", required=True)
        c.date("returned_on")
        c.ref("user_id", st["employees"], required=True)
        v = c.values
        if v.get("issued_on") and v.get("returned_on") and v["returned_on"] < v["issued_on"]:
            c.error("returned_on", "Returned on must be after or equal to issued on", full=True)
        if not c.errors and v.get("returned_on") is None and self._open_assignment(v["asset_id"]):
            c.error("asset_id", "Asset is already assigned", full=True)
        v = c.done()
        now = time.time()
        x = {"id": self._next_id("asset_assignments"), "asset_id": v["asset_id"],
             "user_id": v["user_id"], "issued_on": v["issued_on"],
             "returned_on": v.get("returned_on"), "created_at": now, "updated_at": now}
        st["asset_assignments"][x["id"]] = x
        st["assets"][x["asset_id"]]["updated_at"] = now
        return 200, {}, {"data": self.render_assignment(x)}

    def _assignment(self, req):
        x = self.store["asset_assignments"].get(int(req.match.group(1)))
        if x is None:
            raise not_found()
        return x

    def update_assignment(self, req):
        x = self._assignment(req)
        body = req.json()
        c = Checker(body, partial=True)
        c.date("issued_on", required=True)
        c.date("returned_on")
        c.ref("user_id", self.store["employees"], required=True)
        if not c.errors:
            merged = dict(x)
            merged.update(c.values)
            if merged["returned_on"] is not None and merged["returned_on"] < merged["issued_on"]:
                c.error("returned_on", "Returned on must be after or equal to issued on", full=True)
            elif merged["returned_on"] is None and self._open_assignment(x["asset_id"], exclude=x["id"]):
                c.error("asset_id", "Asset is already assigned", full=True)
        v = c.done()
        if any(x[k] != val for k, val in v.items()):
            x.update(v)
            x["updated_at"] = time.time()
            asset = self.store["assets"].get(x["asset_id"])
            if asset:
                asset["updated_at"] = x["updated_at"]
        return 200, {}, {"data": self.render_assignment(x)}

    def delete_assignment(self, req):
        x = self._assignment(req)
        del self.store["asset_assignments"][x["id"]]
        asset = self.store["assets"].get(x["asset_id"])
        if asset:
            asset["updated_at"] = time.time()
        return 204, {}, None


def _default_seed():
    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "peopleforce", "seed.json")
    return os.path.normpath(p) if os.path.exists(p) else None


if __name__ == "__main__":
    sys.exit(main(PeopleForceSandbox, default_seed=_default_seed()))
