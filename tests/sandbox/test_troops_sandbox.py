"""Tests for the Troops sandbox (tests/sandbox/troops.py): the wire contract it holds hrsync
to. Stdlib clients only; raw paths and queries, so that encoding is what is tested.

Run, from the repository's root: /usr/bin/python3 -m pytest -q tests/sandbox/test_troops_sandbox.py
"""
import http.client
import json
import os

import pytest

import sandbox_proc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(HERE, "troops.py")
SEED = os.path.join(ROOT, "tests", "fixtures", "troops", "seed.json")
KEY = "troops-test-key"
PREFIX = "/api/integrations"
TEA = "7d4c1b0e-2f3a-4b5c-8d6e-9f0a1b2c3d4e"
OTHER = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
AGENCY = "a1000000-0000-4000-8000-000000000001"
OTHER_AGENCY = "a2000000-0000-4000-8000-000000000001"
SENDER = "b1000000-0000-4000-8000-000000000001"
Q_TEA = "filters%5Btea_id%5D=" + TEA


@pytest.fixture(scope="module")
def server():
    sp = sandbox_proc.start(SCRIPT, "--api-key", KEY, "--seed", SEED)
    yield sp.port
    sandbox_proc.stop(sp)


@pytest.fixture(autouse=True)
def fresh(server):
    call(server, "POST", "/_sandbox/reset", admin=True)


def call(port, method, path, body=None, key=KEY, admin=False):
    """(status, headers, JSON) for a raw path (query included), sent as is."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key and not admin:
        headers["Authorization"] = "Bearer " + key
    c.request(method, path if admin else PREFIX + path, body=json.dumps(body) if body is not None else None,
              headers=headers)
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, dict(r.getheaders()), json.loads(raw) if raw else None


def candidate(**over):
    b = {"tea_id": TEA, "agency_id": AGENCY, "sender_id": SENDER, "invitation_type": "manage",
         "first_name": "Léa", "last_name": "Garnier", "email": "lea.garnier@interim.example",
         "phone": "+33612345678", "address": {"street": "3 rue Servient", "zip_code": "69003", "city": "Lyon",
                                              "country": "FR"},
         "ref": "erp:8304/06"}
    b.update(over)
    return b


# ---- auth, scope, queries, pages

def test_bearer_key_is_required(server):
    st, _h, body = call(server, "GET", "/jobs?" + Q_TEA, key="wrong")
    assert st == 401 and body["error"]["code"] == "unauthorized"
    assert "invalid or expired" in body["error"]["message"]


def test_lists_need_the_tea_and_encoded_nested_filters(server):
    assert call(server, "GET", "/candidates")[0] == 400
    st, _h, body = call(server, "GET", "/candidates?filters[tea_id]=" + TEA)
    assert st == 400 and "percent-encoded" in body["error"]["message"]
    st, _h, body = call(server, "GET", "/candidates?" + Q_TEA + "&filters%5Bname%5D=x")
    assert st == 400 and "unknown filter" in body["error"]["message"]
    st, _h, body = call(server, "GET", "/candidates?filters%5Btea_id%5D=00000000-0000-4000-8000-000000000000")
    assert st == 404
    assert call(server, "GET", "/candidates?" + Q_TEA)[0] == 200


def test_cursor_pages(server):
    for i in range(5):
        assert call(server, "POST", "/candidates", candidate(email=f"c{i}@x.example", ref=f"erp:100{i}/01"))[0] == 201
    seen, after = [], None
    while True:
        st, _h, body = call(server, "GET", "/candidates?" + Q_TEA + "&limit=2" + (f"&after={after}" if after else ""))
        assert st == 200 and len(body["data"]) <= 2
        seen += [c["id"] for c in body["data"]]
        after = body["next"]
        if not after:
            break
    assert len(seen) == len(set(seen)) == 5
    assert call(server, "GET", "/candidates?" + Q_TEA + "&limit=101")[0] == 400
    assert call(server, "GET", "/candidates?" + Q_TEA + "&after=bogus")[0] == 400


def test_lookups_are_per_tea(server):
    st, _h, body = call(server, "GET", "/agencies?filters%5Btea_id%5D=" + OTHER)
    assert st == 200 and [a["code"] for a in body["data"]] == ["MRS1"]
    st, _h, body = call(server, "GET", "/jobs?" + Q_TEA)
    assert {"id", "name", "code"} <= set(body["data"][0])


# ---- candidates and references

def test_candidate_found_by_encoded_reference_in_query_and_path(server):
    st, _h, made = call(server, "POST", "/candidates", candidate())
    assert st == 201 and made["data"]["refs"] == {"troops": made["data"]["id"], "erp": "8304/06", "ssn": None}
    st, _h, body = call(server, "GET", "/candidates?" + Q_TEA + "&filters%5Bref%5D%5Berp%5D=8304%2F06")
    assert [c["id"] for c in body["data"]] == [made["data"]["id"]]
    st, _h, body = call(server, "PATCH", "/candidates/erp:8304%2F06?" + Q_TEA, {"tea_id": TEA, "last_name": "Roux"})
    assert st == 200 and body["data"]["last_name"] == "Roux"
    # The same reference in the other TEA is another worker: unknown there.
    st, _h, body = call(server, "PATCH", "/candidates/erp:8304%2F06?filters%5Btea_id%5D=" + OTHER,
                        {"tea_id": OTHER, "last_name": "X"})
    assert st == 404


def test_existing_reference_is_409_naming_the_candidate(server):
    _s, _h, made = call(server, "POST", "/candidates", candidate())
    st, _h, body = call(server, "POST", "/candidates", candidate(email="other@interim.example"))
    assert st == 409 and body["error"]["details"][0]["id"] == made["data"]["id"]


def test_nir_keys_are_checked_corsica_included(server):
    assert call(server, "POST", "/candidates", candidate(ref="ssn:2 90 07 2A 004 015 95"))[0] == 201
    st, _h, body = call(server, "POST", "/candidates", candidate(ref="ssn:185057800608499", email="b@x.example"))
    assert st == 422 and "bad key" in body["error"]["message"]
    st, _h, body = call(server, "GET", "/candidates?" + Q_TEA + "&filters%5Bref%5D%5Bssn%5D=290072A00401595")
    assert len(body["data"]) == 1


def test_candidate_validation_details(server):
    st, _h, body = call(server, "POST", "/candidates", candidate(email="nope", first_name="", agency_id=AGENCY))
    assert st == 422
    fields = {d["field"] for d in body["error"]["details"]}
    assert {"email", "first_name"} <= fields
    assert call(server, "POST", "/candidates", candidate(agency_id=OTHER_AGENCY))[0] == 422   # an agency of another TEA


def test_archive_and_unarchive(server):
    _s, _h, made = call(server, "POST", "/candidates", candidate())
    cid = made["data"]["id"]
    assert call(server, "POST", f"/candidates/{cid}/archive", {"tea_id": TEA})[0] == 200
    assert call(server, "POST", f"/candidates/{cid}/archive", {"tea_id": TEA})[0] == 409
    assert call(server, "POST", f"/candidates/{cid}/unarchive", {"tea_id": TEA})[0] == 200


# ---- the batch import

def batch(n, strategy=None, **over):
    cands = [{k: v for k, v in candidate(email=f"w{i}@x.example", ref=f"erp:{2000 + i}/01").items()
              if k not in ("tea_id", "agency_id", "sender_id")} for i in range(n)]
    b = {"tea_id": TEA, "agency_id": AGENCY, "sender_id": SENDER, "candidates": cands}
    if strategy:
        b["strategy"] = strategy
    b.update(over)
    return b


def test_import_at_most_100(server):
    assert call(server, "POST", "/candidates/import", batch(101))[0] == 400
    st, _h, body = call(server, "POST", "/candidates/import", batch(100))
    assert st == 200 and [x["index"] for x in body["data"]] == list(range(100))
    assert all("id" in x and x["warnings"] == [] for x in body["data"])


@pytest.mark.parametrize("strategy,created", [("allow_warnings", 4), ("skip_candidates_with_warnings", 3),
                                              ("rollback_on_warnings", 0)])  # of 4 items without an error of their own
def test_import_strategies(server, strategy, created):
    b = batch(4, strategy)
    b["candidates"][1]["phone"] = "06 12 34 56 78"        # a warning: not international
    b["candidates"][2]["email"] = "bad"                    # an error whatever the strategy
    b["candidates"].append(dict(b["candidates"][0], email="dup@x.example"))   # the same ref twice
    st, _h, body = call(server, "POST", "/candidates/import", b)
    assert st == 200
    res = body["data"]
    assert "error" in res[2] and "error" in res[4]
    assert len([x for x in res if "id" in x]) == created - (1 if created else 0)   # the duplicate ref fails
    codes = {x["index"]: x["error"]["code"] for x in res if "error" in x}
    if strategy == "allow_warnings":
        assert res[1]["warnings"] and "id" in res[1] and "id" in res[0] and "id" in res[3]
    elif strategy == "skip_candidates_with_warnings":
        assert codes[1] == "skipped_with_warnings" and "id" in res[0] and "id" in res[3]
    else:
        assert codes[1] == "warnings" and codes[0] == codes[3] == "rolled_back"
    stored = call(server, "GET", "/candidates?" + Q_TEA)[2]["data"]
    assert len(stored) == len([x for x in res if "id" in x])


def test_import_item_with_an_existing_reference(server):
    _s, _h, made = call(server, "POST", "/candidates", candidate(ref="erp:2000/01"))
    st, _h, body = call(server, "POST", "/candidates/import", batch(2))
    assert body["data"][0]["error"]["code"] == "already_exists"
    assert body["data"][0]["error"]["details"][0]["id"] == made["data"]["id"]
    assert "id" in body["data"][1]


# ---- availabilities, paychecks, variables, missions

def test_availability_of_an_unknown_reference_is_404(server):
    body = {"tea_id": TEA, "candidate_ref": "erp:8304/06", "started_at": "2026-11-02T08:00:00+01:00",
            "ended_at": "2026-11-03T18:00:00+01:00", "available": False, "comment": "Congés"}
    assert call(server, "POST", "/availabilities", body)[0] == 404
    assert call(server, "GET", "/availabilities?" + Q_TEA + "&filters%5Bcandidate_ref%5D=erp%3A8304%2F06")[0] == 404
    call(server, "POST", "/candidates", candidate())
    st, _h, made = call(server, "POST", "/availabilities", body)
    assert st == 201
    q = ("/availabilities?" + Q_TEA + "&filters%5Bcandidate_ref%5D=erp%3A8304%2F06"
         "&filters%5Bstarted_at_greater_than%5D=2026-11-02T08%3A00%3A00%2B01%3A00"
         "&filters%5Bstarted_at_less_than%5D=2026-11-02T08%3A00%3A00%2B01%3A00")
    assert [a["id"] for a in call(server, "GET", q)[2]["data"]] == [made["data"]["id"]]
    assert call(server, "POST", "/availabilities", dict(body, ended_at="2026-11-03"))[0] == 422   # no offset
    assert call(server, "DELETE", "/availabilities/" + made["data"]["id"])[0] == 204


def test_paycheck_number_unique_per_tea(server):
    call(server, "POST", "/candidates", candidate())
    p = {"tea_id": TEA, "candidate_ref": "erp:8304/06", "number": "BP-1", "period": "2026-10",
         "issued_on": "2026-11-05", "gross_amount": 2000.5, "net_amount": 1560.39, "currency": "EUR"}
    st, _h, made = call(server, "POST", "/paychecks", p)
    assert st == 201
    st, _h, body = call(server, "POST", "/paychecks", p)
    assert st == 409 and body["error"]["details"][0]["id"] == made["data"]["id"]
    assert call(server, "POST", "/paychecks", dict(p, number="BP-2", period="2026-13"))[0] == 422


def test_variables_upserted_by_code(server):
    v = {"tea_id": TEA, "label": "Prime de panier", "kind": "amount", "value": 6.9}
    assert call(server, "PUT", "/bookkeeping_variables/PRIME_PANIER", v)[0] == 201
    assert call(server, "PUT", "/bookkeeping_variables/PRIME_PANIER", dict(v, value=7))[0] == 200
    assert call(server, "DELETE", "/bookkeeping_variables/PRIME_PANIER")[0] == 400            # which TEA?
    assert call(server, "DELETE", "/bookkeeping_variables/PRIME_PANIER?" + Q_TEA)[0] == 204
    assert call(server, "DELETE", "/bookkeeping_variables/PRIME_PANIER?" + Q_TEA)[0] == 404


def test_missions_decided_once(server):
    call(server, "POST", "/candidates", candidate())
    st, _h, m = call(server, "POST", "/_sandbox/missions", {"tea_id": TEA, "candidate_ref": "erp:8304/06"}, admin=True)
    mid = m["data"]["id"]
    st, _h, body = call(server, "GET", "/missions?" + Q_TEA + "&filters%5Bstatus%5D=proposed")
    assert [x["id"] for x in body["data"]] == [mid] and body["data"][0]["refs"]["erp"] == "8304/06"
    assert call(server, "POST", f"/missions/{mid}/accept", {"tea_id": TEA})[0] == 200
    st, _h, body = call(server, "POST", f"/missions/{mid}/reject", {"tea_id": TEA, "reason": "x"})
    assert st == 409 and body["error"]["details"][0]["status"] == "accepted"
    assert call(server, "POST", f"/missions/{mid}/accept", {"tea_id": OTHER})[0] == 404


def test_rate_limit_answers_429_with_retry_after(server):
    call(server, "POST", "/_sandbox/config", {"rate": "2/1"}, admin=True)
    codes = [call(server, "GET", "/jobs?" + Q_TEA) for _ in range(3)]
    assert [c[0] for c in codes] == [200, 200, 429]
    assert int(codes[2][1]["Retry-After"]) >= 1 and codes[2][2]["error"]["code"] == "rate_limited"
