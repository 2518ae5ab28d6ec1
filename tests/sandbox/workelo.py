#!/usr/bin/env python3
"""Workelo API sandbox (v1: organisation, employees, identifications, journeys) for hrsync tests.

    python3 tests/sandbox/workelo.py --port 0 --api-key CLIENT_SECRET [--client-id ID] [--seed FILE]

Base URL: http://127.0.0.1:PORT/v1 (as https://api.workelo.eu/v1); the token endpoint is
POST http://127.0.0.1:PORT/oauth/token. It follows hrsync's wire contract for Workelo
(what Workelo documents, and what hrsync assumes where it is silent); tests/sandbox/README.md
describes it.

What it holds hrsync to:
  * client-credentials tokens (form body), expiring after `token_ttl` seconds (admin config,
    default 7200) or at once (POST /_sandbox/tokens/expire): 401 {"error": "invalid_token"};
  * the hourly limit: `hourly` (admin config, "N/W": N requests per fixed window of W seconds;
    Workelo's is 1000/3600, "0" turns it off) counted per client, with X-RateLimit-Limit,
    X-RateLimit-Remaining and X-RateLimit-Reset (epoch seconds of the window's end) on every
    answer, and 429 with Retry-After past it. POST /_sandbox/consume {"n": N} spends N of the
    window as another client of the same token would;
  * lists: `limit` (at most 100, else 422) and `offset` -> {"data", "meta": {total, limit, offset}};
  * units: external id unique, the parent must exist and be of a higher level (422);
  * employees: e-mail and external id unique (422 "has already been taken"); the unit must
    be of the lowest level (422); DELETE /employees/{id} is the trap Workelo documents: it
    works, and wipes every journey the person was in (the store's `deleted_employees` shows it);
  * identifications: one per resource and employee (422 otherwise);
  * journeys: POST makes a draft, PUT .../start starts it (invitation_sent, or scheduled when
    invite_at is later than today), PUT .../cancel cancels it (422 when cancelled or closed);
    stakeholders must be employees; templates must exist for the mobility.
"""

import datetime
import math
import os
import re
import sys
import time
import uuid
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sandbox_base import ApiError, Sandbox, main, parse_rate, rate_to_str  # noqa: E402

EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MOBILITIES = ("onboarding", "crossboarding", "offboarding")
STATUSES = ("draft", "invitation_sent", "scheduled", "in_progress", "closed", "cancelled")
START_IDS = {"unit_organizations": 500, "employees": 10001, "identifications": 70001, "tracks": 300001}

DEFAULT_SEED = {
    "client_id": "hrsync-sandbox-client",
    "level_organizations": [{"id": 1, "name": "Entity", "rank": 1}, {"id": 2, "name": "Region", "rank": 2},
                            {"id": 3, "name": "Establishment", "rank": 3}],
    "user_roles": [{"id": 230, "name": "Administrator"}, {"id": 231, "name": "HR"},
                   {"id": 232, "name": "Manager"}, {"id": 234, "name": "Colleague"},
                   {"id": 235, "name": "Employee"}, {"id": 239, "name": "Archived"}],
    "identification_resources": [
        {"id": 5, "name": "Badge", "technical_id": "badge", "type": "text"},
        {"id": 6, "name": "Matricule", "technical_id": "matricule", "type": "text"},
        {"id": 7, "name": "Phone", "technical_id": "phone_number", "type": "text"},
        {"id": 8, "name": "Grade", "technical_id": "grade", "type": "dropdown",
         "options": ["Junior", "Middle", "Senior"]}],
    "templates": [{"id": 999056, "name": "Onboarding standard", "mobility": "onboarding"},
                  {"id": 999057, "name": "Offboarding standard", "mobility": "offboarding"},
                  {"id": 999058, "name": "Crossboarding standard", "mobility": "crossboarding"}],
}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def as_id(v):
    """An id as the API takes it: an integer, or digits in a string."""
    if is_int(v):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def valid_date(v):
    if not isinstance(v, str) or not DATE_RE.fullmatch(v):
        return False
    try:
        datetime.date.fromisoformat(v)
        return True
    except ValueError:
        return False


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WorkeloSandbox(Sandbox):
    name = "workelo"
    api_prefix = "/v1"
    client_id = DEFAULT_SEED["client_id"]

    # ---- base hooks --------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--client-id", default=None, help="the only client id accepted; --api-key is the secret")

    def apply_args(self, args):
        if args.client_id:
            self.client_id = self._cli_client_id = args.client_id

    def config_defaults(self):
        # rate_headers: "workelo" (X-RateLimit-*, Reset in epoch seconds), "teamtailor"
        # (X-Rate-Limit-*, Reset in seconds left: to test hrsync's reading of both), "none".
        return {"token_ttl": 7200, "hourly": "0", "rate_headers": "workelo"}

    def check_config(self, key, value):
        if key == "hourly":
            return rate_to_str(parse_rate(value))
        if key == "rate_headers":
            if value not in ("workelo", "teamtailor", "none"):
                raise ValueError("rate_headers must be workelo, teamtailor or none")
            return value
        if key == "token_ttl":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError("token_ttl must be a number of seconds > 0")
            return value
        raise ValueError("unknown config key %r" % key)

    def format_error(self, status, errors):
        req = self.current_request()
        if req is not None and req.raw_path == "/oauth/token" and status != 429:
            return {"error": errors[0].get("code", "invalid_request") if errors else "invalid_request",
                    "error_description": "; ".join(e.get("message", "") for e in errors)}
        if status == 404:
            return {"error": "not_found"}
        if status == 401:
            return {"error": "invalid_token", "error_description": "; ".join(e.get("message", "") for e in errors)}
        if status == 429:
            return {"error": "rate_limited", "error_description": "1000 requests per hour per token"}
        return {"errors": [{k: v for k, v in e.items() if k in ("field", "message")} for e in errors]}

    def unauthorized(self, why="the access token is missing, invalid or expired"):
        return 401, {}, self.format_error(401, [{"message": why}])

    def authenticate(self, req):
        if req.raw_path == "/oauth/token":
            return None
        return self.bearer_check(req)

    # ---- the hourly limit: a fixed window per client, with its headers ---------------
    def _window_locked(self, now_wall):
        """(limit, used, window end in epoch seconds) or None when the limit is off."""
        rate = parse_rate(self.config["hourly"])
        if rate is None:
            return None
        n, w = rate
        win = self.store["window"]
        if now_wall >= win["end"]:
            win["start"], win["end"], win["used"] = now_wall, now_wall + w, 0
        return n, win, w

    def route_rate_check_locked(self, req, now):
        got = self._window_locked(time.time())
        if got is None:
            return None
        n, win, _w = got
        if win["used"] >= n:
            self.store["throttled"] += 1
            return max(1, int(math.ceil(win["end"] - time.time())))
        win["used"] += 1
        return None

    def handle_api(self, req):
        kind, status, headers, data = super().handle_api(req)
        if req.raw_path.startswith(self.api_prefix + "/") or req.raw_path == "/oauth/token":
            with self.lock:
                now = time.time()
                got = self._window_locked(now)
                style = self.config["rate_headers"]
                if got is not None and style != "none":
                    n, win, _w = got
                    headers = dict(headers)
                    pre = "X-RateLimit-" if style == "workelo" else "X-Rate-Limit-"
                    headers[pre + "Limit"] = str(n)
                    headers[pre + "Remaining"] = str(max(0, n - win["used"]))
                    headers[pre + "Reset"] = str(int(math.ceil(win["end"] if style == "workelo" else win["end"] - now)))
        return kind, status, headers, data

    def admin_consume(self, req):
        body = self._admin_json(req)
        n = body.get("n") if isinstance(body, dict) else None
        if not is_int(n) or n < 0:
            raise ApiError(400, "n must be an integer >= 0")
        got = self._window_locked(time.time())
        if got is None:
            raise ApiError(400, "the hourly limit is off (config hourly)")
        got[1]["used"] += n
        return 200, {}, {"ok": True, "used": got[1]["used"], "limit": got[0]}

    def log_body(self, req):
        if "application/x-www-form-urlencoded" in (req.headers.get("Content-Type") or "").lower():
            out = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            if "client_secret" in out:
                out["client_secret"] = "***"
            return out
        return req.json_or_none()

    # ---- store -------------------------------------------------------------------
    def build_store(self, seed):
        seed = dict(DEFAULT_SEED, **(seed or {}))
        if seed.get("client_id") and not getattr(self, "_cli_client_id", None):
            self.client_id = seed["client_id"]
        st = {"tokens": {}, "tokens_issued": 0, "token_rejections": 0, "throttled": 0,
              "window": {"start": 0.0, "end": 0.0, "used": 0},
              "unit_organizations": {}, "employees": {}, "identifications": {}, "tracks": {},
              "deleted_employees": [], "next_id": dict(START_IDS),
              "emails": {}, "emp_ext": {}, "unit_ext": {}}
        for name in ("level_organizations", "user_roles", "identification_resources", "templates"):
            table = {}
            for it in seed.get(name) or []:
                if not isinstance(it, dict) or not is_int(it.get("id")) or not isinstance(it.get("name"), str):
                    raise ValueError("%s: every entry needs an integer id and a name" % name)
                table[it["id"]] = dict(it)
            st[name] = table
        ranks = [lv.get("rank") for lv in st["level_organizations"].values()]
        if not ranks or not all(is_int(r) for r in ranks):
            raise ValueError("level_organizations: every level needs an integer rank")
        st["lowest_rank"] = max(ranks)
        self.store = st
        return st

    def store_snapshot(self):
        st = self.store
        return {
            "unit_organizations": list(st["unit_organizations"].values()),
            "employees": [dict(e, identifications=[self.store["identifications"][i] for i in e["_idents"]])
                          for e in self._employees()],
            "tracks": list(st["tracks"].values()),
            "deleted_employees": st["deleted_employees"],
            "tokens": {"issued": st["tokens_issued"], "live": sum(1 for e in st["tokens"].values() if e > time.time()),
                       "rejected_expired": st["token_rejections"]},
            "throttled": st["throttled"],
            "window": dict(st["window"]),
        }

    def _employees(self):
        return list(self.store["employees"].values())

    def _next_id(self, kind):
        n = self.store["next_id"][kind]
        self.store["next_id"][kind] = n + 1
        return n

    # ---- routes ------------------------------------------------------------------
    def register_routes(self):
        r = self.route
        r("POST", r"/oauth/token", self.token)
        for name in ("user_roles", "level_organizations", "identification_resources"):
            r("GET", r"/" + name, lambda req, n=name: self.list_ref(req, n))
        r("GET", r"/templates", self.list_templates)
        r("GET", r"/unit_organizations", self.list_units)
        r("POST", r"/unit_organizations", self.create_unit)
        r("GET", r"/unit_organizations/(\d+)", self.get_unit)
        r("PUT", r"/unit_organizations/(\d+)", self.put_unit)
        r("GET", r"/employees", self.list_employees)
        r("POST", r"/employees", self.create_employee)
        r("GET", r"/employees/(\d+)", self.get_employee)
        r("PUT", r"/employees/(\d+)", self.put_employee)
        r("DELETE", r"/employees/(\d+)", self.delete_employee)
        r("GET", r"/employees/(\d+)/identifications", self.list_identifications)
        r("POST", r"/employees/(\d+)/identifications", self.create_identification)
        r("PUT", r"/identifications/(\d+)", self.put_identification)
        r("GET", r"/tracks", self.list_tracks)
        r("POST", r"/tracks", self.create_track)
        r("GET", r"/tracks/(\d+)", self.get_track)
        r("PUT", r"/tracks/(\d+)", self.put_track)
        r("PUT", r"/tracks/(\d+)/start", self.start_track)
        r("PUT", r"/tracks/(\d+)/cancel", self.cancel_track)
        a = self.admin_route
        a("POST", r"/tokens/expire", self.admin_expire_tokens)
        a("POST", r"/consume", self.admin_consume)
        a("POST", r"/tracks/(\d+)", self.admin_track)
        a("POST", r"/employees", self.admin_create_employee)

    # ---- auth --------------------------------------------------------------------
    def token(self, req):
        if "application/x-www-form-urlencoded" not in (req.headers.get("Content-Type") or "").lower():
            raise ApiError(400, [{"code": "invalid_request", "message": "the body must be x-www-form-urlencoded"}])
        f = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        if f.get("grant_type") != "client_credentials":
            raise ApiError(400, [{"code": "unsupported_grant_type", "message": "grant_type must be client_credentials"}])
        if f.get("client_id") != self.client_id or f.get("client_secret") != self.api_key:
            raise ApiError(401, [{"code": "invalid_client", "message": "client authentication failed"}])
        tok = "wk_" + uuid.uuid4().hex + uuid.uuid4().hex
        ttl = self.config["token_ttl"]
        self.store["tokens"][tok] = time.time() + ttl
        self.store["tokens_issued"] += 1
        return 200, {}, {"access_token": tok, "token_type": "Bearer", "expires_in": ttl}

    def admin_expire_tokens(self, req):
        now, n = time.time(), 0
        for k, exp in self.store["tokens"].items():
            if exp > now:
                self.store["tokens"][k] = now - 1
                n += 1
        return 200, {}, {"ok": True, "expired": n}

    # ---- lists -------------------------------------------------------------------
    def _page(self, req, items):
        def num(name, default):
            v = req.param(name)
            if v in (None, ""):
                return default
            if not re.fullmatch(r"\d+", v):
                raise ApiError(422, [{"field": name, "message": "must be a non-negative integer"}])
            return int(v)
        limit, offset = num("limit", 25), num("offset", 0)
        if limit < 1 or limit > 100:
            raise ApiError(422, [{"field": "limit", "message": "must be between 1 and 100"}])
        return 200, {}, {"data": items[offset:offset + limit], "meta": {"total": len(items), "limit": limit,
                                                                         "offset": offset}}

    def list_ref(self, req, name):
        return self._page(req, sorted(self.store[name].values(), key=lambda x: x["id"]))

    def list_templates(self, req):
        items = sorted(self.store["templates"].values(), key=lambda x: x["id"])
        mob = req.param("mobility")
        if mob:
            items = [t for t in items if t.get("mobility") == mob]
        return self._page(req, items)

    # ---- body checks -------------------------------------------------------------
    @staticmethod
    def _fail(errors):
        if errors:
            raise ApiError(422, errors)

    @staticmethod
    def _string(body, field, errors, required):
        v = body.get(field)
        if v is None or (isinstance(v, str) and not v.strip()):
            if required:
                errors.append({"field": field, "message": "can't be blank"})
            return None
        if not isinstance(v, str):
            errors.append({"field": field, "message": "must be a string"})
            return None
        return v

    def _ref(self, body, field, table, errors, required=False):
        if field not in body or body[field] is None:
            if required:
                errors.append({"field": field, "message": "can't be blank"})
            return None
        i = as_id(body[field])
        if i is None or i not in self.store[table]:
            errors.append({"field": field, "message": "does not exist"})
            return None
        return i

    # ---- units -------------------------------------------------------------------
    def list_units(self, req):
        items = sorted(self.store["unit_organizations"].values(), key=lambda x: x["id"])
        ext = req.param("external_id")
        if ext is not None:
            items = [u for u in items if u["external_id"] == ext]
        lvl = req.param("level_organization_id")
        if lvl:
            items = [u for u in items if str(u["level_organization_id"]) == lvl]
        return self._page(req, items)

    def _unit(self, req):
        u = self.store["unit_organizations"].get(int(req.match.group(1)))
        if u is None:
            raise ApiError(404, "not found")
        return u

    def get_unit(self, req):
        return 200, {}, {"data": self._unit(req)}

    def _check_unit(self, body, current=None):
        errors = []
        merged = dict(current or {}, **body)
        ext = self._string(merged, "external_id", errors, True)
        self._string(merged, "name", errors, True)
        lvl = self._ref(merged, "level_organization_id", "level_organizations", errors, True)
        parent = self._ref(merged, "parent_id", "unit_organizations", errors) if merged.get("parent_id") is not None else None
        if merged.get("parent_id") is not None and parent is None:
            errors[-1]["message"] = "must exist: create the parent unit first"
        if ext and self.store["unit_ext"].get(ext, (current or {}).get("id")) != (current or {}).get("id"):
            errors.append({"field": "external_id", "message": "has already been taken"})
        if lvl is not None and parent is not None:
            prank = self.store["level_organizations"][self.store["unit_organizations"][parent]["level_organization_id"]]["rank"]
            if prank >= self.store["level_organizations"][lvl]["rank"]:
                errors.append({"field": "parent_id", "message": "must be a unit of a higher level"})
        if current is not None and parent is not None:
            p = parent
            while p is not None:                 # no unit may become its own ancestor
                if p == current["id"]:
                    errors.append({"field": "parent_id", "message": "would make a cycle"})
                    break
                p = self.store["unit_organizations"][p].get("parent_id")
        self._fail(errors)
        lang = merged.get("language") or "fr"
        return {"external_id": ext, "name": merged["name"], "level_organization_id": lvl, "parent_id": parent,
                "language": lang}

    def create_unit(self, req):
        u = self._check_unit(req.json())
        u["id"] = self._next_id("unit_organizations")
        u["updated_at"] = now_iso()
        self.store["unit_organizations"][u["id"]] = u
        self.store["unit_ext"][u["external_id"]] = u["id"]
        return 201, {}, {"data": u}

    def put_unit(self, req):
        cur = self._unit(req)
        new = self._check_unit(req.json(), cur)
        if new["external_id"] != cur["external_id"]:
            del self.store["unit_ext"][cur["external_id"]]
            self.store["unit_ext"][new["external_id"]] = cur["id"]
        cur.update(new, updated_at=now_iso())
        return 200, {}, {"data": cur}

    # ---- employees ---------------------------------------------------------------
    def render_employee(self, e):
        return {k: v for k, v in e.items() if not k.startswith("_")}

    def list_employees(self, req):
        items = sorted(self._employees(), key=lambda x: x["id"])
        ext = req.param("external_id")
        if ext is not None:
            items = [e for e in items if e["external_id"] == ext]
        email = req.param("email")
        if email is not None:
            items = [e for e in items if e["email"].lower() == email.lower()]
        role = req.param("role")
        if role:
            ids = {r["id"] for r in self.store["user_roles"].values() if r["name"].lower() == role.lower()}
            items = [e for e in items if e["user_role_id"] in ids]
        return self._page(req, [self.render_employee(e) for e in items])

    def _employee(self, req):
        e = self.store["employees"].get(int(req.match.group(1)))
        if e is None:
            raise ApiError(404, "not found")
        return e

    def get_employee(self, req):
        return 200, {}, {"data": self.render_employee(self._employee(req))}

    def _check_employee(self, body, current=None):
        errors = []
        merged = dict(current or {}, **body)
        cid = (current or {}).get("id")
        self._string(merged, "first_name", errors, True)
        self._string(merged, "last_name", errors, True)
        email = self._string(merged, "email", errors, True)
        if email and not EMAIL_RE.fullmatch(email):
            errors.append({"field": "email", "message": "is invalid"})
        elif email and self.store["emails"].get(email.lower(), cid) != cid:
            errors.append({"field": "email", "message": "has already been taken"})
        ext = self._string(merged, "external_id", errors, False)
        if ext and self.store["emp_ext"].get(ext, cid) != cid:
            errors.append({"field": "external_id", "message": "has already been taken"})
        unit = self._ref(merged, "unit_organization_id", "unit_organizations", errors, True)
        if unit is not None:
            u = self.store["unit_organizations"][unit]
            if self.store["level_organizations"][u["level_organization_id"]]["rank"] != self.store["lowest_rank"]:
                errors.append({"field": "unit_organization_id",
                               "message": "must be a unit of the lowest level (%s is a %s)" % (
                                   u["name"], self.store["level_organizations"][u["level_organization_id"]]["name"])})
        role = merged.get("user_role_id")
        if role is None:
            role = next(r["id"] for r in self.store["user_roles"].values() if r["name"] == "Colleague")
        elif as_id(role) not in self.store["user_roles"]:
            errors.append({"field": "user_role_id", "message": "does not exist"})
        self._fail(errors)
        return {"first_name": merged["first_name"], "last_name": merged["last_name"], "email": email,
                "job_position": merged.get("job_position"), "external_id": ext, "unit_organization_id": unit,
                "user_role_id": as_id(role), "language": merged.get("language") or "fr"}

    def _index_employee(self, e, old=None):
        if old:
            self.store["emails"].pop(old["email"].lower(), None)
            if old.get("external_id"):
                self.store["emp_ext"].pop(old["external_id"], None)
        self.store["emails"][e["email"].lower()] = e["id"]
        if e.get("external_id"):
            self.store["emp_ext"][e["external_id"]] = e["id"]

    def _create_employee(self, body):
        e = self._check_employee(body)
        e["id"] = self._next_id("employees")
        e["updated_at"] = now_iso()
        e["_idents"] = []
        self.store["employees"][e["id"]] = e
        self._index_employee(e)
        return e

    def create_employee(self, req):
        return 201, {}, {"data": self.render_employee(self._create_employee(req.json()))}

    def admin_create_employee(self, req):
        return 200, {}, {"data": self.render_employee(self._create_employee(self._admin_json(req)))}

    def put_employee(self, req):
        cur = self._employee(req)
        new = self._check_employee(req.json(), cur)
        old = dict(cur)
        cur.update(new, updated_at=now_iso())
        self._index_employee(cur, old)
        return 200, {}, {"data": self.render_employee(cur)}

    def delete_employee(self, req):
        """Workelo's trap: irreversible, and every journey the person was in goes with them."""
        e = self._employee(req)
        wiped = [t["id"] for t in self.store["tracks"].values()
                 if t["employee_id"] == e["id"] or e["id"] in (t.get("implications") or {}).values()]
        for t in wiped:
            del self.store["tracks"][t]
        for i in e["_idents"]:
            self.store["identifications"].pop(i, None)
        del self.store["employees"][e["id"]]
        self.store["emails"].pop(e["email"].lower(), None)
        if e.get("external_id"):
            self.store["emp_ext"].pop(e["external_id"], None)
        self.store["deleted_employees"].append({"id": e["id"], "external_id": e.get("external_id"),
                                                "tracks_wiped": wiped})
        return 204, {}, None

    # ---- identifications ---------------------------------------------------------
    def list_identifications(self, req):
        e = self._employee(req)
        return self._page(req, [self.store["identifications"][i] for i in e["_idents"]])

    def _check_ident(self, body, employee, current=None):
        errors = []
        res = self._ref(body, "identification_resource_id", "identification_resources", errors, True)
        v = body.get("value")
        if v is not None and not isinstance(v, str):
            errors.append({"field": "value", "message": "must be a string"})
        if res is not None:
            r = self.store["identification_resources"][res]
            if r.get("type") == "dropdown" and v is not None and v not in r.get("options", []):
                errors.append({"field": "value", "message": "is not one of the options of %s" % r["name"]})
            if r.get("type") == "date" and v is not None and not valid_date(v):
                errors.append({"field": "value", "message": "must be a date (YYYY-MM-DD)"})
            other = [i for i in employee["_idents"] if self.store["identifications"][i]["identification_resource_id"] == res
                     and (current is None or i != current["id"])]
            if other:
                errors.append({"field": "identification_resource_id", "message": "has already been taken"})
        self._fail(errors)
        return {"identification_resource_id": res, "value": v, "employee_id": employee["id"]}

    def create_identification(self, req):
        e = self._employee(req)
        x = self._check_ident(req.json(), e)
        x["id"] = self._next_id("identifications")
        self.store["identifications"][x["id"]] = x
        e["_idents"].append(x["id"])
        return 201, {}, {"data": x}

    def put_identification(self, req):
        cur = self.store["identifications"].get(int(req.match.group(1)))
        if cur is None:
            raise ApiError(404, "not found")
        body = dict(req.json())
        body.setdefault("identification_resource_id", cur["identification_resource_id"])
        new = self._check_ident(body, self.store["employees"][cur["employee_id"]], cur)
        cur.update(new)
        return 200, {}, {"data": cur}

    # ---- tracks ------------------------------------------------------------------
    def list_tracks(self, req):
        items = sorted(self.store["tracks"].values(), key=lambda x: x["id"])
        for name in ("employee_id", "mobility", "status"):
            v = req.param(name)
            if v:
                items = [t for t in items if str(t[name]) == v]
        since = req.param("updated_since")
        if since:
            items = [t for t in items if t["updated_at"] >= since.replace("+00:00", "Z")]
        return self._page(req, items)

    def _track(self, req):
        t = self.store["tracks"].get(int(req.match.group(1)))
        if t is None:
            raise ApiError(404, "not found")
        return t

    def get_track(self, req):
        return 200, {}, {"data": self._track(req)}

    def _implications(self, body, errors):
        imp = body.get("implications")
        if imp is None:
            return {}
        if not isinstance(imp, dict):
            errors.append({"field": "implications", "message": "must be an object"})
            return {}
        out = {}
        for k, v in imp.items():
            if k not in ("hr_id", "manager_id", "buddy_id"):
                errors.append({"field": "implications." + k, "message": "is not a stakeholder"})
            elif v is not None:
                i = as_id(v)
                if i is None or i not in self.store["employees"]:
                    errors.append({"field": "implications." + k, "message": "is not an employee"})
                else:
                    out[k] = i
            else:
                out[k] = None
        return out

    def _dates(self, merged, errors):
        for f in ("start_date", "end_date"):
            v = merged.get(f)
            if v is None and f == "start_date":
                errors.append({"field": f, "message": "can't be blank"})
            elif v is not None and not valid_date(v):
                errors.append({"field": f, "message": "must be a date (YYYY-MM-DD)"})
        s, e = merged.get("start_date"), merged.get("end_date")
        if valid_date(s) and valid_date(e) and e < s:
            errors.append({"field": "end_date", "message": "must be after the start date"})

    def create_track(self, req):
        body = req.json()
        errors = []
        mob = body.get("mobility")
        if mob not in MOBILITIES:
            errors.append({"field": "mobility", "message": "must be one of %s" % ", ".join(MOBILITIES)})
        emp = self._ref(body, "employee_id", "employees", errors, True)
        self._dates(body, errors)
        imp = self._implications(body, errors)
        tpls = body.get("template_ids")
        if not isinstance(tpls, list) or not tpls:
            errors.append({"field": "template_ids", "message": "must list at least one template"})
        else:
            for t in tpls:
                tt = self.store["templates"].get(as_id(t))
                if tt is None:
                    errors.append({"field": "template_ids", "message": "template %s does not exist" % t})
                elif mob in MOBILITIES and tt.get("mobility") != mob:
                    errors.append({"field": "template_ids", "message": "template %s is not a %s template" % (t, mob)})
        self._fail(errors)
        t = {"id": self._next_id("tracks"), "mobility": mob, "status": "draft", "employee_id": emp,
             "start_date": body["start_date"], "end_date": body.get("end_date"), "implications": imp,
             "template_ids": [as_id(x) for x in tpls], "invite_at": None, "progression": 0,
             "apply_on_actions": None, "updated_at": now_iso()}
        self.store["tracks"][t["id"]] = t
        return 201, {}, {"data": t}

    def start_track(self, req):
        t = self._track(req)
        body = req.json()
        inv = body.get("invite_at")
        if inv is not None and not valid_date(inv):
            raise ApiError(422, [{"field": "invite_at", "message": "must be a date (YYYY-MM-DD)"}])
        if t["status"] == "draft":
            later = inv is not None and inv > datetime.date.today().isoformat()
            t.update(status="scheduled" if later else "invitation_sent", invite_at=inv, updated_at=now_iso())
        elif t["status"] == "cancelled":
            raise ApiError(422, [{"field": "status", "message": "a cancelled journey cannot be started"}])
        return 200, {}, {"data": t}

    def put_track(self, req):
        t = self._track(req)
        body = req.json()
        errors = []
        for k in body:
            if k not in ("start_date", "end_date", "apply_on_actions", "implications"):
                errors.append({"field": k, "message": "cannot be changed on a journey"})
        self._dates(dict(t, **{k: v for k, v in body.items() if k in ("start_date", "end_date")}), errors)
        imp = self._implications(body, errors) if "implications" in body else None
        if t["status"] in ("cancelled", "closed"):
            errors.append({"field": "status", "message": "a %s journey cannot be changed" % t["status"]})
        self._fail(errors)
        for k in ("start_date", "end_date", "apply_on_actions"):
            if k in body:
                t[k] = body[k]
        if imp is not None:
            t["implications"] = dict(t["implications"], **imp)
        t["updated_at"] = now_iso()
        return 200, {}, {"data": t}

    def cancel_track(self, req):
        t = self._track(req)
        if t["status"] in ("cancelled", "closed"):
            raise ApiError(422, [{"field": "status", "message": "the journey is already %s" % t["status"]}])
        t.update(status="cancelled", updated_at=now_iso())
        return 200, {}, {"data": t}

    def admin_track(self, req):
        """Move a journey on as its people would: {"status", "progression"}."""
        t = self.store["tracks"].get(int(req.match.group(1)))
        if t is None:
            raise ApiError(404, "not found")
        body = self._admin_json(req)
        if "status" in body:
            if body["status"] not in STATUSES:
                raise ApiError(400, "status must be one of %s" % ", ".join(STATUSES))
            t["status"] = body["status"]
        if "progression" in body:
            t["progression"] = body["progression"]
        t["updated_at"] = now_iso()
        return 200, {}, {"data": t}


if __name__ == "__main__":
    sys.exit(main(WorkeloSandbox))
