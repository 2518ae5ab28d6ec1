"""Troops end to end: the connector (connectors/troops.c) against its sandbox
(tests/sandbox/troops.py) over the Evolia-shaped mirror (tests/fixtures/erp/gen_troops.py):
every entity, the TEA scope and the encoding of native references, the batch import and its
lost answers, the strategies for warnings, the deferral of records whose worker Troops does
not know in the TEA, the pull of missions and the decisions sent back, and bad input."""
import collections
import json
import os
import re
import uuid
from urllib.parse import parse_qs, unquote

import pytest

from checks import assert_clean, finish, kill
from harness import MARKER, items
from world_troops import OTHER_TEA, SENDER, TEA, TOKEN, TroopsWorld

IMPORT = "/candidates/import"


def make(cluster, template, sandboxes, tmp_path, files=None, **kw):
    tmpl, manifest = template
    db = f"troops_{uuid.uuid4().hex[:10]}"
    cluster.clone(tmpl, db)
    sb = sandboxes(TroopsWorld)
    sb.reset()
    w = TroopsWorld(cluster, db, sb, tmp_path, **kw)
    if files:
        w.use_mappings(*files)
    w.manifest = manifest
    return w


@pytest.fixture
def troops_world(cluster, template, sandboxes, tmp_path):
    """A factory: a Troops world with options (strategy, batch, workers, mapping files)."""
    made = []

    def factory(**kw):
        d = tmp_path / f"w{len(made)}"
        d.mkdir()
        w = make(cluster, template, sandboxes, d, **kw)
        made.append(w)
        return w
    yield factory
    for w in made:
        cluster.admin(f'DROP DATABASE IF EXISTS "{w.db}" WITH (FORCE)')


@pytest.fixture
def tw(troops_world):
    return troops_world()


def writes(w, reqs):
    return w.writes(reqs)


def posts(reqs, path):
    return [r for r in reqs if r["method"] == "POST" and r["path"] == path]


def query(r):
    return parse_qs(r["query"], keep_blank_values=True)


# ---------------------------------------------------------------- a first load, and the night after

def test_first_load_in_batches_then_second_run_writes_nothing(tw):
    w = tw
    r = w.run("run")
    assert r.rc == 1, r.err[-4000:]
    exp = w.assert_end_state()
    reqs = w.sandbox.requests()
    imports = posts(reqs, IMPORT)
    # 120 workers of 3 agencies: one import per agency, none sent one by one.
    assert len(imports) == 3 and not posts(reqs, "/candidates"), [r["path"] for r in writes(w, reqs)][:10]
    sent = sum(len(x["body"]["candidates"]) for x in imports)
    assert sent == len(w.tm["workers"]) - 1            # the worker with no last name is never sent
    for x in imports:
        b = x["body"]
        assert b["tea_id"] == TEA and b["sender_id"] == SENDER and b["strategy"] == "allow_warnings"
        assert all(not {"tea_id", "agency_id", "sender_id"} & set(c) for c in b["candidates"])
        assert all(re.fullmatch(r"erp:\d{4}/\d{2}", c["ref"]) for c in b["candidates"])
    # Paychecks and availabilities of valid workers are there; the bad rows wait or fail.
    store = w.sandbox.store()
    assert {p["number"] for p in items(store["paychecks"])} == exp["paychecks"]
    assert {v["code"] for v in items(store["variables"])} == set(w.tm["variables"])
    f = w.failures()
    taken = [k for k in w.bad("interimaires", ("platform_error",))][0]
    assert f[("candidates", taken)][0] == "refused"
    assert "email has already been taken in this TEA" in f[("candidates", taken)][1]
    other = w.bad("indisponibilites")
    assert {k for (m, k), (kind, _) in f.items() if m == "availabilities"} == other
    assert all(f[("availabilities", k)][0] == "deferred" and "erp:9901/01" in f[("availabilities", k)][1] and
               "another TEA" in f[("availabilities", k)][1] for k in other)
    for k in w.tm["warned"]:
        assert re.search(rf"key={re.escape(k)} action=create candidate created with warnings: phone is not in "
                         r"international format", r.err), r.err[-3000:]

    seq = w.sandbox.last_seq()
    r2 = w.run("run")
    assert r2.rc == 1, r2.err[-3000:]
    after = w.sandbox.requests(since=seq)
    assert writes(w, after) == [], writes(w, after)[:5]
    assert w.failures() == f
    for m in w.push_mappings:
        s = r2.summary(m)
        assert s["created"] == s["updated"] == s["terminated"] == 0, (m, s)


def test_one_by_one_when_batch_import_is_off(troops_world):
    w = troops_world(batch=False)
    w.use_mappings("candidates.yaml")
    r = w.run("run")
    assert r.rc == 1, r.err[-3000:]
    reqs = w.sandbox.requests()
    assert not posts(reqs, IMPORT)
    assert len(posts(reqs, "/candidates")) == len(w.tm["workers"]) - 1
    cands = w.tea_candidates()
    assert len(cands) == len(w.tm["workers"]) - 2      # blank name and taken e-mail


# ---------------------------------------------------------------- scope and encoding

def test_every_list_is_scoped_and_references_are_encoded(tw):
    w = tw
    # An availability's answer lost: it is looked for on Troops by its worker's reference and start.
    with w.sandbox.faulted({"mode": "commit_then_drop", "method": "POST", "path": "^/availabilities$", "count": 1}):
        r = w.run("run")
    reqs = w.sandbox.requests()
    for x in reqs:
        if x["method"] == "GET":
            assert "filters%5Btea_id%5D=" + TEA in x["query"], x
            assert not re.search(r"[\[\]/]", x["query"]), x           # keys and values encoded
        elif x["body"] is not None and x["path"] != IMPORT:
            assert x["body"]["tea_id"] == TEA, x
    look = [x for x in reqs if x["path"] == "/availabilities" and x["method"] == "GET" and "candidate_ref" in
            unquote(x["query"])]
    assert len(look) == 1 and re.search(r"filters%5Bcandidate_ref%5D=erp%3A\d{4}%2F\d\d&", look[0]["query"]), look
    starts = query(look[0])["filters[started_at_greater_than]"] + query(look[0])["filters[started_at_less_than]"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", s) for s in starts), starts
    assert "%2B01%3A00" in look[0]["query"] or "%2B02%3A00" in look[0]["query"]     # the offset's '+' encoded
    # Records of a worker Troops does not know are checked by reference (a read), never posted.
    lookups = [x["query"] for x in reqs if x["path"] == "/candidates" and x["method"] == "GET"]
    assert any("filters%5Bref%5D%5Berp%5D=7777%2F77" in q for q in lookups), lookups
    assert any("filters%5Bref%5D%5Berp%5D=9901%2F01" in q for q in lookups), lookups
    assert not [x for x in posts(reqs, "/paychecks") if x["body"]["candidate_ref"] == "erp:7777/77"]
    assert not [x for x in posts(reqs, "/availabilities") if x["body"]["candidate_ref"] == "erp:9901/01"]
    w.assert_end_state()


def test_a_worker_of_another_tea_waits_until_it_is_in_this_one(tw):
    w = tw
    w.run("run")
    deferred = w.bad("indisponibilites").pop()
    assert w.failures()[("availabilities", deferred)][0] == "deferred"
    # The worker joins this TEA in Evolia: created, and its availability follows in the same run.
    w.sql("INSERT INTO evolia.interimaires (matricule, nom, prenom, email, telephone, adresse, code_postal, ville, "
          "agence_code) VALUES ('9901/01', 'Benali', 'Karim', 'karim.benali@interim.example', '+33 6 11 22 33 44', "
          "'3 rue Servient', '69003', 'Lyon', 'LYO1')")
    r = w.run("run")
    assert r.summary("availabilities")["created"] == 1, r.err[-3000:]
    assert ("availabilities", deferred) not in w.failures()
    store = w.sandbox.store()
    mine = [c for c in items(store["candidates"]) if c["refs"]["erp"] == "9901/01"]
    assert {c["tea_id"] for c in mine} == {TEA, OTHER_TEA}             # one per TEA: references are per TEA
    av = [a for a in items(store["availabilities"]) if MARKER.search(a["comment"]).group(1) == deferred]
    assert len(av) == 1 and av[0]["tea_id"] == TEA and av[0]["candidate_id"] == [c for c in mine if c["tea_id"] == TEA][0]["id"]


# ---------------------------------------------------------------- batch: lost answers and strategies

@pytest.mark.parametrize("mode", ["commit_then_500", "500", "timeout"])
def test_a_batch_whose_answer_was_lost_is_looked_up_before_anything_is_sent_again(troops_world, mode):
    w = troops_world()
    w.use_mappings("candidates.yaml")
    rule = {"mode": mode, "method": "POST", "path": "^/candidates/import$", "count": 1}
    if mode == "timeout":
        rule["delay_ms"] = 6000
    with w.sandbox.faulted(rule):
        r = w.run("run", timeout=300)
        lost = w.sandbox.fired()
    assert r.rc == 1, r.err[-3000:]
    assert len(lost) == 1
    lost_refs = [c["ref"] for c in lost[0]["body"]["candidates"]]
    reqs = w.sandbox.requests()
    after = [x for x in reqs if x["seq"] > lost[0]["seq"] or (mode == "timeout" and x["seq"] != lost[0]["seq"])]
    # Each record of the lost batch was looked for by its reference on Troops (not in the index).
    looked = {unquote("erp:" + query(x)["filters[ref][erp]"][0]) for x in after
              if x["method"] == "GET" and x["path"] == "/candidates" and "filters[ref][erp]" in query(x)}
    assert set(lost_refs) <= looked, sorted(set(lost_refs) - looked)[:5]
    resent = [c["ref"] for x in posts(after, IMPORT) for c in x["body"]["candidates"]] + \
             [x["body"]["ref"] for x in posts(after, "/candidates")]
    if mode == "500":
        assert sorted(set(resent) & set(lost_refs)) == sorted(lost_refs)   # not made: sent again, once
    elif mode == "commit_then_500":
        assert not set(resent) & set(lost_refs)                          # made: found, never sent again
    cands = w.tea_candidates()
    refs = collections.Counter(c["refs"]["erp"] for c in cands)
    assert not [k for k, n in refs.items() if n > 1], "a candidate created twice"
    assert len(refs) == len(w.tm["workers"]) - 2
    left = w.sql("SELECT erp_key FROM hrsync.failures WHERE kind = 'transient'")
    assert not left, left


@pytest.mark.parametrize("strategy", ["allow_warnings", "skip_candidates_with_warnings", "rollback_on_warnings"])
def test_batch_items_with_warnings_under_each_strategy(troops_world, strategy):
    w = troops_world(strategy=strategy)
    w.use_mappings("candidates.yaml")
    r = w.run("run")
    assert r.rc == 1, r.err[-3000:]
    warned = set(w.tm["warned"])
    on_troops = {c["refs"]["erp"] for c in w.tea_candidates()}
    f = w.failures()
    ok = set(w.tm["workers"]) - w.bad("interimaires")
    imports = posts(w.sandbox.requests(), IMPORT)
    assert all(x["body"]["strategy"] == strategy for x in imports)
    if strategy == "allow_warnings":
        assert on_troops == ok
        assert not warned & {k for (_m, k) in f}
    else:
        assert on_troops == ok - warned
        for k in warned:
            kind, reason = f[("candidates", k)]
            assert kind == "refused" and "not imported: phone is not in international format" in reason, reason
    if strategy == "rollback_on_warnings":
        # The batches rolled back for the warned workers' sake went again without them.
        assert len(imports) > 3
    seq = w.sandbox.last_seq()
    w.run("run")
    assert writes(w, w.sandbox.requests(since=seq)) == []


def test_batches_hold_at_most_100_and_a_refused_batch_goes_one_by_one(troops_world):
    w = troops_world(workers=260)
    w.use_mappings("candidates.yaml")
    with w.sandbox.faulted({"mode": "429", "method": "POST", "path": "^/candidates/import$", "count": 1,
                            "retry_after": 1}):
        r = w.run("run")
    assert r.rc == 1, r.err[-3000:]
    imports = [x for x in posts(w.sandbox.requests(), IMPORT) if x["status"] == 200]
    assert imports and max(len(x["body"]["candidates"]) for x in imports) == 100
    assert r.summary("candidates")["429s"] == 1
    assert len(w.tea_candidates()) == 258

    # A batch Troops refuses as a whole (here: its agency left the TEA) is sent one by one.
    w2 = troops_world(workers=20)
    w2.use_mappings("candidates.yaml")
    with w2.sandbox.faulted({"mode": "echo_auth", "method": "POST", "path": "^/candidates/import$", "count": 3}):
        r = w2.run("run")
    assert r.rc == 1, r.err[-3000:]
    assert "sending its" in r.err and "creates one by one" in r.err
    assert TOKEN not in r.err and TOKEN not in w2.state_dump()
    assert len(posts(w2.sandbox.requests(), "/candidates")) == 19
    assert len(w2.tea_candidates()) == 18


# ---------------------------------------------------------------- lifecycle

def test_candidate_update_archive_and_unarchive(tw):
    w = tw
    w.use_mappings("candidates.yaml")
    w.run("run")
    live = sorted(set(w.tm["workers"]) - set(w.tm["left"]) - w.bad("interimaires"))
    k = live[0]
    cid = w.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'candidates' AND erp_key = %s", (k,))[0][0]
    w.sql("UPDATE evolia.interimaires SET ville = 'Lyon 7e', telephone = '+33 7 00 00 00 01' WHERE matricule = %s", (k,))
    seq = w.sandbox.last_seq()
    r = w.run("run")
    wr = writes(w, w.sandbox.requests(since=seq))
    assert [(x["method"], x["path"]) for x in wr] == [("PATCH", f"/candidates/{cid}")], wr
    assert query(wr[0])["filters[tea_id]"] == [TEA]
    assert "sender_id" not in wr[0]["body"] and "invitation_type" not in wr[0]["body"]
    c = w.sandbox.store()["candidates"][cid]
    assert c["address"]["city"] == "Lyon 7e" and c["phone"] == "+33 7 00 00 00 01"

    w.sql("UPDATE evolia.interimaires SET date_sortie = '2026-11-30' WHERE matricule = %s", (k,))
    seq = w.sandbox.last_seq()
    r = w.run("run")
    assert r.summary("candidates")["terminated"] == 1
    assert [(x["method"], x["path"]) for x in writes(w, w.sandbox.requests(since=seq))] == \
        [("POST", f"/candidates/{cid}/archive")]
    assert w.sandbox.store()["candidates"][cid]["archived"] is True

    w.sql("UPDATE evolia.interimaires SET date_sortie = NULL WHERE matricule = %s", (k,))
    seq = w.sandbox.last_seq()
    r = w.run("run")
    assert [(x["method"], x["path"]) for x in writes(w, w.sandbox.requests(since=seq))] == \
        [("POST", f"/candidates/{cid}/unarchive")]
    assert w.sandbox.store()["candidates"][cid]["archived"] is False
    assert w.sql("SELECT status FROM hrsync.links WHERE mapping = 'candidates' AND erp_key = %s", (k,)) == [("active",)]


def test_a_candidate_made_by_hand_on_troops_is_adopted_not_duplicated(tw):
    w = tw
    w.use_mappings("candidates.yaml")
    k = sorted(set(w.tm["workers"]) - w.bad("interimaires") - set(w.tm["left"]))[5]
    st, made = w.sandbox.api("POST", "/candidates", {
        "tea_id": TEA, "agency_id": "a1000000-0000-4000-8000-000000000001", "sender_id": SENDER,
        "invitation_type": "invite", "first_name": "X", "last_name": "Y", "email": "by-hand@interim.example",
        "phone": "+33600000000", "address": {"street": "1 rue", "zip_code": "69001", "city": "Lyon", "country": "FR"},
        "ref": "erp:" + k})
    assert st == 201, made
    # HR archived it too; the worker is in the group in Evolia: adopted, updated, unarchived.
    assert w.sandbox.api("POST", f"/candidates/{made['data']['id']}/archive", {"tea_id": TEA})[0] == 200
    r = w.run("run")
    assert re.search(rf"key={re.escape(k)} action=adopt ", r.err), r.err[-3000:]
    refs = [c["refs"]["erp"] for c in w.tea_candidates()]
    assert refs.count(k) == 1
    c = w.sandbox.store()["candidates"][made["data"]["id"]]
    assert c["archived"] is False and c["email"] != "by-hand@interim.example"
    mine = [(x["method"], x["path"]) for x in writes(w, w.sandbox.requests()) if made["data"]["id"] in x["path"]]
    assert mine == [("POST", f"/candidates/{made['data']['id']}/archive"), ("PATCH", f"/candidates/{made['data']['id']}"),
                    ("POST", f"/candidates/{made['data']['id']}/unarchive")], mine


def test_availability_cancelled_is_deleted_and_a_change_replaces_it(tw):
    w = tw
    w.use_mappings("candidates.yaml", "availabilities.yaml")
    w.run("run")
    links = dict(w.sql("SELECT erp_key, platform_id FROM hrsync.links WHERE mapping = 'availabilities' "
                       "AND status = 'active'"))
    a, b = sorted(links)[:2]
    w.sql("UPDATE evolia.indisponibilites SET statut = 'annulee' WHERE id_indispo = %s", (a,))
    w.sql("UPDATE evolia.indisponibilites SET fin = fin + interval '1 day' WHERE id_indispo = %s", (b,))
    seq = w.sandbox.last_seq()
    r = w.run("run")
    wr = [(x["method"], x["path"]) for x in writes(w, w.sandbox.requests(since=seq))]
    assert ("DELETE", f"/availabilities/{links[a]}") in wr and ("DELETE", f"/availabilities/{links[b]}") in wr
    assert wr.count(("POST", "/availabilities")) == 1, wr
    store = w.sandbox.store()["availabilities"]
    assert links[a] not in store and links[b] not in store
    new = [x for x in store.values() if MARKER.search(x["comment"]).group(1) == b]
    assert len(new) == 1 and new[0]["ended_at"].startswith(
        str(w.sql("SELECT (fin)::date FROM evolia.indisponibilites WHERE id_indispo = %s", (b,))[0][0]))
    assert r.summary("availabilities")["terminated"] == 1


# ---------------------------------------------------------------- paychecks, variables

def test_paychecks_by_number_and_variables_by_code(tw):
    w = tw
    w.run("run")
    num = sorted(w.expected()["paychecks"])[0]
    pid = w.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'paychecks' AND erp_key = %s", (num,))[0][0]
    w.sql("UPDATE evolia.bulletins SET net = net + 10 WHERE numero = %s", (num,))
    w.sql("UPDATE evolia.variables_paie SET valeur = 7.10 WHERE code = 'PRIME_PANIER'")
    w.sql("UPDATE evolia.variables_paie SET supprimee = true WHERE code = 'ASTREINTE'")
    seq = w.sandbox.last_seq()
    r = w.run("run")
    assert r.rc == 3 and "mass-change guard" in r.err     # 1 of 8 variables deleted is over 5%
    w.run("run", "--force")
    wr = writes(w, w.sandbox.requests(since=seq))
    got = sorted((x["method"], x["path"], x["query"]) for x in wr)
    assert got == sorted([("PATCH", f"/paychecks/{pid}", ""), ("PUT", "/bookkeeping_variables/PRIME_PANIER", ""),
                          ("DELETE", "/bookkeeping_variables/ASTREINTE", f"filters%5Btea_id%5D={TEA}")]), got
    store = w.sandbox.store()
    assert store["variables"][f"{TEA}/PRIME_PANIER"]["value"] == 7.1
    assert f"{TEA}/ASTREINTE" not in store["variables"]
    assert store["paychecks"][pid]["tea_id"] == TEA

    # A paycheck number Troops has already (entered by hand): adopted, not sent twice.
    w.sql("DELETE FROM hrsync.links WHERE mapping = 'paychecks' AND erp_key = %s", (num,))
    seq = w.sandbox.last_seq()
    r = w.run("run")
    assert re.search(rf"key={num} action=adopt ", r.err), r.err[-3000:]
    assert not posts(w.sandbox.requests(since=seq), "/paychecks")


# ---------------------------------------------------------------- missions

def test_missions_pulled_and_decisions_sent_once(tw):
    w = tw
    w.run("run")
    k1, k2 = sorted(set(w.tm["workers"]) - w.bad("interimaires") - set(w.tm["left"]))[:2]
    m = []
    for k in (k1, k2, k2):
        m.append(w.sandbox.call("POST", "/missions", {
            "tea_id": TEA, "candidate_ref": "erp:" + k, "job_id": "c1000000-0000-4000-8000-000000000001",
            "started_at": "2026-12-14T07:00:00+01:00", "ended_at": "2026-12-18T17:00:00+01:00"})["data"]["id"])
    r = w.run("run")
    rows = {pid: (mat, st) for pid, mat, st in w.sql("SELECT platform_id, matricule, status "
                                                     "FROM erp_inbound.troops_missions")}
    assert rows == {m[0]: (k1, "proposed"), m[1]: (k2, "proposed"), m[2]: (k2, "proposed")}, rows
    # Agency users decide in Evolia; the third mission was meanwhile cancelled on Troops.
    w.sandbox.call("POST", f"/missions/{m[2]}/status", {"status": "cancelled"})
    w.sql("INSERT INTO evolia.decisions_missions (mission_id, decision, motif) VALUES (%s, 'accept', NULL), "
          "(%s, 'refuse', 'déjà en mission'), (%s, 'accept', NULL)", (m[0], m[1], m[2]))
    seq = w.sandbox.last_seq()
    r = w.run("run")
    wr = writes(w, w.sandbox.requests(since=seq))
    assert sorted((x["method"], x["path"]) for x in wr) == sorted(
        [("POST", f"/missions/{m[0]}/accept"), ("POST", f"/missions/{m[1]}/reject"), ("POST", f"/missions/{m[2]}/accept")])
    assert [x["body"] for x in wr if x["path"].endswith("reject")] == [{"tea_id": TEA, "reason": "déjà en mission"}]
    store = w.sandbox.store()["missions"]
    assert (store[m[0]]["status"], store[m[1]]["status"], store[m[2]]["status"]) == ("accepted", "rejected", "cancelled")
    kind, reason = w.failures()[("mission_decisions", m[2])]
    assert kind == "refused" and f"mission {m[2]} is cancelled already" in reason, reason
    # Never sent again; the pull brings the new statuses back into the ERP.
    seq = w.sandbox.last_seq()
    w.run("run")
    assert writes(w, w.sandbox.requests(since=seq)) == []
    assert dict(w.sql("SELECT platform_id, status FROM erp_inbound.troops_missions")) == \
        {m[0]: "accepted", m[1]: "rejected", m[2]: "cancelled"}
    # A decision changed in Evolia after it was sent is refused, not sent.
    w.sql("UPDATE evolia.decisions_missions SET decision = 'reject' WHERE mission_id = %s", (m[0],))
    seq = w.sandbox.last_seq()
    w.run("run")
    assert writes(w, w.sandbox.requests(since=seq)) == []
    assert "a mission is decided once" in w.failures()[("mission_decisions", m[0])][1]


def test_a_decision_whose_answer_was_lost_is_not_a_failure(tw):
    w = tw
    w.use_mappings("candidates.yaml", "missions.yaml", "mission_decisions.yaml")
    w.run("run")
    k = sorted(set(w.tm["workers"]) - w.bad("interimaires") - set(w.tm["left"]))[0]
    mid = w.sandbox.call("POST", "/missions", {"tea_id": TEA, "candidate_ref": "erp:" + k})["data"]["id"]
    w.sql("INSERT INTO evolia.decisions_missions (mission_id, decision) VALUES (%s, 'accept')", (mid,))
    with w.sandbox.faulted({"mode": "commit_then_drop", "method": "POST", "path": "^/missions/", "count": 1}):
        r = w.run("run")
    assert ("mission_decisions", mid) not in w.failures(), r.err[-3000:]
    assert w.sandbox.store()["missions"][mid]["status"] == "accepted"
    assert w.sql("SELECT status FROM hrsync.links WHERE mapping = 'mission_decisions'") == [("active",)]


# ---------------------------------------------------------------- bad input

SSN_MAPPING = """
connector: troops
entity: candidates
name: candidates_by_nir
source:
  table: evolia.interimaires
  key: matricule
fields:
  ref:             { ref: "ssn:{nir}", ref_mapping: candidates_by_nir }
  agency_id:       { lookup: { resource: agencies, match: code }, from: agence_code }
  invitation_type: { value: manage }
  first_name:      { from: prenom, required: true }
  last_name:       { from: nom, transform: [trim], required: true }
  email:           { from: email, transform: [trim, lower] }
  phone:           { from: telephone }
  address:
    street:   { from: adresse }
    zip_code: { from: code_postal }
    city:     { from: ville }
    country:  { from: pays }
"""


def test_ssn_references_bad_nir_keys_and_corsica(tw, tmp_path):
    w = tw
    f = tmp_path / "candidates_by_nir.yaml"
    f.write_text(SSN_MAPPING)
    w.mappings = [str(f)]
    w.write_config()
    live = sorted(set(w.tm["workers"]) - w.bad("interimaires"))
    bad_key, corsica = live[0], live[1]
    # A NIR whose key does not match; a Corsican NIR (2A counts as 19 for the key), spaced.
    w.sql("UPDATE evolia.interimaires SET nir = '1 85 05 78 006 084 99' WHERE matricule = %s", (bad_key,))
    w.sql("UPDATE evolia.interimaires SET nir = '2 90 07 2A 004 015 95' WHERE matricule = %s", (corsica,))
    r = w.run("run")
    kind, reason = w.failures()[("candidates_by_nir", bad_key)]
    assert kind == "mapping" and "key" in reason.lower(), reason
    failures = repr(w.sql("SELECT * FROM hrsync.failures"))
    for text in (r.err, r.out, failures):
        assert "006 084" not in text and "0060849" not in text and "290072A004015" not in text
    by_ssn = {c["refs"]["ssn"]: c for c in w.tea_candidates()}
    assert "290072A00401595" in by_ssn                       # sent normalised, as Troops resolves it
    imports = posts(w.sandbox.requests(), IMPORT)
    assert "ssn:290072A00401595" in [c["ref"] for x in imports for c in x["body"]["candidates"]]


def test_troops_messages_quoting_a_nir_are_masked(tw, tmp_path):
    """Troops quotes the reference it refused: the NIR never reaches failures nor a log line."""
    w = tw
    f = tmp_path / "candidates_by_nir.yaml"
    f.write_text(SSN_MAPPING)
    w.mappings = [str(f)]
    w.write_config()
    a, b = sorted(set(w.tm["workers"]) - w.bad("interimaires"))[:2]
    w.sql("UPDATE evolia.interimaires SET nir = (SELECT nir FROM evolia.interimaires WHERE matricule = %s), "
          "agence_code = (SELECT agence_code FROM evolia.interimaires WHERE matricule = %s) WHERE matricule = %s",
          (a, a, b))
    nir = w.sql("SELECT replace(nir, ' ', '') FROM evolia.interimaires WHERE matricule = %s", (a,))[0][0]
    r = w.run("-v", "run")
    refused = [(k, reason) for (m, k), (kind, reason) in w.failures().items() if k in (a, b) and kind == "refused"]
    assert len(refused) == 1, w.failures()
    reason = refused[0][1]
    assert "is given twice in this import" in reason and "ssn:%s %s %s **" % (nir[0], nir[1:3], nir[3:5]) in reason, reason
    raw = [x for x in w.sandbox.requests() if x["path"] == IMPORT]
    assert any(c["ref"] == "ssn:" + nir for x in raw for c in x["body"]["candidates"])   # sent as it is
    failures = repr(w.sql("SELECT * FROM hrsync.failures"))
    for text in (r.err, r.out, failures):
        assert nir not in text and nir[5:13] not in text


def test_wrong_token_stops_with_troops_words(tw):
    w = tw
    env = dict(w.env(), TROOPS_TOKEN="expired-jwt")
    r = w.run("run", env=env)
    assert r.rc == 3, r.err[-3000:]
    assert "the Troops API key is invalid or expired; ask Troops for a new one" in r.err
    reqs = w.sandbox.requests()
    # The requests already in flight meet the same 401; nothing else goes out, nothing is written.
    assert reqs and all(x["status"] == 401 for x in reqs) and len(reqs) <= 8, [(x["method"], x["path"]) for x in reqs]
    assert w.tea_candidates() == [] and w.sandbox.store()["variables"] == {}


def test_check_refuses_bad_tea_and_strategy(tw):
    w = tw
    text = open(w.path).read().replace(f"tea_id: {TEA}", "tea_id: 12345").replace(
        f"sender_id: {SENDER}", f"sender_id: {SENDER}\n    import_strategy: rollback_on_warning")
    open(w.path, "w").write(text)
    r = w.run("check")
    assert r.rc == 2, r.err
    assert "tea_id: expected a UUID" in r.err
    assert "unknown value 'rollback_on_warning' (did you mean 'rollback_on_warnings'?)" in r.err
    text = text.replace("    tea_id: 12345\n", "")
    open(w.path, "w").write(text)
    r = w.run("check")
    assert r.rc == 2 and "needs 'tea_id:'" in r.err, r.err


def test_transient_faults_and_429_are_retried_within_the_run(tw):
    w = tw
    rules = [{"mode": "500", "method": "GET", "every": 7, "count": 3},
             {"mode": "429", "every": 25, "count": 3, "retry_after": 1},
             {"mode": "drop", "method": "POST", "path": "^/(availabilities|paychecks)$", "every": 9, "count": 4}]
    with w.sandbox.faulted(*rules):
        r = w.run("run", timeout=300)
        fired = w.sandbox.fired()
    assert {x["fault"] for x in fired} == {"500", "429", "drop"}
    assert r.rc == 1, r.err[-3000:]
    w.assert_end_state()
    assert not w.sql("SELECT erp_key FROM hrsync.failures WHERE kind = 'transient'")


# ---------------------------------------------------------------- what the contract holds every connector to

@pytest.mark.parametrize("plan", [(("creates", 1),), (("commit", 40), ("requests", 30)), (("commit", 15),),
                                  (("creates", 2), ("commit", 200))], ids=lambda p: "+".join(f"{h}{n}" for h, n in p))
def test_killed_runs_create_no_duplicates(tw, plan):
    """Runs SIGKILLed in the middle of a batch (the import sent, its answer not read or not
    committed), then a run to the end: every worker once on Troops, linked to the right id."""
    w = tw
    w.write_config(timeout="30s")
    for how, n in plan:
        kill(w, how, n)
    r = finish(w)
    w.assert_consistent()
    if plan == (("commit", 15),):
        # The 15th answer is a candidate of the first batch (after the 8 variables): found, not made again.
        # (Later ones may be a deferral or an archive, which leave nothing to adopt.)
        assert re.search(r"mapping=candidates key=\S+ action=adopt ", r.err), r.err[-3000:]


def test_plan_and_dry_run_send_no_write_and_write_no_state(tw):
    w = tw
    plan = w.run("-q", "plan", "--format", "json")
    assert plan.rc == 1, plan.err[-3000:]
    assert json.loads(plan.out)["totals"]["create"] > 100
    dry = w.run("-q", "run", "--dry-run")
    assert dry.rc == 1, dry.err[-3000:]
    assert writes(w, w.sandbox.requests()) == []
    assert w.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hrsync'") == [(0,)]
    w.run("run")
    leaver = sorted(set(w.tm["workers"]) - set(w.tm["left"]) - w.bad("interimaires"))[0]
    w.sql("UPDATE evolia.interimaires SET date_sortie = '2026-11-30' WHERE matricule = %s", (leaver,))
    state, seq = w.state_dump(), w.sandbox.last_seq()
    table = w.run("-q", "plan")
    assert re.search(rf"^candidates\s+{re.escape(leaver)}\s+terminate\b", table.out, re.M), table.out
    assert writes(w, w.sandbox.requests(since=seq)) == [] and w.state_dump() == state


def test_debug_output_and_urls_hold_no_token(tw, tmp_path):
    w = tw
    secret_file = tmp_path / "troops-token"
    secret_file.write_text(TOKEN + "\n")
    os.chmod(secret_file, 0o600)
    text = open(w.path).read().replace("    token: { env: TROOPS_TOKEN }", f"    token: {{ file: {secret_file} }}")
    open(w.path, "w").write(text)
    env = {k: v for k, v in w.env().items() if k != "TROOPS_TOKEN"}
    outs = []
    with w.sandbox.faulted({"mode": "500", "method": "GET", "every": 5, "count": 2},
                           {"mode": "html200", "method": "POST", "path": "^/paychecks$", "count": 2}):
        r = w.run("-v", "run", env=env)
    assert r.rc == 1, r.err[-3000:]
    outs.append(r.out + r.err)
    for args in (["-v", "--log-format", "json", "run"], ["-v", "check", "--online"], ["-v", "plan"],
                 ["-v", "failures"], ["-v", "preview", "candidates", "--limit", "3"]):
        r = w.run(*args, env=env)
        assert r.rc in (0, 1), (args, r.err[-2000:])
        outs.append(r.out + r.err)
    everything = "\n".join(outs) + w.state_dump()
    assert_clean(everything, TOKEN)
    urls = "\n".join(x["path"] + "?" + x["query"] for x in w.sandbox.requests())
    assert_clean(urls, TOKEN)


def test_check_online_names_a_tea_troops_does_not_know(tw):
    w = tw
    text = open(w.path).read().replace(f"tea_id: {TEA}", "tea_id: 00000000-0000-4000-8000-0000000000aa")
    open(w.path, "w").write(text)
    r = w.run("check", "--online")
    assert r.rc == 2, r.err[-2000:]
    assert ("connector 'troops': could not read agencies from the platform: GET /agencies?filters%5Btea_id%5D="
            "00000000-0000-4000-8000-0000000000aa&limit=100: HTTP 404: TEA 00000000-0000-4000-8000-0000000000aa "
            "not found") in r.err, r.err[-2000:]
    assert writes(w, w.sandbox.requests()) == []


def test_troops_references_name_a_candidate_troops_has(tw, tmp_path):
    """ref: "troops:{uuid}": Troops' own id, checked as a UUID and used as is: the candidate is
    updated, never created; one of another TEA is refused with Troops' words."""
    w = tw
    st, made = w.sandbox.api("POST", "/candidates", {
        "tea_id": TEA, "agency_id": "a1000000-0000-4000-8000-000000000001", "sender_id": SENDER,
        "invitation_type": "invite", "first_name": "X", "last_name": "Y", "email": "made-on-troops@interim.example",
        "phone": "+33600000000", "address": {"street": "1 rue", "zip_code": "69001", "city": "Lyon", "country": "FR"},
        "ref": None})
    assert st == 201
    uid, other = made["data"]["id"], "e2000000-0000-4000-8000-000000000001"     # the other TEA's worker
    a, b, c = sorted(set(w.tm["workers"]) - w.bad("interimaires") - set(w.tm["left"]))[:3]
    f = tmp_path / "candidates_by_id.yaml"
    f.write_text(SSN_MAPPING.replace("name: candidates_by_nir", "name: candidates_by_id")
                 .replace('ref: "ssn:{nir}", ref_mapping: candidates_by_nir', 'ref: "troops:{troops_id}"')
                 .replace("  table: evolia.interimaires\n",
                          f"  query: \"SELECT i.*, CASE matricule WHEN '{a}' THEN '{uid}' WHEN '{b}' THEN '{other}' "
                          f"WHEN '{c}' THEN 'not-a-uuid' END AS troops_id FROM evolia.interimaires i "
                          f"WHERE matricule IN ('{a}', '{b}', '{c}')\"\n"))
    w.mappings = [str(f)]
    w.write_config()
    r = w.run("run")
    assert r.rc == 1, r.err[-3000:]
    wr = writes(w, w.sandbox.requests())[1:]
    assert sorted((x["method"], x["path"], x["status"]) for x in wr) == sorted(
        [("PATCH", f"/candidates/{uid}", 200), ("PATCH", f"/candidates/{other}", 404)]), wr
    mine = [x for x in wr if x["path"].endswith(uid)][0]
    assert "ref" not in mine["body"] and mine["body"]["email"] != "made-on-troops@interim.example"
    assert w.sandbox.store()["candidates"][other]["last_name"] == "Benali"          # the other TEA's: untouched
    fails = w.failures()
    assert fails[("candidates_by_id", b)][0] == "refused" and "not found in this TEA" in fails[("candidates_by_id", b)][1]
    assert fails[("candidates_by_id", c)][0] == "mapping" and "UUID" in fails[("candidates_by_id", c)][1]
    assert w.sql("SELECT platform_id FROM hrsync.links WHERE erp_key = %s", (a,)) == [(uid,)]
