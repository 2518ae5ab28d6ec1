"""State upgrade v4 (issue #16): the no-change pass's row hash went from MurmurHash64A to
xxHash's XXH3. A hash stored by the old function must never be taken for a new one, so the
upgrade clears every links.src_hash; the next run maps every record once, sends nothing the
platform already has (the payload fingerprints, SHA-256, decide), and stores the new hashes,
the very ones a state that never knew MurmurHash would hold."""


def stored_hashes(world):
    return {(m, k): h for m, k, h in world.sql(
        "SELECT mapping, erp_key, src_hash FROM hrsync.links WHERE src_hash IS NOT NULL")}


def test_upgrade_clears_the_row_hashes_then_a_run_sends_nothing_and_stores_them_again(world):
    world.run("run", check_rc=1)
    # (the second run stores the hashes of the nights to come: the first one's generation saw
    # the lookup lists before it added to them)
    world.run("run", check_rc=1)
    before = stored_hashes(world)
    assert len(before) > 300, len(before)
    # The state as hrsync with state schema v3 left it: its hashes in place (here the current
    # function's: had the upgrade kept them, the next run would trust every one).
    world.sql("DELETE FROM hrsync.schema_version WHERE version >= 4")
    world.run("db", "migrate", check_rc=0)
    assert world.sql("SELECT max(version) FROM hrsync.schema_version")[0][0] >= 4
    assert stored_hashes(world) == {}
    assert world.sql("SELECT count(*) FROM hrsync.links")[0][0] >= len(before)   # only the hashes went

    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []
    for m in ("employees", "absences", "assets"):
        s = r.summary(m)
        assert (s["created"], s["updated"], s["terminated"]) == (0, 0, 0), (m, s)
        assert s["unchanged"] > 0, (m, s)        # mapped and compared, not skipped on a hash
    after = stored_hashes(world)
    assert {k: before[k] for k in after} == after
    # Hashed again: every active link; the others (terminated, or gone from the platform, and
    # out of scope) are decided without their hash and keep none.
    missing = set(before) - set(after)
    status = {(m, k): st for m, k, st in world.sql("SELECT mapping, erp_key, status FROM hrsync.links")}
    assert [k for k in missing if status[k] == "active"] == [], sorted(missing)[:10]
    assert len(after) > 300

    # The night after: the hashes decide again, nothing mapped, nothing sent.
    seq = world.sandbox.last_seq()
    r = world.run("run", check_rc=1)
    assert world.writes(world.sandbox.requests(since=seq)) == []
    assert stored_hashes(world) == after
