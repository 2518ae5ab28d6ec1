#!/usr/bin/env python3
"""Teamtailor API sandbox for hrsync tests (Python 3 stdlib only).

    python3 tests/sandbox/teamtailor.py --port 0 --api-key K [--rate 50/10] \
        [--seed tests/fixtures/teamtailor/seed.json]

Strict to the contract hrsync follows (JSON:API, https://docs.teamtailor.com, and what
third parties observed): `Authorization: Token token=K`; `X-Api-Version` required (406 with
the current version in the detail otherwise); `Content-Type: application/vnd.api+json` on
bodies (415 otherwise); `page[size]` at most 30 (400, code 118); errors as JSON:API
`errors[]` (status a string, a number in the 406); scopes (config `scope: admin | internal`:
an internal key gets 403 on users, locations' writes and job applications); a fixed window
of N requests per W seconds per key with live `X-Rate-Limit-Limit`, `-Remaining`, `-Reset`
(seconds left in the window) on every answer, 429 included. tests/sandbox/README.md has
the admin additions (hires, stage moves).
"""

import math
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sandbox_base import AdminError, ApiError, Sandbox, iso_utc, main  # noqa: E402

MEDIA = "application/vnd.api+json"
VERSIONS = ("20161108", "20210218", "20240404", "20240904")
CURRENT_VERSION = "20240904"
PAGE_DEFAULT, PAGE_MAX = 10, 30
ROLES = ("no_access", "user", "recruiter", "designer", "admin", "external_recruiter")
STAGE_TYPES = ("Inbox", "In process", "Hired")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
DEFAULT_WINDOW = (50, 10.0)

# type -> (attributes a client may write, required on create, relationships -> related type)
WRITABLE = {
    "departments": ({"name"}, ("name",), {}),
    "locations": ({"name", "city", "country", "address", "zip", "email", "phone", "headquarters", "lat", "long"},
                  ("name",), {}),
    "users": ({"name", "email", "role", "title", "external-id", "signature", "locale", "time-zone", "hide-email",
               "merge"}, ("email", "name"), {"department": "departments", "location": "locations"}),
}
START_IDS = {"departments": 100, "locations": 200, "users": 1000, "candidates": 5000, "jobs": 700,
             "job-applications": 9000, "stages": 300}


def jerr(status, title, detail=None, code=None, pointer=None):
    e = {"status": str(status), "title": title}
    if detail:
        e["detail"] = detail
    if code:
        e["code"] = str(code)
    if pointer:
        e["source"] = {"pointer": pointer}
    return e


class JsonApiError(ApiError):
    """An error already in JSON:API shape (a list of error objects)."""

    def __init__(self, status, errors, headers=None):
        super().__init__(status, "x", headers)
        self.errors = errors


def validation(attr, message):
    return JsonApiError(422, [jerr(422, message, "%s - %s" % (attr, message), 100, "/data/attributes/" + attr)])


class TeamtailorSandbox(Sandbox):
    """Teamtailor API sandbox (JSON:API)."""

    name = "teamtailor"
    api_prefix = "/v1"

    # ---- base hooks --------------------------------------------------------------
    def config_defaults(self):
        return {"scope": "admin", "current_version": CURRENT_VERSION}

    def check_config(self, key, value):
        if key == "scope":
            if value not in ("admin", "internal"):
                raise ValueError("scope must be admin or internal")
            return value
        if key == "current_version":
            if value not in VERSIONS:
                raise ValueError("current_version must be one of %s" % ", ".join(VERSIONS))
            return value
        raise ValueError("unknown config key %r" % key)

    def format_error(self, status, errors):
        out = []
        for e in errors:
            if "status" in e and "title" in e:
                out.append(e)
                continue
            msg = e.get("message", "error")
            if status == 429:
                out.append(jerr(429, "Too Many Requests"))
            elif e.get("field"):
                out.append(jerr(status, msg, "%s - %s" % (e["field"], msg), 100, "/data/attributes/" + e["field"]))
            else:
                out.append(jerr(status, msg))
        return {"errors": out}

    def unauthorized(self):
        return 401, {}, {"errors": [jerr(401, "Unauthorized")]}

    def authenticate(self, req):
        if req.headers.get("Authorization") != "Token token=" + self.api_key:
            return self.unauthorized()
        v = req.headers.get("X-Api-Version")
        if v not in VERSIONS:
            return 406, {}, {"errors": [{
                "status": 406, "title": "Invalid/Missing API Version",
                "detail": "Please provide a correct API version in the X-Api-Version header. "
                          "Current version is: " + self.config["current_version"]}]}
        accept = req.headers.get("Accept") or MEDIA
        if MEDIA not in accept and "*/*" not in accept:
            return 406, {}, {"errors": [jerr(406, "Not acceptable",
                                             "All requests must use the '%s' Accept without media type "
                                             "parameters." % MEDIA, 406)]}
        if req.body and (req.headers.get("Content-Type") or "").split(";")[0].strip() != MEDIA:
            return 415, {}, {"errors": [jerr(415, "Unsupported media type",
                                             "All requests that create or update must use the '%s' Content-Type."
                                             % MEDIA, 415)]}
        if self.config["scope"] != "admin" and self._admin_only(req):
            return 403, {}, {"errors": [jerr(403, "Forbidden", "This API key does not have access to this resource",
                                             403)]}
        return None

    @staticmethod
    def _admin_only(req):
        return (req.path.startswith("/users") or req.path.startswith("/job-applications")
                or (req.path.startswith("/locations") and req.method != "GET"))

    def build_store(self, seed):
        st = {t: {} for t in START_IDS}
        st["next_id"] = dict(START_IDS)
        st["deleted_users"] = []
        self.store = st
        # Teamtailor's own stages: one of each type (stages are per job; one set serves here)
        for t in STAGE_TYPES:
            self._new("stages", {"name": t, "stage-type": t})
        for body in seed.get("departments") or []:
            self._new("departments", {"name": body["name"]})
        for body in seed.get("locations") or []:
            self._new("locations", dict(body))
        for body in seed.get("users") or []:
            self._new("users", dict({"role": "user", "external-id": None, "title": None}, **body),
                      rel={"department": None, "location": None})
        return st

    def store_snapshot(self):
        st = self.store
        return {t: [self._flat(t, r) for r in st[t].values()] for t in START_IDS} | {
            "deleted_users": st["deleted_users"]}

    # ---- rate: a fixed window per key, live headers on every answer ------------------
    def _window(self):
        return self.rate or DEFAULT_WINDOW

    def _rate_check_locked(self, now):
        n, w = self._window()
        start = getattr(self, "_win_start", None)
        if start is None or now - start >= w or getattr(self, "_win_rate", None) != (n, w):
            self._win_start, self._win_count, self._win_rate = now, 0, (n, w)
        self._rate_now = now
        if self.rate is not None and self._win_count >= n:
            return max(1, int(math.ceil(self._win_start + w - now)))
        self._win_count += 1
        return None

    def _rate_headers(self):
        with self.lock:
            return self._rate_headers_locked()

    def _rate_headers_locked(self):
        n, w = self._window()
        start = getattr(self, "_win_start", None)
        now = time.monotonic()
        if start is None or now - start >= w:
            return {"X-Rate-Limit-Limit": str(n), "X-Rate-Limit-Remaining": str(n),
                    "X-Rate-Limit-Reset": str(int(w))}
        return {"X-Rate-Limit-Limit": str(n), "X-Rate-Limit-Remaining": str(max(0, n - self._win_count)),
                "X-Rate-Limit-Reset": str(max(0, int(math.ceil(start + w - now))))}

    def handle_api(self, req):
        kind, status, headers, data = super().handle_api(req)
        if kind == "respond" and status is not None:
            headers = dict(headers)
            headers.update(self._rate_headers())
            if headers.get("Content-Type", "").startswith("application/json") and status != 204:
                headers["Content-Type"] = MEDIA
        return kind, status, headers, data

    # ---- routes ------------------------------------------------------------------
    def register_routes(self):
        r = self.route
        for t in ("departments", "locations", "users"):
            r("GET", "/" + t, self._lister(t))
            r("POST", "/" + t, self._creator(t))
            r("GET", r"/%s/(\d+)" % t, self._getter(t))
            r("PATCH", r"/%s/(\d+)" % t, self._patcher(t))
        r("DELETE", r"/users/(\d+)", self.delete_user)
        r("GET", r"/job-applications", self.list_applications)
        r("GET", r"/job-applications/(\d+)", self._getter("job-applications"))
        r("GET", r"/candidates", self._lister("candidates"))
        r("GET", r"/jobs", self._lister("jobs"))
        a = self.admin_route
        a("POST", r"/hires", self.admin_hire)
        a("POST", r"/job-applications/(\d+)/stage", self.admin_stage)

    # ---- records -----------------------------------------------------------------
    def _new(self, t, attrs, rel=None):
        st = self.store
        i = st["next_id"][t]
        st["next_id"][t] = i + 1
        now = time.time()
        rec = {"id": str(i), "attributes": dict(attrs), "rel": dict(rel or {}), "created": now, "updated": now}
        st[t][str(i)] = rec
        return rec

    def _flat(self, t, r):
        o = {"id": r["id"], "created-at": iso_utc(r["created"]), "updated-at": iso_utc(r["updated"])}
        o.update(r["attributes"])
        for k, v in r["rel"].items():
            o[k + "_id"] = v
        return o

    def _resource(self, t, r):
        res = {"id": r["id"], "type": t, "links": {"self": "%s/%s/%s" % (self._base(), t, r["id"])},
               "attributes": dict(r["attributes"], **{"created-at": iso_utc(r["created"]),
                                                      "updated-at": iso_utc(r["updated"])})}
        res["attributes"].pop("merge", None)
        if r["rel"]:
            res["relationships"] = {}
            for k, v in r["rel"].items():
                res["relationships"][k] = {"links": {"related": "%s/%s/%s/%s" % (self._base(), t, r["id"], k)}}
        return res

    def _base(self):
        req = self.current_request()
        host = req.headers.get("Host", "127.0.0.1") if req else "127.0.0.1"
        return "http://%s%s" % (host, self.api_prefix)

    def _page(self, req, t, records, render=None, extra=None):
        try:
            size = int(req.param("page[size]", str(PAGE_DEFAULT)))
            number = int(req.param("page[number]", "1"))
        except ValueError:
            raise JsonApiError(400, [jerr(400, "Invalid page value", "page values must be integers", 118)])
        if size > PAGE_MAX:
            raise JsonApiError(400, [jerr(400, "Invalid page value",
                                          "size exceeds maximum page size of %d." % PAGE_MAX, 118)])
        if size < 1 or number < 1:
            raise JsonApiError(400, [jerr(400, "Invalid page value", "%d is not a valid value for page." %
                                          min(size, number), 118)])
        records = sorted(records, key=lambda r: int(r["id"]))
        total = len(records)
        pages = max(1, int(math.ceil(total / float(size))))
        chunk = records[(number - 1) * size: number * size]
        body = {"data": [(render or (lambda r: self._resource(t, r)))(r) for r in chunk],
                "meta": {"record-count": total, "page-count": pages}}
        if extra:
            body.update(extra(chunk))
        # links keep the filters; the page's own keys are replaced
        others = [p for p in req.query.split("&") if p and not p.startswith(("page%5B", "page["))]
        def link(n):
            q = others + ["page%%5Bnumber%%5D=%d" % n, "page%%5Bsize%%5D=%d" % size]
            return "%s%s?%s" % (self._base(), req.path, "&".join(q))
        links = {"first": link(1), "last": link(pages)}
        if number > 1:
            links["prev"] = link(number - 1)
        if number < pages:
            links["next"] = link(number + 1)
        body["links"] = links
        return 200, {}, body

    def _filters(self, req, allowed):
        out = {}
        for k, v in req.params.items():
            m = re.fullmatch(r"filter\[([a-z-]+)\](\[(from|to)\])?", k)
            if k.startswith("page[") or k in ("include", "sort"):
                continue
            if not m or m.group(1) not in allowed:
                raise JsonApiError(400, [jerr(400, "Filter not allowed", "%s is not allowed." % k, 102)])
            out[m.group(1) + (m.group(2) or "")] = v[-1]
        return out

    def _lister(self, t):
        def handler(req):
            f = self._filters(req, {"departments": (), "locations": (),
                                    "users": ("email", "external-id", "department"),
                                    "candidates": ("email",), "jobs": ()}[t])
            recs = list(self.store[t].values())
            for k, v in f.items():
                if k == "department":
                    recs = [r for r in recs if r["rel"].get("department") == v]
                else:
                    recs = [r for r in recs if str(r["attributes"].get(k) or "").lower() == v.lower()]
            return self._page(req, t, recs)
        return handler

    def _record(self, t, rid):
        r = self.store[t].get(rid)
        if r is None:
            raise JsonApiError(404, [jerr(404, "Record not found", "The record identified by %s could not be "
                                          "found." % rid, 404)])
        return r

    def _getter(self, t):
        def handler(req):
            return 200, {}, {"data": self._resource(t, self._record(t, req.match.group(1)))}
        return handler

    def _document(self, req, t, rid=None):
        """(attributes, relationships) of a well-formed resource document for type t."""
        body = req.json()
        data = body.get("data")
        if not isinstance(data, dict):
            raise JsonApiError(400, [jerr(400, "Missing Parameter", "The required parameter, data, is missing.",
                                          106)])
        if data.get("type") != t:
            raise JsonApiError(409, [jerr(409, "Type mismatch", "%s is not a valid type for this operation." %
                                          data.get("type"), 116)])
        if rid is not None and str(data.get("id")) != rid:
            raise JsonApiError(400, [jerr(400, "Key is not included in URL", "The URL does not support the key %s"
                                          % data.get("id"), 110)])
        attrs = data.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise JsonApiError(400, [jerr(400, "Invalid field value", "attributes must be an object", 103)])
        writable, _req, rels_allowed = WRITABLE[t]
        for k in attrs:
            if k not in writable:
                raise JsonApiError(400, [jerr(400, "Param not allowed", "%s is not allowed." % k, 105)])
        rels = {}
        for k, v in (data.get("relationships") or {}).items():
            if k not in rels_allowed:
                raise JsonApiError(400, [jerr(400, "Param not allowed", "%s is not allowed." % k, 105)])
            d = v.get("data") if isinstance(v, dict) else "bad"
            if d is None:
                rels[k] = None
                continue
            if not isinstance(d, dict) or d.get("type") != rels_allowed[k] or not isinstance(d.get("id"), str):
                raise JsonApiError(400, [jerr(400, "Invalid Links Object", "Data is not a valid Links Object.",
                                              115)])
            if d["id"] not in self.store[rels_allowed[k]]:
                raise validation(k, "must exist")
            rels[k] = d["id"]
        return attrs, rels

    def _validate(self, t, attrs, old=None):
        _w, required, _r = WRITABLE[t]
        merged = dict(old["attributes"] if old else {}, **attrs)
        for k in required:
            v = merged.get(k)
            if v is None or (isinstance(v, str) and not v.strip()):
                raise validation(k, "can't be blank")
        if t == "users":
            if not EMAIL_RE.fullmatch(merged["email"]):
                raise validation("email", "is invalid")
            if merged.get("role", "user") not in ROLES:
                raise validation("role", "is not included in the list")
        if t == "departments":
            for r in self.store[t].values():
                if r is not old and r["attributes"]["name"].strip().lower() == merged["name"].strip().lower():
                    raise validation("name", "has already been taken")

    def _by(self, t, attr, value, exclude=None):
        for r in self.store[t].values():
            if r is not exclude and value and str(r["attributes"].get(attr) or "").lower() == value.lower():
                return r
        return None

    def _creator(self, t):
        def handler(req):
            attrs, rels = self._document(req, t)
            merge = bool(attrs.pop("merge", False))
            if t == "users":
                same = self._by("users", "email", attrs.get("email"))
                if same is not None:
                    if not merge:
                        raise validation("email", "has already been taken")
                    self._validate(t, attrs, same)
                    if self._by("users", "external-id", attrs.get("external-id"), exclude=same):
                        raise validation("external-id", "has already been taken")
                    same["attributes"].update(attrs)
                    same["rel"].update(rels)
                    same["updated"] = time.time()
                    return 200, {}, {"data": self._resource(t, same)}
                if self._by("users", "external-id", attrs.get("external-id")):
                    raise validation("external-id", "has already been taken")
                attrs.setdefault("role", "user")
            self._validate(t, attrs)
            if t == "users":
                rels = dict({"department": None, "location": None}, **rels)
            rec = self._new(t, attrs, rels)
            return 201, {}, {"data": self._resource(t, rec)}
        return handler

    def _patcher(self, t):
        def handler(req):
            rid = req.match.group(1)
            rec = self._record(t, rid)
            attrs, rels = self._document(req, t, rid)
            attrs.pop("merge", None)
            self._validate(t, attrs, rec)
            if t == "users" and self._by("users", "external-id", attrs.get("external-id"), exclude=rec):
                raise validation("external-id", "has already been taken")
            if t == "users" and self._by("users", "email", attrs.get("email"), exclude=rec):
                raise validation("email", "has already been taken")
            rec["attributes"].update(attrs)
            rec["rel"].update(rels)
            rec["updated"] = time.time()
            return 200, {}, {"data": self._resource(t, rec)}
        return handler

    def delete_user(self, req):
        rec = self._record("users", req.match.group(1))
        del self.store["users"][rec["id"]]
        self.store["deleted_users"].append(rec["id"])   # a hard delete: the tests assert none
        return 204, {}, None

    # ---- job applications -----------------------------------------------------------
    def _application(self, r):
        res = self._resource("job-applications", r)
        res["relationships"] = {
            k: {"links": {"related": "%s/job-applications/%s/%s" % (self._base(), r["id"], k)},
                "data": {"type": {"candidate": "candidates", "job": "jobs", "stage": "stages"}[k], "id": v}}
            for k, v in r["rel"].items()}
        return res

    def list_applications(self, req):
        f = self._filters(req, ("stage-type", "updated-at", "created-at", "changed-stage-at", "job"))
        include = [x for x in (req.param("include") or "").split(",") if x]
        for x in include:
            if x not in ("candidate", "job", "stage"):
                raise JsonApiError(400, [jerr(400, "Invalid include", "%s is not a valid includable "
                                              "relationship of job-applications" % x, 112)])
        recs = list(self.store["job-applications"].values())
        if "stage-type" in f:
            recs = [r for r in recs
                    if self.store["stages"][r["rel"]["stage"]]["attributes"]["stage-type"].lower()
                    == f["stage-type"].lower()]
        for k in ("updated-at", "created-at", "changed-stage-at"):
            for edge in ("[from]", "[to]"):
                v = f.get(k + edge)
                if v is None:
                    continue
                try:
                    ts = time.mktime(time.strptime(v[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                except ValueError:
                    raise JsonApiError(400, [jerr(400, "Invalid filter value", "%s is not a valid value for %s."
                                                  % (v, k), 103)])
                field = {"updated-at": "updated", "created-at": "created"}.get(k)
                get = (lambda r, fl=field: r[fl]) if field else (lambda r: r["changed"])
                recs = [r for r in recs if (get(r) >= ts if edge == "[from]" else get(r) <= ts)]
        if "job" in f:
            recs = [r for r in recs if r["rel"]["job"] == f["job"]]

        def included(chunk):
            out, seen = [], set()
            for r in chunk:
                for k in include:
                    t = {"candidate": "candidates", "job": "jobs", "stage": "stages"}[k]
                    key = (t, r["rel"][k])
                    if key not in seen:
                        seen.add(key)
                        out.append(self._included(t, self.store[t][r["rel"][k]]))
            return {"included": out} if include else {}
        return self._page(req, "job-applications", recs, render=self._application, extra=included)

    def _included(self, t, r):
        res = self._resource(t, r)
        if t == "jobs" and r["rel"].get("department"):
            res["relationships"] = {"department": {"data": {"type": "departments", "id": r["rel"]["department"]}}}
        return res

    def _render_application(self, r):
        return self._application(r)

    # ---- admin: what recruiters do in Teamtailor --------------------------------------
    def admin_hire(self, req):
        """{"candidate": {first-name, last-name, email, phone}, "job": {title, department_id?}}:
        a candidate applies and is moved to Hired. Answers the job application."""
        body = self._admin_json(req)
        cand, job = body.get("candidate"), body.get("job")
        if not isinstance(cand, dict) or not isinstance(job, dict) or not job.get("title"):
            raise AdminError(400, "need candidate {...} and job {title, department_id}")
        c = self._by("candidates", "email", cand.get("email"))
        if c is None:
            c = self._new("candidates", {k: cand.get(k) for k in ("first-name", "last-name", "email", "phone")})
        j = self._by("jobs", "title", job["title"])
        if j is None:
            dep = job.get("department_id")
            j = self._new("jobs", {"title": job["title"], "status": "open"},
                          rel={"department": str(dep) if dep else None})
        stage = self._stage(body.get("stage-type", "Hired"))
        a = self._new("job-applications", {"changed-stage-at": iso_utc(time.time()), "sourced": False},
                      rel={"candidate": c["id"], "job": j["id"], "stage": stage})
        a["changed"] = a["created"]
        return 201, {}, {"data": self._flat("job-applications", a)}

    def _stage(self, stage_type):
        for s in self.store["stages"].values():
            if s["attributes"]["stage-type"] == stage_type:
                return s["id"]
        raise AdminError(400, "stage-type must be one of %s" % ", ".join(STAGE_TYPES))

    def admin_stage(self, req):
        body = self._admin_json(req)
        a = self.store["job-applications"].get(req.match.group(1))
        if a is None:
            raise AdminError(404, "no such job application")
        a["rel"]["stage"] = self._stage(body.get("stage-type"))
        a["changed"] = a["updated"] = time.time()
        a["attributes"]["changed-stage-at"] = iso_utc(a["changed"])
        return 200, {}, {"data": self._flat("job-applications", a)}


def _default_seed():
    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "teamtailor", "seed.json")
    return os.path.normpath(p) if os.path.exists(p) else None


if __name__ == "__main__":
    sys.exit(main(TeamtailorSandbox, default_seed=_default_seed()))
