#!/usr/bin/env python3
"""Troops integrations API sandbox for hrsync tests (Python 3 stdlib only).

    python3 tests/sandbox/troops.py --port 0 --api-key K \
        --seed tests/fixtures/troops/seed.json

Troops publishes only part of its API; this sandbox is strict to the wire contract hrsync
assumes where Troops is silent (tests/sandbox/README.md, "Troops"):

  * Bearer key; HTTPS is the caller's business; the API lives under /api/integrations.
  * TEA scope: every list needs filters[tea_id], every body "tea_id"; flexible references
    (erp:, ssn:, troops:) are valid only inside one TEA, so a worker of another TEA is
    unknown (404).
  * Nested query parameters, percent-encoded (a raw '[', ']' or '/' in a query is refused:
    400), cursor lists (limit <= 100, after, {"data", "next", "prev"}).
  * Errors {"error": {"code", "message", "details"}}: 400, 401, 404, 409 (already exists,
    already decided), 422 (validation). NIR keys are checked (2A/2B count as 19/18).
  * POST /candidates/import: <= 100 candidates, per-item results, three warning strategies.
    A phone that is not in international format (+33...) is a warning: the candidate cannot
    be activated by text message.
"""

import base64
import copy
import datetime
import os
import re
import sys
import time
import uuid
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sandbox_base import ApiError, Sandbox, iso_utc, main  # noqa: E402

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PERIOD_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# ISO 8601 with an offset: 2026-11-25T08:00:00+01:00 or ...Z
STAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")
LOOKUPS = ("agencies", "agency_users", "jobs", "business_sectors")
STRATEGIES = ("allow_warnings", "skip_candidates_with_warnings", "rollback_on_warnings")
MISSION_STATUSES = ("proposed", "accepted", "rejected", "cancelled")
VAR_KINDS = ("amount", "hours", "count")
MAX_PAGE = 100
MAX_BATCH = 100

# What each list accepts besides tea_id (anything else: 400, the contract is strict).
LIST_FILTERS = {
    "candidates": {"ref", "created_at"},
    "availabilities": {"candidate_ref", "started_at_greater_than", "started_at_less_than"},
    "paychecks": {"number", "candidate_ref"},
    "bookkeeping_variables": set(),
    "missions": {"status", "updated_at_greater_than", "candidate_ref"},
}
for _l in LOOKUPS:
    LIST_FILTERS[_l] = set()


def nir_valid(s):
    """The key of a 15-character NIR (2A/2B as 19/18); s without spaces, uppercase."""
    if len(s) != 15:
        return False
    body, key = s[:13], s[13:]
    if not key.isdigit():
        return False
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    if not body.isdigit() or body[0] not in "12378":
        return False
    return 97 - int(body) % 97 == int(key)


def parse_ref(value, field):
    """(scheme, id) of a flexible reference; ApiError 422 when it is not one."""
    if not isinstance(value, str) or ":" not in value:
        raise ApiError(422, [{"field": field, "message": "is not a flexible reference (erp:, ssn: or troops:)"}])
    scheme, ident = value.split(":", 1)
    if scheme == "erp":
        if not ident.strip():
            raise ApiError(422, [{"field": field, "message": "erp: reference is empty"}])
    elif scheme == "ssn":
        n = ident.replace(" ", "").upper()
        if not nir_valid(n):
            # Troops quotes what it received: hrsync masks it before it reaches a log.
            raise ApiError(422, [{"field": field, "message": "ssn:%s is not a valid NIR (bad key)" % ident}])
        ident = n
    elif scheme == "troops":
        if not UUID_RE.fullmatch(ident):
            raise ApiError(422, [{"field": field, "message": "troops: reference is not a UUID"}])
        ident = ident.lower()
    else:
        raise ApiError(422, [{"field": field, "message": "unknown reference scheme %r" % scheme}])
    return scheme, ident


def parse_stamp(v):
    if not isinstance(v, str) or not STAMP_RE.fullmatch(v):
        return None
    try:
        return datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bad(field, message, status=422):
    return ApiError(status, [{"field": field, "message": message}])


class TroopsSandbox(Sandbox):
    """Troops integrations API sandbox."""

    name = "troops"
    api_prefix = "/api/integrations"

    # ---- base hooks --------------------------------------------------------------
    def authenticate(self, req):
        if req.headers.get("Authorization") != "Bearer " + self.api_key:
            return self.unauthorized()
        return None

    def format_error(self, status, errors):
        code = {400: "invalid_parameters", 401: "unauthorized", 404: "not_found", 409: "conflict",
                422: "validation_failed", 429: "rate_limited"}.get(status, "server_error")
        details = [e for e in errors if "field" in e or "id" in e or "status" in e]
        msg = "; ".join(("%s %s" % (e["field"], e["message"])) if e.get("field") else e.get("message", "")
                        for e in errors if e.get("message")) or code
        if status == 401:
            msg = "authentication is lacking, invalid or expired"
        err = {"code": errors[0].get("code", code) if errors else code, "message": msg}
        if details:
            err["details"] = details
        return {"error": err}

    def build_store(self, seed):
        s = {"teas": {t["id"]: t for t in seed.get("teas", [])}, "candidates": {}, "availabilities": {},
             "paychecks": {}, "variables": {}, "missions": {}}
        for name in LOOKUPS:
            s[name] = list(seed.get(name, []))
        for c in seed.get("candidates", []):
            c = dict(c)
            c.setdefault("refs", {})
            c["refs"] = {k: c["refs"].get(k) for k in ("erp", "ssn")}
            c.setdefault("archived", False)
            c.setdefault("desired_jobs", [])
            c.setdefault("skills", [])
            c.setdefault("created_at", now_iso())
            c.setdefault("updated_at", c["created_at"])
            s["candidates"][c["id"]] = c
        return s

    def store_snapshot(self):
        s = dict(self.store)
        s["variables"] = {"%s/%s" % k: v for k, v in self.store["variables"].items()}
        s["candidates"] = {k: self.render_candidate(c) for k, c in self.store["candidates"].items()}
        return s

    def register_routes(self):
        r = self.route
        for name in LOOKUPS:
            r("GET", "/" + name, self._lookup(name))
        r("GET", r"/candidates", self.list_candidates)
        r("POST", r"/candidates", self.create_candidate)
        r("POST", r"/candidates/import", self.import_candidates)
        r("GET", r"/candidates/([^/]+)", self.get_candidate)
        r("PATCH", r"/candidates/([^/]+)", self.update_candidate)
        r("POST", r"/candidates/([^/]+)/(archive|unarchive)", self.archive_candidate)
        r("GET", r"/availabilities", self.list_availabilities)
        r("POST", r"/availabilities", self.create_availability)
        r("DELETE", r"/availabilities/([^/]+)", self.delete_availability)
        r("GET", r"/paychecks", self.list_paychecks)
        r("POST", r"/paychecks", self.create_paycheck)
        r("PATCH", r"/paychecks/([^/]+)", self.update_paycheck)
        r("DELETE", r"/paychecks/([^/]+)", self.delete_paycheck)
        r("GET", r"/bookkeeping_variables", self.list_variables)
        r("PUT", r"/bookkeeping_variables/([^/]+)", self.put_variable)
        r("DELETE", r"/bookkeeping_variables/([^/]+)", self.delete_variable)
        r("GET", r"/missions", self.list_missions)
        r("POST", r"/missions/([^/]+)/(accept|reject)", self.decide_mission)
        a = self.admin_route
        a("POST", r"/missions", self.admin_create_mission)
        a("POST", r"/missions/([^/]+)/status", self.admin_mission_status)

    # ---- queries, scope, pages -----------------------------------------------------
    def filters(self, req, listing):
        """The filters of a list as a dict ({"ref": {"erp": "8304/06"}, "tea_id": T}); strict."""
        if re.search(r"[\[\]/]", req.query):
            raise ApiError(400, "query keys and values must be percent-encoded "
                                "(filters%5Btea_id%5D=..., 8304%2F06)")
        out = {}
        for key, values in req.params.items():
            if key in ("limit", "after", "before"):
                continue
            m = re.fullmatch(r"filters\[([a-z_]+)\](?:\[([a-z_]+)\])?", key)
            if not m:
                raise ApiError(400, "unknown parameter %r" % key)
            name, sub = m.group(1), m.group(2)
            if name != "tea_id" and name not in LIST_FILTERS[listing]:
                raise ApiError(400, "unknown filter %r for %s" % (key, listing))
            if sub:
                out.setdefault(name, {})
                if not isinstance(out[name], dict):
                    raise ApiError(400, "filter %r is both a value and an object" % name)
                out[name][sub] = values[-1]
            else:
                out[name] = values[-1]
        tea = out.get("tea_id")
        if not tea:
            raise ApiError(400, "filters[tea_id] is required: flexible references are valid only inside one TEA")
        self.tea(tea, status=400)
        return out

    def tea(self, tea_id, status=422, field="tea_id"):
        if not isinstance(tea_id, str) or not UUID_RE.fullmatch(tea_id):
            raise bad(field, "must be a UUID", status)
        if tea_id not in self.store["teas"]:
            raise ApiError(404, "TEA %s not found" % tea_id)
        return tea_id

    def page(self, req, items):
        limit = req.param("limit", "100")
        try:
            limit = int(limit)
        except ValueError:
            raise ApiError(400, "limit must be an integer")
        if limit < 0 or limit > MAX_PAGE:
            raise ApiError(400, "limit must be between 0 and %d" % MAX_PAGE)
        if limit == 0:
            limit = MAX_PAGE
        start = 0
        after = req.param("after")
        if after:
            try:
                start = int(base64.urlsafe_b64decode(after.encode()).decode().split(":", 1)[1])
            except Exception:
                raise ApiError(400, "after is not a cursor this API gave")
        chunk = items[start:start + limit]
        nxt = base64.urlsafe_b64encode(("o:%d" % (start + limit)).encode()).decode() \
            if start + limit < len(items) else None
        prev = base64.urlsafe_b64encode(("o:%d" % max(0, start - limit)).encode()).decode() if start else None
        return 200, {}, {"data": chunk, "next": nxt, "prev": prev}

    def _lookup(self, name):
        def handler(req):
            f = self.filters(req, name)
            items = [{"id": x["id"], "name": x["name"], "code": x.get("code")} for x in self.store[name]
                     if x.get("tea_id") in (None, f["tea_id"])]
            return self.page(req, items)
        return handler

    # ---- candidates ------------------------------------------------------------------
    def render_candidate(self, c):
        out = copy.deepcopy(c)
        out["refs"] = {"troops": c["id"], "erp": c["refs"].get("erp"), "ssn": c["refs"].get("ssn")}
        return out

    def find_ref(self, tea, scheme, ident):
        """The candidate of the TEA with this reference, or None."""
        for c in self.store["candidates"].values():
            if c["tea_id"] != tea:
                continue
            if scheme == "troops" and c["id"] == ident:
                return c
            if scheme in ("erp", "ssn") and c["refs"].get(scheme) == ident:
                return c
        return None

    def candidate_at(self, req, tea, group=1):
        """The candidate named in the path: a UUID or a flexible reference (percent-decoded)."""
        seg = unquote(req.match.group(group))
        if UUID_RE.fullmatch(seg):
            c = self.store["candidates"].get(seg.lower())
            if c and c["tea_id"] == tea:
                return c
            raise ApiError(404, "candidate %s not found in this TEA" % seg)
        scheme, ident = parse_ref(seg, "ref")
        c = self.find_ref(tea, scheme, ident)
        if not c:
            raise ApiError(404, "candidate %s not found in this TEA" % seg)
        return c

    def list_candidates(self, req):
        f = self.filters(req, "candidates")
        ref = f.get("ref")
        if ref is not None and not isinstance(ref, dict):
            raise ApiError(400, "filters[ref] takes a scheme: filters[ref][erp]=...")
        items = []
        for c in self.store["candidates"].values():
            if c["tea_id"] != f["tea_id"]:
                continue
            if ref:
                ok = True
                for scheme, ident in ref.items():
                    if scheme not in ("erp", "ssn", "troops"):
                        raise ApiError(400, "unknown reference scheme %r" % scheme)
                    s, i = parse_ref("%s:%s" % (scheme, ident), "filters[ref]")
                    ok = ok and (c["id"] == i if s == "troops" else c["refs"].get(s) == i)
                if not ok:
                    continue
            items.append(self.render_candidate(c))
        return self.page(req, items)

    def get_candidate(self, req):
        tea = self.tea(req.param("filters[tea_id]"), status=400, field="filters[tea_id]")
        return 200, {}, {"data": self.render_candidate(self.candidate_at(req, tea))}

    def check_candidate(self, body, tea, partial=False, self_id=None):
        """Validated fields and the warnings; ApiError 422 (or 409 on an existing ref)."""
        errors, vals, warnings = [], {}, []

        def err(f, m):
            errors.append({"field": f, "message": m})

        if not partial or "invitation_type" in body:
            if body.get("invitation_type") not in ("manage", "invite"):
                err("invitation_type", "must be manage or invite")
            else:
                vals["invitation_type"] = body["invitation_type"]
        for f in ("first_name", "last_name"):
            if partial and f not in body:
                continue
            v = body.get(f)
            if not isinstance(v, str) or not v.strip():
                err(f, "can't be blank")
            elif len(v) > 150:
                err(f, "is too long (maximum is 150 characters)")
            else:
                vals[f] = v
        if not partial or "email" in body:
            v = body.get("email")
            if not isinstance(v, str) or not EMAIL_RE.fullmatch(v):
                err("email", "is invalid")
            else:
                taken = [c for c in self.store["candidates"].values() if c["tea_id"] == tea and
                         c["id"] != self_id and c.get("email", "").lower() == v.lower()]
                if taken:
                    err("email", "has already been taken in this TEA")
                vals["email"] = v
        if not partial or "phone" in body:
            v = body.get("phone")
            if not isinstance(v, str) or not re.fullmatch(r"\+?[0-9 .]{6,20}", v):
                err("phone", "is invalid")
            else:
                vals["phone"] = v
                if not v.startswith("+"):
                    warnings.append("phone is not in international format (+33...): the candidate cannot be "
                                    "activated by text message")
        if not partial or "address" in body:
            a = body.get("address")
            if not isinstance(a, dict):
                err("address", "can't be blank")
            else:
                for k in ("street", "zip_code", "city", "country"):
                    if not isinstance(a.get(k), str) or not a[k].strip():
                        err("address.%s" % k, "can't be blank")
                unknown = set(a) - {"street", "zip_code", "city", "country"}
                if unknown:
                    err("address", "unknown keys: %s" % ", ".join(sorted(unknown)))
                vals["address"] = a
        if "desired_jobs" in body:
            dj = body["desired_jobs"]
            jobs = {j["id"] for j in self.store["jobs"]}
            sectors = {s["id"] for s in self.store["business_sectors"]}
            if not isinstance(dj, list):
                err("desired_jobs", "must be a list")
            else:
                for i, d in enumerate(dj):
                    if not isinstance(d, dict) or d.get("job_id") not in jobs:
                        err("desired_jobs[%d].job_id" % i, "is not a job of the reference list")
                    elif d.get("business_sector_id") not in sectors:
                        err("desired_jobs[%d].business_sector_id" % i, "is not a business sector of the reference list")
                vals["desired_jobs"] = dj
        if "skills" in body:
            if not isinstance(body["skills"], list) or not all(isinstance(s, str) for s in body["skills"]):
                err("skills", "must be a list of strings")
            else:
                vals["skills"] = body["skills"]
        if "mobility_radius_km" in body and body["mobility_radius_km"] is not None:
            v = body["mobility_radius_km"]
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                err("mobility_radius_km", "must be a positive integer")
            else:
                vals["mobility_radius_km"] = v
        if "ref" in body:
            v = body["ref"]
            if v is None:
                vals["ref"] = None
            else:
                try:
                    scheme, ident = parse_ref(v, "ref")
                except ApiError as e:
                    errors.extend(e.errors)
                else:
                    if scheme == "troops":
                        err("ref", "a troops: reference is given by Troops, not set")
                    else:
                        vals["ref"] = (scheme, ident)
        known = {"tea_id", "agency_id", "sender_id", "invitation_type", "first_name", "last_name", "email", "phone",
                 "address", "desired_jobs", "skills", "mobility_radius_km", "ref", "experiences", "cv"}
        for k in set(body) - known:
            err(k, "is not a candidate field")
        if errors:
            raise ApiError(422, errors)
        if vals.get("ref"):
            other = self.find_ref(tea, *vals["ref"])
            if other and other["id"] != self_id:
                raise ApiError(409, [{"code": "already_exists", "message": "a candidate with reference %s:%s "
                                      "already exists in this TEA" % vals["ref"], "id": other["id"]}])
        return vals, warnings

    def check_scope(self, body, need_sender=True):
        tea = self.tea(body.get("tea_id"))
        agency = body.get("agency_id")
        if not any(a["id"] == agency and a["tea_id"] == tea for a in self.store["agencies"]):
            raise bad("agency_id", "is not an agency of this TEA")
        if need_sender:
            sender = body.get("sender_id")
            if not any(u["id"] == sender and u["tea_id"] == tea for u in self.store["agency_users"]):
                raise bad("sender_id", "is not an agency user of this TEA")
        return tea, agency

    def _make_candidate(self, tea, agency, vals):
        now = now_iso()
        c = {"id": str(uuid.uuid4()), "tea_id": tea, "agency_id": agency, "archived": False,
             "desired_jobs": [], "skills": [], "refs": {"erp": None, "ssn": None}, "created_at": now,
             "updated_at": now}
        self._apply(c, vals)
        self.store["candidates"][c["id"]] = c
        return c

    @staticmethod
    def _apply(c, vals):
        for k, v in vals.items():
            if k == "ref":
                c["refs"] = {"erp": None, "ssn": None}
                if v:
                    c["refs"][v[0]] = v[1]
            else:
                c[k] = v
        c["updated_at"] = now_iso()

    def create_candidate(self, req):
        body = req.json()
        tea, agency = self.check_scope(body)
        vals, _warnings = self.check_candidate(body, tea)
        c = self._make_candidate(tea, agency, vals)
        return 201, {}, {"data": self.render_candidate(c)}

    def import_candidates(self, req):
        body = req.json()
        tea, agency = self.check_scope(body)
        strategy = body.get("strategy", "allow_warnings")
        if strategy not in STRATEGIES:
            raise bad("strategy", "must be one of %s" % ", ".join(STRATEGIES), 400)
        cands = body.get("candidates")
        if not isinstance(cands, list) or not cands:
            raise bad("candidates", "must be a non-empty list", 400)
        if len(cands) > MAX_BATCH:
            raise bad("candidates", "at most %d candidates per import" % MAX_BATCH, 400)
        checked = []
        refs_in_batch = {}
        for i, cb in enumerate(cands):
            if not isinstance(cb, dict):
                checked.append((None, None, {"code": "validation_failed", "message": "a candidate is an object"}))
                continue
            if "tea_id" in cb or "agency_id" in cb or "sender_id" in cb:
                checked.append((None, None, {"code": "validation_failed",
                                             "message": "tea_id, agency_id and sender_id belong to the import"}))
                continue
            try:
                vals, warnings = self.check_candidate(cb, tea)
                if vals.get("ref"):
                    if vals["ref"] in refs_in_batch:
                        raise ApiError(422, [{"field": "ref", "message": "%s:%s is given twice in this import (index %d)"
                                              % (vals["ref"] + (refs_in_batch[vals["ref"]],))}])
                    refs_in_batch[vals["ref"]] = i
                checked.append((vals, warnings, None))
            except ApiError as e:
                err = self.format_error(e.status, e.errors)["error"]
                if e.status == 409:
                    err["code"] = "already_exists"
                checked.append((None, None, err))
        any_warn = any(w for _v, w, _e in checked if w)
        out = []
        for i, (vals, warnings, err) in enumerate(checked):
            if err:
                out.append({"index": i, "error": err})
            elif warnings and strategy == "skip_candidates_with_warnings":
                out.append({"index": i, "error": {"code": "skipped_with_warnings",
                                                  "message": "not imported: " + "; ".join(warnings)}})
            elif strategy == "rollback_on_warnings" and any_warn:
                if warnings:
                    out.append({"index": i, "error": {"code": "warnings", "message": "not imported: " +
                                                      "; ".join(warnings)}})
                else:
                    out.append({"index": i, "error": {"code": "rolled_back", "message": "not imported: the "
                                                      "import was rolled back for warnings on other candidates"}})
            else:
                out.append({"index": i, "pending": (vals, warnings)})
        for o in out:
            if "pending" in o:
                vals, warnings = o.pop("pending")
                c = self._make_candidate(tea, agency, vals)
                o["id"] = c["id"]
                o["warnings"] = warnings
        return 200, {}, {"data": out}

    def update_candidate(self, req):
        tea = self.tea(req.param("filters[tea_id]"), status=400, field="filters[tea_id]")
        body = req.json()
        if body.get("tea_id") != tea:
            raise bad("tea_id", "must be the TEA of filters[tea_id]", 400)
        c = self.candidate_at(req, tea)
        if "agency_id" in body:
            if not any(a["id"] == body["agency_id"] and a["tea_id"] == tea for a in self.store["agencies"]):
                raise bad("agency_id", "is not an agency of this TEA")
        if "sender_id" in body:
            raise bad("sender_id", "is set when the candidate is invited")
        vals, _w = self.check_candidate({k: v for k, v in body.items() if k not in ("tea_id", "agency_id")}, tea,
                                        partial=True, self_id=c["id"])
        if "agency_id" in body:
            vals["agency_id"] = body["agency_id"]
        self._apply(c, vals)
        return 200, {}, {"data": self.render_candidate(c)}

    def archive_candidate(self, req):
        body = req.json()
        tea = self.tea(body.get("tea_id"))
        c = self.candidate_at(req, tea)
        want = req.match.group(2) == "archive"
        if c["archived"] == want:
            raise ApiError(409, [{"code": "already_archived" if want else "not_archived",
                                  "message": "the candidate is %s" % ("archived already" if want else "not archived")}])
        c["archived"] = want
        c["updated_at"] = now_iso()
        return 200, {}, {"data": self.render_candidate(c)}

    def candidate_of(self, tea, ref, field="candidate_ref", status=404):
        scheme, ident = parse_ref(ref, field)
        c = self.find_ref(tea, scheme, ident)
        if not c:
            raise ApiError(status, "no candidate with reference %s in this TEA" % ref)
        return c

    # ---- availabilities -----------------------------------------------------------------
    def list_availabilities(self, req):
        f = self.filters(req, "availabilities")
        items = [a for a in self.store["availabilities"].values() if a["tea_id"] == f["tea_id"]]
        if "candidate_ref" in f:
            c = self.candidate_of(f["tea_id"], f["candidate_ref"], "filters[candidate_ref]")
            items = [a for a in items if a["candidate_id"] == c["id"]]
        for k, keep in (("started_at_greater_than", lambda a, t: a >= t), ("started_at_less_than", lambda a, t: a <= t)):
            if k in f:
                t = parse_stamp(f[k])
                if t is None:
                    raise ApiError(400, "filters[%s] must be an ISO 8601 timestamp with an offset" % k)
                items = [a for a in items if keep(parse_stamp(a["started_at"]), t)]
        return self.page(req, [self.render_availability(a) for a in items])

    def render_availability(self, a):
        c = self.store["candidates"].get(a["candidate_id"], {})
        out = dict(a)
        out["refs"] = {"troops": a["candidate_id"], "erp": c.get("refs", {}).get("erp")}
        return out

    def create_availability(self, req):
        body = req.json()
        tea = self.tea(body.get("tea_id"))
        errors = []
        start, end = parse_stamp(body.get("started_at")), parse_stamp(body.get("ended_at"))
        if start is None:
            errors.append({"field": "started_at", "message": "must be ISO 8601 with an offset"})
        if end is None:
            errors.append({"field": "ended_at", "message": "must be ISO 8601 with an offset"})
        if start and end and end < start:
            errors.append({"field": "ended_at", "message": "must be after started_at"})
        if not isinstance(body.get("available"), bool):
            errors.append({"field": "available", "message": "must be true or false"})
        if body.get("comment") is not None and not isinstance(body.get("comment"), str):
            errors.append({"field": "comment", "message": "must be a string"})
        unknown = set(body) - {"tea_id", "candidate_ref", "started_at", "ended_at", "available", "comment"}
        for k in unknown:
            errors.append({"field": k, "message": "is not an availability field"})
        if errors:
            raise ApiError(422, errors)
        c = self.candidate_of(tea, body.get("candidate_ref"))
        a = {"id": str(uuid.uuid4()), "tea_id": tea, "candidate_id": c["id"], "candidate_ref": body["candidate_ref"],
             "started_at": body["started_at"], "ended_at": body["ended_at"], "available": body["available"],
             "comment": body.get("comment"), "created_at": now_iso()}
        self.store["availabilities"][a["id"]] = a
        return 201, {}, {"data": self.render_availability(a)}

    def delete_availability(self, req):
        aid = unquote(req.match.group(1))
        if aid not in self.store["availabilities"]:
            raise ApiError(404, "availability %s not found" % aid)
        del self.store["availabilities"][aid]
        return 204, {}, None

    # ---- paychecks --------------------------------------------------------------------------
    def check_paycheck(self, body, tea, partial=False, self_id=None):
        errors, vals = [], {}

        def err(f, m):
            errors.append({"field": f, "message": m})

        if not partial or "number" in body:
            v = body.get("number")
            if not isinstance(v, str) or not v.strip():
                err("number", "can't be blank")
            else:
                vals["number"] = v
        if not partial or "period" in body:
            if not isinstance(body.get("period"), str) or not PERIOD_RE.fullmatch(body["period"]):
                err("period", "must be YYYY-MM")
            else:
                vals["period"] = body["period"]
        if not partial or "issued_on" in body:
            if not isinstance(body.get("issued_on"), str) or not DATE_RE.fullmatch(body["issued_on"]):
                err("issued_on", "must be YYYY-MM-DD")
            else:
                vals["issued_on"] = body["issued_on"]
        for f in ("gross_amount", "net_amount"):
            if partial and f not in body:
                continue
            v = body.get(f)
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                err(f, "must be a number")
            else:
                vals[f] = v
        if not partial or "currency" in body:
            if not isinstance(body.get("currency"), str) or not re.fullmatch(r"[A-Z]{3}", body["currency"]):
                err("currency", "must be an ISO 4217 code")
            else:
                vals["currency"] = body["currency"]
        if body.get("document") is not None:
            try:
                pdf = base64.b64decode(body["document"], validate=True)
                if not pdf.startswith(b"%PDF"):
                    raise ValueError
                vals["document"] = body["document"]
            except Exception:
                err("document", "must be a base64 PDF")
        for k in set(body) - {"tea_id", "candidate_ref", "number", "period", "issued_on", "gross_amount",
                              "net_amount", "currency", "document"}:
            err(k, "is not a paycheck field")
        if errors:
            raise ApiError(422, errors)
        if "number" in vals:
            other = [p for p in self.store["paychecks"].values() if p["tea_id"] == tea and
                     p["number"] == vals["number"] and p["id"] != self_id]
            if other:
                raise ApiError(409, [{"code": "already_exists", "message": "paycheck number %s exists in this TEA"
                                      % vals["number"], "id": other[0]["id"]}])
        return vals

    def list_paychecks(self, req):
        f = self.filters(req, "paychecks")
        items = [p for p in self.store["paychecks"].values() if p["tea_id"] == f["tea_id"]]
        if "number" in f:
            items = [p for p in items if p["number"] == f["number"]]
        if "candidate_ref" in f:
            c = self.candidate_of(f["tea_id"], f["candidate_ref"], "filters[candidate_ref]")
            items = [p for p in items if p["candidate_id"] == c["id"]]
        return self.page(req, items)

    def create_paycheck(self, req):
        body = req.json()
        tea = self.tea(body.get("tea_id"))
        vals = self.check_paycheck(body, tea)
        c = self.candidate_of(tea, body.get("candidate_ref"))
        p = dict(vals, id=str(uuid.uuid4()), tea_id=tea, candidate_id=c["id"], candidate_ref=body["candidate_ref"],
                 created_at=now_iso())
        self.store["paychecks"][p["id"]] = p
        return 201, {}, {"data": p}

    def _paycheck(self, req):
        p = self.store["paychecks"].get(unquote(req.match.group(1)))
        if not p:
            raise ApiError(404, "paycheck not found")
        return p

    def update_paycheck(self, req):
        p = self._paycheck(req)
        body = req.json()
        if body.get("tea_id") != p["tea_id"]:
            raise bad("tea_id", "is not the paycheck's TEA", 400)
        vals = self.check_paycheck(body, p["tea_id"], partial=True, self_id=p["id"])
        if "candidate_ref" in body:
            c = self.candidate_of(p["tea_id"], body["candidate_ref"])
            vals["candidate_id"], vals["candidate_ref"] = c["id"], body["candidate_ref"]
        p.update(vals)
        return 200, {}, {"data": p}

    def delete_paycheck(self, req):
        p = self._paycheck(req)
        del self.store["paychecks"][p["id"]]
        return 204, {}, None

    # ---- bookkeeping variables ------------------------------------------------------------
    def list_variables(self, req):
        f = self.filters(req, "bookkeeping_variables")
        return self.page(req, [v for (t, _c), v in sorted(self.store["variables"].items()) if t == f["tea_id"]])

    def put_variable(self, req):
        code = unquote(req.match.group(1))
        body = req.json()
        tea = self.tea(body.get("tea_id"))
        errors = []
        if not isinstance(body.get("label"), str) or not body["label"].strip():
            errors.append({"field": "label", "message": "can't be blank"})
        if body.get("kind") not in VAR_KINDS:
            errors.append({"field": "kind", "message": "must be amount, hours or count"})
        v = body.get("value")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            errors.append({"field": "value", "message": "must be a number"})
        for k in set(body) - {"tea_id", "label", "kind", "value"}:
            errors.append({"field": k, "message": "is not a bookkeeping variable field"})
        if errors:
            raise ApiError(422, errors)
        created = (tea, code) not in self.store["variables"]
        var = {"code": code, "tea_id": tea, "label": body["label"], "kind": body["kind"], "value": v,
               "updated_at": now_iso()}
        self.store["variables"][(tea, code)] = var
        return (201 if created else 200), {}, {"data": var}

    def delete_variable(self, req):
        code = unquote(req.match.group(1))
        tea = self.tea(req.param("filters[tea_id]"), status=400, field="filters[tea_id]")
        if (tea, code) not in self.store["variables"]:
            raise ApiError(404, "bookkeeping variable %s not found" % code)
        del self.store["variables"][(tea, code)]
        return 204, {}, None

    # ---- missions -------------------------------------------------------------------------
    def render_mission(self, m):
        c = self.store["candidates"].get(m["candidate_id"], {})
        out = {k: v for k, v in m.items() if k not in ("candidate_id", "reason")}
        out["refs"] = {"troops": m["candidate_id"], "erp": c.get("refs", {}).get("erp")}
        return out

    def list_missions(self, req):
        f = self.filters(req, "missions")
        items = [m for m in self.store["missions"].values() if m["tea_id"] == f["tea_id"]]
        if "status" in f:
            if f["status"] not in MISSION_STATUSES:
                raise ApiError(400, "filters[status] must be one of %s" % ", ".join(MISSION_STATUSES))
            items = [m for m in items if m["status"] == f["status"]]
        if "updated_at_greater_than" in f:
            t = parse_stamp(f["updated_at_greater_than"])
            if t is None:
                raise ApiError(400, "filters[updated_at_greater_than] must be an ISO 8601 timestamp with an offset")
            items = [m for m in items if parse_stamp(m["updated_at"]) >= t]
        items.sort(key=lambda m: (m["updated_at"], m["id"]))
        return self.page(req, [self.render_mission(m) for m in items])

    def decide_mission(self, req):
        mid = unquote(req.match.group(1))
        body = req.json()
        tea = self.tea(body.get("tea_id"))
        m = self.store["missions"].get(mid)
        if not m or m["tea_id"] != tea:
            raise ApiError(404, "mission %s not found in this TEA" % mid)
        if set(body) - {"tea_id", "reason"}:
            raise bad(sorted(set(body) - {"tea_id", "reason"})[0], "is not a decision field", 422)
        if m["status"] != "proposed":
            raise ApiError(409, [{"code": "already_decided", "status": m["status"],
                                  "message": "mission %s is %s already (since %s); it can no longer be decided"
                                  % (mid, m["status"], m["updated_at"])}])
        m["status"] = "accepted" if req.match.group(2) == "accept" else "rejected"
        m["reason"] = body.get("reason")
        m["updated_at"] = now_iso()
        return 200, {}, {"data": self.render_mission(m)}

    def admin_create_mission(self, req):
        body = req.json()
        tea = self.tea(body.get("tea_id"))
        c = self.candidate_of(tea, body.get("candidate_ref"))
        m = {"id": body.get("id") or str(uuid.uuid4()), "tea_id": tea, "candidate_id": c["id"],
             "candidate_ref": body["candidate_ref"], "agency_id": body.get("agency_id", c["agency_id"]),
             "job_id": body.get("job_id"), "started_at": body.get("started_at"), "ended_at": body.get("ended_at"),
             "status": body.get("status", "proposed"), "updated_at": now_iso()}
        self.store["missions"][m["id"]] = m
        return 201, {}, {"data": self.render_mission(m)}

    def admin_mission_status(self, req):
        m = self.store["missions"].get(req.match.group(1))
        if not m:
            raise ApiError(404, "mission not found")
        st = req.json().get("status")
        if st not in MISSION_STATUSES:
            raise ApiError(400, "status must be one of %s" % ", ".join(MISSION_STATUSES))
        m["status"] = st
        m["updated_at"] = now_iso()
        return 200, {}, {"data": self.render_mission(m)}


if __name__ == "__main__":
    sys.exit(main(TroopsSandbox, default_seed=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "troops", "seed.json")))
