"""Teamtailor end to end: the organisation pushed through JSON:API, users found by
external-id and by e-mail, terminated as no_access (never deleted), hires pulled back into
the ERP with the candidate and the job, and the version, key and scope refusals, against
tests/sandbox/teamtailor.py."""
import os
import re

import pytest

from checks import retry_delays
from conftest import make_world
from world_teamtailor import TOKEN, TeamtailorWorld


@pytest.fixture(scope="session")
def tt_sandbox(sandboxes):
    return sandboxes(TeamtailorWorld)


@pytest.fixture
def tworld(cluster, template, tt_sandbox, tmp_path):
    yield from make_world(TeamtailorWorld, cluster, template, tt_sandbox, tmp_path)


def writes(reqs):
    return [r for r in reqs if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]


def failures(w, mapping):
    return {k: (kind, field, reason) for k, kind, field, reason in w.sql(
        "SELECT erp_key, kind, field, reason FROM hrsync.failures WHERE mapping = %s", (mapping,))}


# ---------------------------------------------------------------- the organisation pushed

def test_first_push_in_json_api_then_a_no_change_run_writes_nothing(tworld):
    w = tworld
    r = w.run("run", check_rc=1)  # the demo mirror's planted bad rows
    exp = w.assert_end_state()
    s = r.summary("teamtailor_users")
    assert s["created"] == len(exp["employees"]) and s["terminated"] == len(exp["dismissed"]) > 0
    assert r.summary("teamtailor_departments")["created"] == 12 and r.summary("teamtailor_locations")["created"] == 4
    reqs = w.sandbox.requests()
    users = [q for q in reqs if q["method"] == "POST" and q["path"] == "/users"]
    body = users[0]["body"]
    assert set(body) == {"data"} and body["data"]["type"] == "users" and "id" not in body["data"]
    attrs, rels = body["data"]["attributes"], body["data"]["relationships"]
    assert set(attrs) == {"external-id", "name", "email", "title", "role"}, attrs
    assert rels["department"]["data"]["type"] == "departments" and re.fullmatch(r"\d+", rels["department"]["data"]["id"])
    assert rels["location"]["data"]["type"] == "locations"
    assert {u["body"]["data"]["attributes"]["role"] for u in users} == {"user", "recruiter"}
    # lists are read 30 a page, the most Teamtailor gives
    gets = [q for q in reqs if q["method"] == "GET"]
    assert gets and all("page%5Bsize%5D=30" in q["query"] for q in gets if "filter" not in q["query"])
    # the bad rows failed with their field and reason, none sent
    f = failures(w, "teamtailor_users")
    assert exp["bad"] and {k for k, v in f.items() if v[0] == "mapping"} == exp["bad"], f
    assert exp["deferred"] and {k for k, v in f.items() if v[0] == "deferred"} == exp["deferred"]
    sent = {u["body"]["data"]["attributes"]["external-id"] for u in users}
    assert not sent & (exp["bad"] | exp["deferred"])

    seq = w.sandbox.last_seq()
    r2 = w.run("run", check_rc=1)
    assert writes(w.sandbox.requests(since=seq)) == []
    for m in w.push_mappings:
        s = r2.summary(m)
        assert s["created"] == s["updated"] == s["terminated"] == 0, (m, s)


def test_a_renamed_department_is_patched_in_json_api(tworld):
    w = tworld
    w.run("run", check_rc=1)
    w.sql("UPDATE erp.departments SET name = 'Comptabilité & Paie' WHERE department_code = 'DEP-08'")
    seq = w.sandbox.last_seq()
    w.run("run", check_rc=1)
    sent = writes(w.sandbox.requests(since=seq))
    pid = w.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'teamtailor_departments' AND erp_key = 'DEP-08'")[0][0]
    assert [(q["method"], q["path"]) for q in sent] == [("PATCH", f"/departments/{pid}")]
    assert sent[0]["body"] == {"data": {"type": "departments", "id": pid, "attributes": {"name": "Comptabilité & Paie"}}}
    names = {d["id"]: d["name"] for d in w.sandbox.store()["departments"]}
    assert names[pid] == "Comptabilité & Paie"


def test_records_made_by_hand_are_found_not_created_again(tworld):
    """A department with the same name (other case, spaces), a user with the ERP key as
    external-id, a user invited by hand with the same e-mail: adopted. A user holding
    another external-id with the e-mail of an ERP person: refused, nothing overwritten."""
    w = tworld
    sb = w.sandbox
    dep = sb.add("departments", {"name": "  бухгалтерия "})
    exp = w.expected()
    a, b, c = sorted(exp["employees"] - exp["dismissed"])[:3]
    email = dict(w.sql("SELECT personnel_number, lower(trim(email)) FROM erp.employees"))
    u_key = sb.add("users", {"name": "X", "email": "someone.else@example.org", "external-id": a, "role": "user"})
    u_mail = sb.add("users", {"name": "Y", "email": email[b], "role": "user"})
    u_other = sb.add("users", {"name": "Z", "email": email[c], "external-id": "HR-7", "role": "user"})
    w.run("run", check_rc=1)
    store = sb.store()
    assert [d["id"] for d in store["departments"] if d["name"].strip().lower() == "бухгалтерия"] == [dep]
    links = {(m, k): pid for m, k, pid in w.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
    assert links[("teamtailor_departments", "DEP-01")] == dep and not failures(w, "teamtailor_departments")
    assert {d["name"] for d in store["departments"] if d["id"] == dep} == {"Бухгалтерия"}   # adopted: renamed
    assert links[("teamtailor_users", a)] == u_key and links[("teamtailor_users", b)] == u_mail
    users = {u["id"]: u for u in store["users"]}
    assert users[u_mail]["external-id"] == b  # adopted: given its external-id
    assert users[u_key]["email"] == email[a]
    assert users[u_other]["external-id"] == "HR-7" and ("teamtailor_users", c) not in links
    kind, _field, reason = failures(w, "teamtailor_users")[c]
    assert kind == "refused" and "already used on Teamtailor by the user with external-id HR-7" in reason


def test_leaver_gets_no_access_and_is_never_deleted(tworld):
    w = tworld
    w.run("run", check_rc=1)
    exp = w.expected()
    leaver = sorted(exp["employees"] - exp["dismissed"])[0]
    pid = w.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'teamtailor_users' AND erp_key = %s", (leaver,))[0][0]
    w.sql("UPDATE erp.employees SET dismissal_date = '2026-11-30', dismissal_reason = 'DEM' "
          "WHERE personnel_number = %s", (leaver,))
    seq = w.sandbox.last_seq()
    r = w.run("run", check_rc=1)
    assert r.summary("teamtailor_users")["terminated"] == 1
    sent = writes(w.sandbox.requests(since=seq))
    assert [(q["method"], q["path"], q["body"]) for q in sent] == [
        ("PATCH", f"/users/{pid}", {"data": {"type": "users", "id": pid, "attributes": {"role": "no_access"}}})]
    store = w.sandbox.store()
    assert {u["id"]: u["role"] for u in store["users"]}[pid] == "no_access"
    assert store["deleted_users"] == [] and not [q for q in w.sandbox.requests() if q["method"] == "DELETE"]


# ---------------------------------------------------------------- bad input: clear, nothing lost

def test_user_whose_department_failed_waits_for_it(tworld):
    """Teamtailor refuses a department (a 422 that quotes the request's credentials, as a
    careless platform does): its staff are deferred, not sent without their department; after
    `hrsync retry`, the department and then its staff go through."""
    w = tworld
    with w.sandbox.faulted({"mode": "echo_auth", "method": "POST", "path": "^/departments$", "count": 1}):
        r = w.run("run", check_rc=1)
    f = failures(w, "teamtailor_departments")
    assert len(f) == 1
    (code, (kind, _field, reason)), = f.items()
    assert kind == "refused" and "HTTP 422" in reason and TOKEN not in reason, reason
    name = w.sql("SELECT name FROM erp.departments WHERE department_code = %s", (code,))[0][0]
    staff = staff_of_named(w, name)
    assert staff
    fu = failures(w, "teamtailor_users")
    for k in staff:
        assert fu[k][0] == "deferred" and code in fu[k][2], (k, fu.get(k))
    sent = {q["body"]["data"]["attributes"]["external-id"] for q in w.sandbox.requests()
            if q["method"] == "POST" and q["path"] == "/users"}
    assert not sent & staff
    assert r.summary("teamtailor_users")["deferred"] >= len(staff)

    w.run("retry", "teamtailor_departments", check_rc=0)
    w.run("run", check_rc=1)
    w.assert_end_state()
    assert not set(failures(w, "teamtailor_users")) & staff
    assert not failures(w, "teamtailor_departments")


def staff_of_named(w, name):
    """Staff who hire whose ERP row names this department."""
    return {k for (k,) in w.sql(
        "SELECT personnel_number FROM erp.employees WHERE lower(trim(department_name)) = lower(%s) "
        "AND (lower(trim(grade)) IN ('middle', 'senior') OR trim(department_name) IN "
        "('Отдел кадров', 'Ressources humaines'))", (name,))}


def test_a_422_reads_as_teamtailor_says_it(tworld, tmp_path):
    """A mapping that lets an empty e-mail through: Teamtailor's 422 becomes the failure
    'email - can't be blank', the record is kept for the next run, the others go on."""
    w = tworld
    src = open(os.path.join(w.mapping_dir, "users.yaml")).read()
    loose = src.replace("check: email, required: true", "nullify_empty_marker: 1").replace(
        "transform: [trim, lower], nullify_empty_marker: 1", "transform: [trim, lower, nullify_empty], omit_null: true")
    assert loose != src
    path = tmp_path / "users.yaml"
    path.write_text(loose)
    w.mappings = [os.path.join(w.mapping_dir, "departments.yaml"), os.path.join(w.mapping_dir, "locations.yaml"),
                  str(path)]
    w.write_config()
    exp = w.expected()
    victim = sorted(exp["employees"] - exp["dismissed"])[5]
    w.sql("UPDATE erp.employees SET email = '  ' WHERE personnel_number = %s", (victim,))
    w.run("run", check_rc=1)
    kind, _field, reason = failures(w, "teamtailor_users")[victim]
    assert kind == "refused" and reason.endswith("HTTP 422: email - can't be blank"), reason
    assert victim not in {u["external-id"] for u in w.sandbox.store()["users"]}
    ours = {u["external-id"] for u in w.sandbox.store()["users"] if u["external-id"]}
    assert ours == w.expected()["employees"] - {victim}   # the others went on


# ---------------------------------------------------------------- refusals that stop the run

def config_with(w, line):
    text = open(w.path).read().replace("    allow_insecure_http: true\n", "    allow_insecure_http: true\n" + line)
    open(w.path, "w").write(text)


def test_an_outdated_version_stops_and_names_the_current_one(tworld):
    w = tworld
    w.sandbox.config(current_version="20240404")
    config_with(w, '    api_version: "20230101"\n')
    r = w.run("run", check_rc=3)
    assert "Teamtailor refused the API version 20230101 (HTTP 406); the current version is 20240404" in r.err, r.err
    assert writes(w.sandbox.requests()) == []
    assert [q["status"] for q in w.sandbox.requests()] == [406]   # the first answer stops the run


def test_a_version_that_is_not_a_date_is_a_config_error(tworld):
    w = tworld
    config_with(w, '    api_version: "latest"\n')
    r = w.run("run")
    assert r.rc in (2, 3) and "api_version 'latest' is not a Teamtailor version (YYYYMMDD" in r.err, r.err
    assert w.sandbox.requests() == []


def test_a_wrong_key_stops_as_bad_key_or_other_region(tworld):
    w = tworld
    env = dict(w.env(), TT_TOKEN="another-regions-key-3a9c")
    r = w.run("run", env=env, check_rc=3)
    assert "credentials refused (HTTP 401): bad key, or a key of another region" in r.err, r.err
    assert "another-regions-key-3a9c" not in r.err and TOKEN not in r.err
    assert writes(w.sandbox.requests()) == []


def test_a_key_without_admin_scope_stops(tworld):
    w = tworld
    w.sandbox.config(scope="internal")
    r = w.run("run", check_rc=3)
    assert "credentials refused (HTTP 403): the key lacks the Admin scope" in r.err, r.err
    refused = [q for q in w.sandbox.requests() if q["status"] == 403]
    assert len(refused) == 1, refused   # then nothing more
    assert w.sandbox.requests()[-1]["status"] == 403


# ---------------------------------------------------------------- lists, pages, rate

def test_lists_follow_links_next_thirty_a_page(tworld):
    """Seventy users made by hand: the index is read in three pages of 30 by links.next."""
    w = tworld
    for i in range(70):
        w.sandbox.add("users", {"name": f"Hand {i}", "email": f"hand{i}@example.org", "role": "no_access"})
    w.use_mappings("departments.yaml", "locations.yaml", "users.yaml")
    w.run("run", check_rc=1)
    pages = [q["query"] for q in w.sandbox.requests() if q["method"] == "GET" and q["path"] == "/users"]
    assert any("page%5Bnumber%5D=3" in q for q in pages), pages
    assert all(re.search(r"page%5Bsize%5D=30(&|$)", q) for q in pages), pages
    w.assert_end_state()


def test_the_rate_window_is_kept_and_429s_are_waited_out(tworld):
    """The sandbox at 10 requests per 2 s with live X-Rate-Limit-* headers and no
    Retry-After: hrsync at its default pace for Teamtailor (5/s) gets the organisation
    in with few 429s. Pushed harder (100/s, 8 in flight), the headers hold it to the window:
    a 429 only for a request already on its way when the window ran out, and the three the
    platform adds; each waited out, nothing lost."""
    w = tworld
    w.use_mappings("departments.yaml", "locations.yaml")
    w.sandbox.config(rate="10/2")
    text = open(w.path).read()
    open(w.path, "w").write(re.sub(r"    rate_limit: .*\n", "", text))
    r = w.run("run", check_rc=0)
    assert r.summary("teamtailor_departments")["created"] == 12 and r.summary("teamtailor_locations")["created"] == 4
    assert r.summary("teamtailor_departments")["429s"] + r.summary("teamtailor_locations")["429s"] <= 2

    w.sql("DROP SCHEMA hrsync CASCADE")
    w.sandbox.reset()
    w.sandbox.config(rate="10/2")
    # hrsync follows the window's live headers closely enough that pushing harder alone may draw
    # no 429 (it did when each POST opened a connection): the platform adds some, as it may
    # when other clients share the key, without Retry-After, as Teamtailor answers them.
    w.rate = "100/s"
    w.write_config(max_in_flight=8)
    with w.sandbox.faulted({"mode": "429", "method": "POST", "every": 4, "count": 3, "retry_after": None}):
        r = w.run("run", check_rc=0)
    reqs = w.sandbox.requests()
    throttled = [q for q in reqs if q["status"] == 429]
    accepted = len(reqs) - len(throttled)
    windows = -(-accepted // 10)
    assert accepted >= 16 and 3 <= len(throttled) <= 3 + 7 * windows, (accepted, len(throttled))
    assert r.summary("teamtailor_departments")["429s"] + r.summary("teamtailor_locations")["429s"] == len(throttled)
    delays = retry_delays(reqs)
    assert len(delays) == len(throttled) and all(d >= 0.95 for d in delays), delays
    store = w.sandbox.store()
    assert len(store["departments"]) == 12 and len(store["locations"]) == 4


# ---------------------------------------------------------------- hires pulled back

def test_hires_are_pulled_into_the_erp_with_candidate_and_job(tworld):
    w = tworld
    w.run("run", check_rc=1)
    sales = w.sql("SELECT platform_id FROM hrsync.links WHERE mapping = 'teamtailor_departments' AND erp_key = 'DEP-06'")[0][0]
    sb = w.sandbox
    a = sb.hire("Ирина", "Соколова", "irina.sokolova@example.net", "Менеджер по продажам", sales)
    b = sb.hire("Hugo", "Lefèvre", "hugo.lefevre@example.net", "Développeur")
    sb.hire("Not", "Yet", "not.yet@example.net", "Développeur", stage="In process")
    seq = sb.last_seq()
    w.run("run", check_rc=1)
    rows = w.sql("SELECT platform_id, candidate_id, first_name, last_name, email, job_title, department_code, "
                 "hired_at IS NOT NULL, deleted FROM erp_inbound.hires ORDER BY platform_id")
    assert rows == [
        (a["id"], a["candidate_id"], "Ирина", "Соколова", "irina.sokolova@example.net", "Менеджер по продажам",
         "DEP-06", True, False),
        (b["id"], b["candidate_id"], "Hugo", "Lefèvre", "hugo.lefevre@example.net", "Développeur", None, True,
         False)], rows
    q = [x for x in sb.requests(since=seq) if x["path"] == "/job-applications"]
    assert len(q) == 1 and "filter%5Bstage-type%5D=Hired" in q[0]["query"] and "include=candidate%2Cjob" in q[0]["query"]
    assert "updated-at" not in q[0]["query"]   # nothing pulled yet: the pull reads them all

    # The next pull asks only for what changed since (less a look-back), and takes a new hire.
    seq = sb.last_seq()
    c = sb.hire("Léa", "Martin", "lea.martin@example.net", "Développeur")
    w.run("run", check_rc=1)
    q = [x for x in sb.requests(since=seq) if x["path"] == "/job-applications"]
    assert len(q) == 1 and "filter%5Bupdated-at%5D%5Bfrom%5D=" in q[0]["query"]
    assert w.sql("SELECT count(*) FROM erp_inbound.hires")[0][0] == 3
    assert w.sql("SELECT first_name FROM erp_inbound.hires WHERE platform_id = %s", (c["id"],)) == [("Léa",)]

    # Moved out of Hired: the incremental pull leaves the row as it is; the daily full listing
    # (forced here by dating the last one a day back) marks it deleted, and only it.
    sb.call("POST", f"/job-applications/{a['id']}/stage", {"stage-type": "In process"})
    w.run("run", check_rc=1)
    assert w.sql("SELECT count(*) FROM erp_inbound.hires WHERE deleted")[0][0] == 0
    w.sql("UPDATE hrsync.pull_cursors SET last_full = now() - interval '1 day'")
    seq = sb.last_seq()
    w.run("run", check_rc=1)
    q = [x for x in sb.requests(since=seq) if x["path"] == "/job-applications"]
    assert len(q) == 1 and "updated-at" not in q[0]["query"]
    assert w.sql("SELECT platform_id FROM erp_inbound.hires WHERE deleted") == [(a["id"],)]


def test_a_pull_that_meets_broken_answers_loses_no_hire(tworld):
    """Answers to the hires' listing that are not JSON (a proxy's page, a cut body): retried;
    when every try fails the run says so and the next one brings the hires in."""
    w = tworld
    w.use_mappings("departments.yaml", "hires_inbound.yaml")
    w.run("run", check_rc=0)
    a = w.sandbox.hire("Ana", "Diaz", "ana.diaz@example.net", "Comptable")
    with w.sandbox.faulted({"mode": "malformed", "path": "^/job-applications$", "count": 1}):
        w.run("run", check_rc=0)
    assert w.sql("SELECT platform_id FROM erp_inbound.hires") == [(a["id"],)]
    b = w.sandbox.hire("Bo", "Ek", "bo.ek@example.net", "Comptable")
    with w.sandbox.faulted({"mode": "html200", "path": "^/job-applications$"}):
        r = w.run("run")
    assert r.rc == 3 and "pull teamtailor_hires: connector teamtailor: GET /job-applications?" in r.err
    assert "the answer is not valid JSON" in r.err, r.err[-2000:]
    assert w.sql("SELECT platform_id FROM erp_inbound.hires ORDER BY 1") == [(a["id"],)]
    w.run("run", check_rc=0)
    assert w.sql("SELECT platform_id FROM erp_inbound.hires ORDER BY 1") == [(a["id"],), (b["id"],)]


def test_an_id_of_another_shape_is_refused_where_it_enters(tworld):
    """Teamtailor's ids are digits: a create answered with '../users/1000' refuses that
    record, the id is stored nowhere and never goes into a path."""
    w = tworld
    w.use_mappings("departments.yaml", "locations.yaml", "users.yaml")
    with w.sandbox.faulted({"mode": "answer_id", "method": "POST", "path": "^/users$", "count": 1,
                            "id": "../users/1000"}):
        w.run("run", check_rc=1)
    refused = [(k, r) for k, (kind, _f, r) in failures(w, "teamtailor_users").items() if "../users" in r]
    assert len(refused) == 1 and "which is not a teamtailor user id (digits)" in refused[0][1], refused
    assert not w.sql("SELECT 1 FROM hrsync.links WHERE platform_id LIKE '%..%'")
    assert not [q for q in w.sandbox.requests() if ".." in q["path"] or "%2E%2E" in q["path"]]


def test_check_online_reads_with_the_key_and_the_version(tworld):
    """`check --online` reads Teamtailor's departments: a good configuration passes; an
    outdated version and a wrong key are reported the way a run would stop on them."""
    w = tworld
    r = w.run("check", "--online", check_rc=0)
    assert [q["path"] for q in w.sandbox.requests()] == ["/departments"]
    assert writes(w.sandbox.requests()) == []
    config_with(w, '    api_version: "20230101"\n')
    r = w.run("check", "--online")
    assert r.rc == 2 and "could not read departments" in r.err and "the current version is 20240904" in r.err, r.err
    env = dict(w.env(), TT_TOKEN="wrong-key-77")
    r = w.run("check", "--online", env=env)
    assert r.rc == 2 and "bad key, or a key of another region" in r.err and "wrong-key-77" not in r.err, r.err
