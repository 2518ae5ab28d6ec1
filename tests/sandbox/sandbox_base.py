#!/usr/bin/env python3
"""Reusable local HTTP sandbox for hrsync end-to-end tests (Python 3 stdlib only).

A platform sandbox (PeopleForce, Personio, ...) subclasses `Sandbox`, registers its API
routes and its store, and calls `main(MySandbox)`.  This module provides:

  * a threading HTTP/1.1 keep-alive server (one thread per connection, whole responses
    written with a single send, TCP_NODELAY, Content-Length on every response but 204);
  * a route table: (method, regex) -> handler(req) -> (status, headers, body);
  * one global lock around store access (the dispatcher holds it while a handler runs);
  * a sliding-window rate limiter that counts a request when its first bytes reached the
    sandbox's socket (the kernel's receive timestamp), as a platform's edge would, not when a
    handler thread got to it; an added latency, fault injection, a request log;
  * the admin API under /_sandbox (no auth, never rate-limited, never faulted, not logged).

See tests/sandbox/README.md for the admin API and the fault modes.
"""

import argparse
import bisect
import collections
import copy
import gc
import io
import json
import random
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ADMIN_PREFIX = "/_sandbox"
MAX_BODY = 16 * 1024 * 1024
SCM_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)   # Linux: SCM_TIMESTAMPNS == SO_TIMESTAMPNS

FAULT_MODES = (
    "429", "500", "502", "503", "408", "timeout", "drop", "reset_midbody",
    "malformed", "truncated", "html200", "401", "commit_then_drop",
    "5xx",               # one of 500, 502, 503, drawn for each request it fires on
    "commit_then_500",   # the request is applied, then answered 500 (the platform acted)
    "echo_auth",         # 422 whose message quotes the request's credentials (a hostile or careless platform)
    "answer_id",         # the request is applied, then the answer's record ids read `id` (a hostile platform)
)
FAULT_KEYS = {"mode", "every", "count", "method", "path", "retry_after", "delay_ms", "ratio", "seed", "id"}


# --------------------------------------------------------------------------------------
# helpers

def dumps(obj):
    """JSON as UTF-8 bytes, non-ASCII kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_body(body):
    """(bytes, content-type or None) for a handler's body object."""
    if body is None:
        return b"", None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return dumps(body), "application/json; charset=utf-8"


def iso_utc(ts):
    """ISO 8601 UTC with seconds precision, e.g. 2026-11-25T14:37:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_rate(value):
    """'N/W' -> (N, W seconds); 0, '0', None, '' -> None (unlimited)."""
    if value is None or value == 0 or value == "0" or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("rate must be 'N/W' (N requests per W seconds) or 0")
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", value)
    if not m:
        raise ValueError("rate must be 'N/W' (N requests per W seconds) or 0")
    n, w = int(m.group(1)), float(m.group(2))
    if n == 0:
        return None
    if w <= 0:
        raise ValueError("rate window must be > 0 seconds")
    return (n, w)


def rate_to_str(rate):
    if rate is None:
        return "0"
    n, w = rate
    return "%d/%s" % (n, ("%g" % w))


class ApiError(Exception):
    """Raised by handlers: becomes `status` with the platform's error body.

    errors: a message string, or a list of {"field": ..., "message": ...} dicts
    (field optional)."""

    def __init__(self, status, errors, headers=None):
        super().__init__(status, errors)
        self.status = status
        if isinstance(errors, str):
            errors = [{"message": errors}]
        self.errors = errors
        self.headers = headers or {}


class AdminError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def window_admit(win, n, w, t, count=True):
    """A sliding window of n requests per w seconds: None if a request that arrived at t may
    pass (and, if count, t is recorded in win), else whole seconds until a slot frees (>= 1).

    win is the sorted list of the arrival times let through. Handler threads reach the limiter
    in any order, so t may be earlier than times already counted: t passes only if no n + 1
    arrivals around it, itself included, fall within less than w of each other."""
    horizon = max(t, win[-1] if win else t) - 2 * w
    del win[:bisect.bisect_right(win, horizon)]
    i = bisect.bisect_left(win, t)
    around = win[max(0, i - n):i] + [t] + win[i:i + n]
    k = min(i, n)                        # t's index in `around`
    for j in range(0, k + 1):            # every n + 1 consecutive arrivals that hold t
        if j + n < len(around) and around[j + n] - around[j] < w:
            return max(1, int(math.ceil(around[j] + w - t)))
    if count:
        win.insert(i, t)
    return None


class StampedSocketReader(io.RawIOBase):
    """A connection's reading side that keeps the kernel's receive time (SO_TIMESTAMPNS, wall
    clock) of the first bytes read since `first` was last set to None: when a request reached
    the sandbox, however late a handler thread wakes up to read it."""

    def __init__(self, sock):
        super().__init__()
        self.sock = sock
        self.first = None

    def readable(self):
        return True

    def readinto(self, b):
        n, anc, _flags, _addr = self.sock.recvmsg_into([b], socket.CMSG_SPACE(16))
        if self.first is None:
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    self.first = sec + nsec / 1e9
        return n


class Request:
    """What a handler receives."""

    def __init__(self, sandbox, method, raw_path, path, query, headers, body):
        self.sandbox = sandbox
        self.method = method
        self.raw_path = raw_path      # full path as received (no query)
        self.path = path              # API path without the platform prefix
        self.query = query            # raw query string
        self.params = parse_qs(query, keep_blank_values=True)
        self.headers = headers        # http.client.HTTPMessage (case-insensitive get)
        self.body = body              # bytes
        self.match = None             # re.Match of the route
        self.arrived = None           # monotonic time its first bytes reached the socket
        self._json = None
        self._json_done = False

    def param(self, name, default=None):
        v = self.params.get(name)
        return v[-1] if v else default

    def param_list(self, name):
        return self.params.get(name, [])

    def json_or_none(self):
        """Parsed body for the request log (None if empty or not JSON)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def json(self):
        """The body as a JSON object ({} when empty); ApiError 400 otherwise."""
        if self._json_done:
            return self._json
        if not self.body or not self.body.strip():
            obj = {}
        else:
            ctype = (self.headers.get("Content-Type") or "").lower()
            if ctype and "json" not in ctype:
                raise ApiError(400, "Content-Type must be application/json")
            try:
                obj = json.loads(self.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "Request body is not valid JSON")
            if not isinstance(obj, dict):
                raise ApiError(400, "Request body must be a JSON object")
        self._json, self._json_done = obj, True
        return obj


# --------------------------------------------------------------------------------------
# the sandbox (platform-independent logic)

class Sandbox:
    """Subclass and override: api_prefix, register_routes(), build_store(seed),
    authenticate(req), format_error(status, errors), config_defaults(),
    check_config(key, value), store_snapshot()."""

    name = "sandbox"
    api_prefix = ""

    def __init__(self, api_key, seed=None, rate=None, delay_ms=0, retry_after=True,
                 quiet=False, log_max=200000):
        self._tls = threading.local()   # the request this thread is answering (current_request())
        self.api_key = api_key
        self.seed = seed if seed is not None else {}
        self.quiet = quiet
        self.lock = threading.Lock()
        self.start_config = {
            "rate": rate_to_str(parse_rate(rate)),
            "delay_ms": int(delay_ms),
            "retry_after": bool(retry_after),
        }
        self.start_config.update(self.config_defaults())
        self.log_max = log_max
        self.routes = []          # (method, compiled regex, fn)
        self.admin_routes = []
        self._interrupt = threading.Event()
        self._register_admin()
        self.register_routes()
        self.store = None
        with self.lock:
            self._reset_locked()

    # ---- hooks for platforms -----------------------------------------------------
    def register_routes(self):
        pass

    def build_store(self, seed):
        return {}

    def store_snapshot(self):
        return self.store

    def config_defaults(self):
        return {}

    def check_config(self, key, value):
        """Validate a platform config key; return the normalized value or raise ValueError."""
        raise ValueError("unknown config key %r" % key)

    def authenticate(self, req):
        """None if allowed, else a (status, headers, body) tuple."""
        return None

    def bearer_check(self, req, say=""):
        """authenticate() of a platform issuing client-credentials tokens: the bearer token
        must be one store["tokens"] holds (token -> expiry, epoch seconds), not expired.
        `say` starts each refusal's message (the platform's wording)."""
        h = req.headers.get("Authorization") or ""
        if not h.startswith("Bearer "):
            return self.unauthorized(say + "no bearer token")
        with self.lock:
            exp = self.store["tokens"].get(h[7:].strip())
            if exp is None:
                return self.unauthorized(say + "the access token is invalid")
            if exp <= time.time():
                self.store["token_rejections"] += 1
                return self.unauthorized(say + "the access token has expired")
        return None

    def format_error(self, status, errors):
        return {"errors": errors}

    def unauthorized(self):
        return 401, {}, self.format_error(401, [{"message": "Unauthorized"}])

    def route_rate_check_locked(self, req, now):
        """Per-route limits on top of the global `rate` (called with the lock held, after
        the global check let the request through): None if allowed, else seconds to wait."""
        return None

    def log_body(self, req):
        """What the request log shows as the request body (override to parse forms, mask secrets)."""
        return req.json_or_none()

    def current_request(self):
        """The request this thread is answering (for hooks such as format_error that get no
        request, e.g. to answer errors in the shape of the API version the path belongs to)."""
        return getattr(self._tls, "req", None)

    @classmethod
    def add_arguments(cls, parser):
        """Platform-specific command-line options (main() calls this before parsing)."""

    def apply_args(self, args):
        """Called by main() with the parsed options once the sandbox is built."""

    # ---- registration --------------------------------------------------------------
    def route(self, method, pattern, fn):
        self.routes.append((method.upper(), re.compile(pattern), fn))

    def admin_route(self, method, pattern, fn):
        """pattern is relative to /_sandbox."""
        self.admin_routes.append((method.upper(), re.compile(pattern), fn))

    # ---- state -------------------------------------------------------------------
    def _reset_locked(self):
        self.store = self.build_store(copy.deepcopy(self.seed))
        self.config = dict(self.start_config)
        self.rate = parse_rate(self.config["rate"])
        self.window = []
        self.faults = []
        self.log = collections.deque(maxlen=self.log_max)
        self.seq = 0
        self.stats = {"total": 0, "by_status": collections.Counter(),
                      "by_method": collections.Counter(), "by_fault": collections.Counter(), "connections": 0}
        # wake up requests sleeping in a "timeout" fault or a delay: they were made
        # against the old state and must not touch the new store.
        old, self._interrupt = self._interrupt, threading.Event()
        old.set()

    def interrupt_all(self):
        self._interrupt.set()

    # ---- rate limiting -----------------------------------------------------------
    def _rate_check_locked(self, now):
        """None if allowed (and counted), else seconds until a slot frees (>= 1)."""
        if self.rate is None:
            return None
        n, w = self.rate
        return window_admit(self.window, n, w, now)

    # ---- faults ------------------------------------------------------------------
    @staticmethod
    def _check_fault(rule):
        if not isinstance(rule, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(rule) - FAULT_KEYS
        if unknown:
            raise ValueError("unknown fault key(s): %s" % ", ".join(sorted(unknown)))
        mode = rule.get("mode")
        if isinstance(mode, int) and not isinstance(mode, bool):
            mode = str(mode)
        if mode not in FAULT_MODES:
            raise ValueError("mode must be one of: %s" % ", ".join(FAULT_MODES))
        out = {"mode": mode}
        for k in ("every", "count"):
            if rule.get(k) is not None:
                v = rule[k]
                if isinstance(v, bool) or not isinstance(v, int) or v < (1 if k == "every" else 0):
                    raise ValueError("%s must be an integer >= %d" % (k, 1 if k == "every" else 0))
                out[k] = v
        if rule.get("method") is not None:
            if not isinstance(rule["method"], str):
                raise ValueError("method must be a string")
            out["method"] = rule["method"].upper()
        if rule.get("path") is not None:
            if not isinstance(rule["path"], str):
                raise ValueError("path must be a string (regex)")
            try:
                re.compile(rule["path"])
            except re.error as e:
                raise ValueError("path is not a valid regex: %s" % e)
            out["path"] = rule["path"]
        if "retry_after" in rule:
            v = rule["retry_after"]
            if v is not None and v is not False and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError("retry_after must be seconds (>= 0), false or null")
            out["retry_after"] = v
        if rule.get("delay_ms") is not None:
            v = rule["delay_ms"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError("delay_ms must be a number >= 0")
            out["delay_ms"] = v
        if rule.get("id") is not None:
            if not isinstance(rule["id"], (str, int)) or isinstance(rule["id"], bool):
                raise ValueError("id must be a string or an integer")
            out["id"] = rule["id"]
        elif mode == "answer_id":
            raise ValueError("mode answer_id needs an id")
        if rule.get("ratio") is not None:
            v = rule["ratio"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ValueError("ratio must be a number in (0, 1]")
            out["ratio"] = v
        seed = rule.get("seed", 1)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        # `ratio` fires on that share of the matching requests, drawn from a seeded generator:
        # the same requests in the same order meet the same faults.
        out["rng"] = random.Random(seed)
        out["seen"] = 0
        out["fired"] = 0
        return out

    def _match_fault_locked(self, req):
        """First rule that fires for this request (rules are tried in order; a rule
        counts the requests it matches, `every` and `count` apply to that count)."""
        for rule in self.faults:
            if "method" in rule and rule["method"] != req.method:
                continue
            if "path" in rule and not re.search(rule["path"], req.path):
                continue
            rule["seen"] += 1
            if "every" in rule and rule["seen"] % rule["every"] != 0:
                continue
            if "ratio" in rule and rule["rng"].random() >= rule["ratio"]:
                continue
            if "count" in rule and rule["fired"] >= rule["count"]:
                continue
            rule["fired"] += 1
            fired = {k: v for k, v in rule.items() if k != "rng"}
            if fired["mode"] == "5xx":
                fired["mode"] = rule["rng"].choice(("500", "502", "503"))
            return fired
        return None

    # ---- API request processing -----------------------------------------------------
    def _find_route(self, routes, method, path):
        for m, rx, fn in routes:
            if m == method:
                mt = rx.fullmatch(path)
                if mt:
                    return fn, mt
        return None, None

    def _process(self, req):
        """Auth + route + handler. Returns (status, headers, body bytes)."""
        resp = self.authenticate(req)
        if resp is None:
            fn, mt = self._find_route(self.routes, req.method, req.path)
            if fn is None:
                resp = 404, {}, self.format_error(404, [{"message": "Not found"}])
            else:
                req.match = mt
                try:
                    with self.lock:
                        status, headers, body = fn(req)
                        data, ctype = encode_body(body)
                    headers = dict(headers or {})
                    if ctype and "Content-Type" not in headers:
                        headers["Content-Type"] = ctype
                    return status, headers, data
                except ApiError as e:
                    resp = e.status, e.headers, self.format_error(e.status, e.errors)
                except Exception:
                    traceback.print_exc(file=sys.stderr)
                    resp = 500, {}, self.format_error(500, [{"message": "Internal server error"}])
        status, headers, body = resp
        data, ctype = encode_body(body)
        headers = dict(headers or {})
        if ctype and "Content-Type" not in headers:
            headers["Content-Type"] = ctype
        return status, headers, data

    def _fault_response(self, rule, req, retry_header):
        """(kind, status, headers, body bytes) for a fault that does not touch the store."""
        mode = rule["mode"]
        if mode == "429":
            ra = rule.get("retry_after", 1 if retry_header else None)
            headers = {}
            if ra is not None and ra is not False:
                headers["Retry-After"] = str(int(math.ceil(ra)))
            body = self.format_error(429, [{"message": "Too many requests"}])
            return "respond", 429, headers, body
        if mode == "500":
            return "respond", 500, {}, self.format_error(500, [{"message": "Internal server error"}])
        if mode in ("502", "503"):
            title = "502 Bad Gateway" if mode == "502" else "503 Service Temporarily Unavailable"
            html = ("<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
                    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n" % (title, title))
            return "respond", int(mode), {"Content-Type": "text/html"}, html.encode()
        if mode == "408":
            return "respond", 408, {"Connection": "close"}, \
                self.format_error(408, [{"message": "Request timeout"}])
        if mode == "401":
            status, headers, body = self.unauthorized()
            return "respond", status, headers, body
        if mode == "echo_auth":
            # What a careless platform does: quote back what it received, credentials included.
            seen = ["%s: %s" % (h, req.headers.get(h)) for h in ("X-API-KEY", "Authorization") if req.headers.get(h)]
            if b"client_secret" in req.body:
                seen.append("body: " + req.body.decode("utf-8", "replace"))
            msg = "Invalid request; received " + ("; ".join(seen) or "no credentials")
            return "respond", 422, {}, self.format_error(422, [{"message": msg}])
        if mode == "html200":
            html = ("<!DOCTYPE html><html><head><title>We'll be back soon</title></head><body>"
                    "<h1>We're sorry, but something went wrong.</h1>"
                    "<p>The service is under maintenance. Please try again later.</p></body></html>")
            return "respond", 200, {"Content-Type": "text/html; charset=utf-8"}, html.encode()
        if mode == "malformed":
            return "respond", 200, {"Content-Type": "application/json; charset=utf-8"}, \
                b'{"data": [{"id": 1, "first_name": "Broken",, "metadata": {'
        if mode == "drop":
            return "drop", None, {}, b""
        if mode in ("truncated", "reset_midbody"):
            body = None
            if req.method == "GET":      # GET does not change the store: show real data, cut
                st, _h, data = self._process(req)
                if st == 200 and len(data) >= 4:
                    body = data
            if body is None:
                body = dumps({"data": {"id": 1, "message": "this answer is cut in the middle",
                                       "padding": "x" * 200}})
            kind = "partial" if mode == "truncated" else "reset"
            return kind, 200, {"Content-Type": "application/json; charset=utf-8"}, body
        raise AssertionError(mode)

    @staticmethod
    def _with_ids(data, new_id):
        """The answer with its record ids replaced: the answer's own, its data's (one record or
        a list), at the top or under attributes, a {"label", "value"} wrapper kept."""
        try:
            obj = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return data
        if not isinstance(obj, dict):
            return data
        d = obj.get("data")
        records = [obj] + ([d] if isinstance(d, dict) else d if isinstance(d, list) else [])
        for r in records:
            for holder in (r, r.get("attributes") if isinstance(r, dict) else None):
                if isinstance(holder, dict) and "id" in holder:
                    if isinstance(holder["id"], dict) and "value" in holder["id"]:
                        holder["id"]["value"] = new_id
                    else:
                        holder["id"] = new_id
        return dumps(obj)

    def handle_api(self, req):
        """Returns (kind, status, headers, body bytes); kind in respond|drop|partial|reset."""
        self._tls.req = req
        with self.lock:
            # When the request reached the socket (the handler's stamp, on the monotonic
            # clock), else now: 16 threads race to this point, in any order (window_admit).
            now = req.arrived if req.arrived is not None else time.monotonic()
            delay_ms = self.config["delay_ms"]
            retry_header = self.config["retry_after"]
            wait = self._rate_check_locked(now)
            if wait is None:
                wait = self.route_rate_check_locked(req, now)
            rule = None if wait is not None else self._match_fault_locked(req)
            interrupt = self._interrupt
        fault = rule["mode"] if rule else None
        kind = "respond"
        if wait is not None:
            status = 429
            headers = {"Retry-After": str(wait)} if retry_header else {}
            data, ctype = encode_body(self.format_error(429, [{"message": "Too many requests"}]))
            headers["Content-Type"] = ctype
        elif fault in (None, "timeout", "commit_then_drop", "commit_then_500", "answer_id"):
            if fault == "timeout" and interrupt.wait(rule.get("delay_ms", 60000) / 1000.0):
                # sandbox was reset (or is shutting down) while this request slept
                kind, status, headers, data = "drop", None, {}, b""
            else:
                status, headers, data = self._process(req)
                if fault == "commit_then_drop":
                    kind = "drop"
                elif fault == "commit_then_500":
                    status, headers = 500, {}
                    data, ctype = encode_body(self.format_error(500, [{"message": "Internal server error"}]))
                    headers["Content-Type"] = ctype
                elif fault == "answer_id":
                    data = self._with_ids(data, rule["id"])
        else:
            kind, status, headers, body = self._fault_response(rule, req, retry_header)
            data, ctype = encode_body(body)
            headers = dict(headers)
            if ctype and "Content-Type" not in headers:
                headers["Content-Type"] = ctype
        if delay_ms:
            interrupt.wait(delay_ms / 1000.0)
        self._log_request(req, status, fault, now)
        return kind, status, headers, data

    def _log_request(self, req, status, fault, arrived):
        # ts: wall clock when answered; arrived: monotonic clock when the rate limiter counted it.
        entry = {
            "seq": 0, "method": req.method, "path": req.path, "query": req.query,
            "status": status, "fault": fault, "body": self.log_body(req), "ts": round(time.time(), 6),
            "arrived": round(arrived, 6),
        }
        with self.lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)
            st = self.stats
            st["total"] += 1
            st["by_status"][str(status) if status is not None else "none"] += 1
            st["by_method"][req.method] += 1
            if fault:
                st["by_fault"][fault] += 1

    # ---- admin -------------------------------------------------------------------
    def _register_admin(self):
        a = self.admin_route
        a("GET", r"/health", lambda req: (200, {}, {"ok": True, "sandbox": self.name}))
        a("GET", r"/requests", self._admin_requests)
        a("GET", r"/store", lambda req: (200, {}, self.store_snapshot()))
        a("POST", r"/reset", self._admin_reset)
        a("GET", r"/faults", lambda req: (200, {}, {"faults": self._faults_shown()}))
        a("POST", r"/faults", self._admin_add_faults)
        a("DELETE", r"/faults", self._admin_clear_faults)
        a("GET", r"/config", lambda req: (200, {}, self.config))
        a("POST", r"/config", self._admin_config)
        a("GET", r"/stats", self._admin_stats)

    def _admin_requests(self, req):
        since = req.param("since")
        try:
            since = int(since) if since not in (None, "") else 0
        except ValueError:
            raise AdminError(400, "since must be an integer")
        out = []
        for e in reversed(self.log):
            if e["seq"] <= since:
                break
            out.append(e)
        out.reverse()
        return 200, {}, out

    def _admin_reset(self, req):
        self._reset_locked()
        if not gc.isenabled():
            gc.collect()  # --gc-off: collect between runs, never during one
        return 200, {}, {"ok": True}

    def _admin_add_faults(self, req):
        body = self._admin_json(req)
        rules = body if isinstance(body, list) else [body]
        try:
            checked = [self._check_fault(r) for r in rules]
        except ValueError as e:
            raise AdminError(400, str(e))
        self.faults.extend(checked)
        return 200, {}, {"ok": True, "faults": self._faults_shown()}

    def _faults_shown(self):
        """The rules as JSON: without their random generators."""
        return [{k: v for k, v in r.items() if k != "rng"} for r in self.faults]

    def _admin_clear_faults(self, req):
        self.faults = []
        return 200, {}, {"ok": True, "faults": []}

    def _admin_config(self, req):
        body = self._admin_json(req)
        if not isinstance(body, dict):
            raise AdminError(400, "config body must be a JSON object")
        new = dict(self.config)
        try:
            for k, v in body.items():
                if k == "rate":
                    new["rate"] = rate_to_str(parse_rate(v))
                elif k == "delay_ms":
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                        raise ValueError("delay_ms must be a number >= 0")
                    new["delay_ms"] = v
                elif k == "retry_after":
                    if not isinstance(v, bool):
                        raise ValueError("retry_after must be true or false")
                    new["retry_after"] = v
                else:
                    new[k] = self.check_config(k, v)
        except ValueError as e:
            raise AdminError(400, str(e))
        if new["rate"] != self.config["rate"]:
            self.rate = parse_rate(new["rate"])
            self.window.clear()
        self.config = new
        return 200, {}, dict(self.config, ok=True)

    def _admin_stats(self, req):
        st = self.stats
        return 200, {}, {"total": st["total"], "by_status": dict(st["by_status"]),
                         "by_method": dict(st["by_method"]), "by_fault": dict(st["by_fault"]),
                         "connections": st.get("connections", 0)}

    @staticmethod
    def _admin_json(req):
        if not req.body.strip():
            return {}
        try:
            return json.loads(req.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise AdminError(400, "body is not valid JSON")

    def handle_admin(self, req):
        self._tls.req = req
        sub = req.raw_path[len(ADMIN_PREFIX):] or "/"
        if len(sub) > 1:
            sub = sub.rstrip("/")
        fn, mt = self._find_route(self.admin_routes, req.method, sub)
        if fn is None:
            return 404, {}, {"ok": False, "error": "no admin route %s %s" % (req.method, req.raw_path)}
        req.match = mt
        try:
            with self.lock:
                status, headers, body = fn(req)
                data, ctype = encode_body(body)
        except AdminError as e:
            status, headers = e.status, {}
            data, ctype = encode_body({"ok": False, "error": e.message})
        except ApiError as e:
            status, headers = e.status, e.headers
            data, ctype = encode_body(self.format_error(e.status, e.errors))
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            status, headers = 500, {}
            data, ctype = encode_body({"ok": False, "error": "internal error: %s" % e})
        headers = dict(headers or {})
        if ctype and "Content-Type" not in headers:
            headers["Content-Type"] = ctype
        return status, headers, data


# --------------------------------------------------------------------------------------
# HTTP layer

class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hrsync-sandbox/1.0"
    timeout = 300            # idle keep-alive connections are closed after this

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        # API connections accepted since the last reset (/stats "connections"); the admin
        # client's are counted too: a test compares with its own requests.
        sb = self.server.sandbox
        with sb.lock:
            sb.stats["connections"] = sb.stats.get("connections", 0) + 1
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        # Requests are read through a reader that keeps when their bytes reached the socket.
        self.stamped = None
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, SCM_TIMESTAMPNS, 1)
        except OSError:
            return  # no receive timestamps here: the limiter counts a request when it is read
        self.rfile.close()
        self.stamped = StampedSocketReader(self.connection)
        self.rfile = io.BufferedReader(self.stamped)

    def handle_one_request(self):
        if self.stamped is not None:
            self.stamped.first = None
        super().handle_one_request()

    def arrival(self):
        """When this request's first bytes reached the socket, on the monotonic clock (None if
        unknown: they came in the same read as the request before, or no timestamps)."""
        first = self.stamped.first if self.stamped is not None else None
        if first is None:
            return None
        now = time.monotonic()
        return min(now, now - (time.time() - first))

    def log_message(self, fmt, *args):
        if not self.server.sandbox.quiet:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        pass  # _dispatch logs once per request itself

    # every method goes to the same dispatcher
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise BadRequest(400, "incomplete chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequest(400, "bad chunk size")
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    raise BadRequest(413, "body too large")
                data = self.rfile.read(size)
                if len(data) < size:
                    raise BadRequest(400, "incomplete chunked body")
                chunks.append(data)
                self.rfile.readline(65537)  # CRLF after the chunk
            return b"".join(chunks)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(400, "bad Content-Length")
        if n > MAX_BODY:
            raise BadRequest(413, "body too large")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise BadRequest(400, "incomplete body")
        return data

    def _head_bytes(self, status, headers, length):
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = ["%s %d %s" % (self.protocol_version, status, reason),
                 "Server: " + self.version_string(),
                 "Date: " + self.date_time_string()]
        conn_set = False
        for k, v in headers.items():
            if k.lower() == "content-length":
                continue
            if k.lower() == "connection":
                conn_set = True
                if v.lower() == "close":
                    self.close_connection = True
            lines.append("%s: %s" % (k, v))
        if status != 204 and status >= 200 and length is not None:
            lines.append("Content-Length: %d" % length)
        if not conn_set:
            if self.close_connection:
                lines.append("Connection: close")
            elif self.request_version == "HTTP/1.0":
                lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_all(self, data):
        try:
            self.wfile.write(data)
            return True
        except OSError:
            self.close_connection = True
            return False

    def _respond(self, status, headers, body):
        if status == 204:
            body = b""
        self._send_all(self._head_bytes(status, headers, len(body)) + body)

    def _dispatch(self):
        sb = self.server.sandbox
        t0 = time.time()
        try:
            body = self._read_body()
        except BadRequest as e:
            self.close_connection = True
            self._respond(e.status, {"Content-Type": "application/json; charset=utf-8"},
                          dumps({"error": e.message}))
            return
        except OSError:
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        raw_path = parts.path or "/"
        query = parts.query
        method = self.command.upper()

        if raw_path == ADMIN_PREFIX or raw_path.startswith(ADMIN_PREFIX + "/"):
            req = Request(sb, method, raw_path, raw_path, query, self.headers, body)
            status, headers, data = sb.handle_admin(req)
            self._respond(status, headers, data)
            return

        path = raw_path
        pre = sb.api_prefix
        if pre and (raw_path == pre or raw_path.startswith(pre + "/")):
            path = raw_path[len(pre):] or "/"
        elif pre:
            path = raw_path            # outside the API: no route will match -> 404
        if len(path) > 1:
            path = path.rstrip("/")
        req = Request(sb, method, raw_path, path, query, self.headers, body)
        req.arrived = self.arrival()
        kind, status, headers, data = sb.handle_api(req)

        if kind == "respond":
            self._respond(status, headers, data)
        elif kind == "drop":
            self.close_connection = True
        elif kind == "partial":
            # full Content-Length announced, half the body sent, then a clean close (FIN)
            self.close_connection = True
            self._send_all(self._head_bytes(status, headers, len(data)) + data[: max(1, len(data) // 2)])
        elif kind == "reset":
            # full Content-Length announced, half the body sent, then an abortive close (RST)
            self.close_connection = True
            if self._send_all(self._head_bytes(status, headers, len(data)) + data[: max(1, len(data) // 2)]):
                time.sleep(0.05)
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
        if not sb.quiet:
            sys.stderr.write("%s %s %s -> %s%s (%.1f ms)\n" % (
                time.strftime("%H:%M:%S"), method, self.path, status if status is not None else "-",
                "" if kind == "respond" else " [%s]" % kind, (time.time() - t0) * 1000))


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler_cls, sandbox):
        self.sandbox = sandbox
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler_cls)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # client went away: normal for fault tests
        super().handle_error(request, client_address)


# --------------------------------------------------------------------------------------
# CLI

def load_seed(path):
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        seed = json.load(f)
    if not isinstance(seed, dict):
        raise SystemExit("seed %s: top level must be a JSON object" % path)
    return seed


def make_parser(description, default_seed=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0, help="TCP port (0 = ephemeral; the port is printed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--api-key", required=True, help="the only API key accepted")
    p.add_argument("--seed", default=default_seed, help="seed JSON file (reference data)")
    p.add_argument("--rate", default="0", help="rate limit 'N/W' = N requests per W seconds; 0 = unlimited")
    p.add_argument("--delay-ms", type=float, default=0, help="latency added to every API answer")
    p.add_argument("--no-retry-after", action="store_true", help="429 answers carry no Retry-After header")
    p.add_argument("--log-max", type=int, default=200000, help="request log keeps the last N entries")
    p.add_argument("--quiet", action="store_true", help="no per-request lines on stderr")
    p.add_argument("--gc-off", action="store_true",
                   help="no cyclic garbage collection while serving (only at /_sandbox/reset): a full "
                        "collection of a large store stalls every thread for ~70 ms, and the requests "
                        "that queued meanwhile then reach the rate limiter bunched together")
    return p


def main(sandbox_cls, argv=None, default_seed=None):
    parser = make_parser(sandbox_cls.__doc__ or sandbox_cls.name, default_seed)
    sandbox_cls.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        parse_rate(args.rate)
    except ValueError as e:
        raise SystemExit("--rate: %s" % e)
    seed = load_seed(args.seed)
    try:
        sandbox = sandbox_cls(api_key=args.api_key, seed=seed, rate=args.rate,
                              delay_ms=args.delay_ms, retry_after=not args.no_retry_after,
                              quiet=args.quiet, log_max=args.log_max)
    except ValueError as e:
        raise SystemExit("%s: bad seed: %s" % (sandbox_cls.name, e))
    sandbox.apply_args(args)
    if args.gc_off:
        gc.collect()
        gc.disable()
    server = SandboxHTTPServer((args.host, args.port), SandboxHandler, sandbox)
    port = server.server_address[1]

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="serve", daemon=True)
    t.start()
    sys.stdout.write("listening on %d\n" % port)
    sys.stdout.flush()
    if not args.quiet:
        sys.stderr.write("%s sandbox on http://%s:%d%s (rate %s, delay %s ms)\n" % (
            sandbox.name, args.host, port, sandbox.api_prefix, sandbox.config["rate"], args.delay_ms))
    while not stop.wait(0.5):
        pass
    sandbox.interrupt_all()
    server.shutdown()
    server.server_close()
    return 0
