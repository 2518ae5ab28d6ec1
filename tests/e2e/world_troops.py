"""Troops in the end-to-end tests: the sandbox client (tests/sandbox/troops.py), hrsync
configured for one TEA of it, the Evolia-shaped part of the mirror
(tests/fixtures/erp/gen_troops.py) loaded into the test's database, and what must be on
Troops after a complete sync (mappings/troops)."""
import collections
import json
import os
import subprocess

from harness import MARKER, PYTHON, ROOT, SandboxClient, World, items

TOKEN = "troops-jwt-eyJhbGciOiJIUzI1NiJ9.e2e"
SEED = os.path.join(ROOT, "tests", "fixtures", "troops", "seed.json")
GEN = os.path.join(ROOT, "tests", "fixtures", "erp", "gen_troops.py")
TEA = "7d4c1b0e-2f3a-4b5c-8d6e-9f0a1b2c3d4e"
OTHER_TEA = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SENDER = "b1000000-0000-4000-8000-000000000001"
WORKERS = 120


class TroopsSandbox(SandboxClient):
    """tests/sandbox/troops.py: one Bearer key, no rate limit unless asked."""

    script = "troops.py"
    api_prefix = "/api/integrations"

    def args(self):
        return ["--api-key", TOKEN, "--seed", SEED]

    def auth_headers(self):
        return {"Authorization": "Bearer " + TOKEN}


class TroopsWorld(World):
    name = connector_type = "troops"
    sandbox_class = TroopsSandbox
    mapping_dir = os.path.join(ROOT, "mappings", "troops")
    push_mappings = ("candidates", "availabilities", "paychecks", "bookkeeping_variables", "mission_decisions")
    employees_mapping, absences_mapping = "candidates", "availabilities"
    credentials = {"token": ("TROOPS_TOKEN", TOKEN)}
    secret_var = "TROOPS_TOKEN"
    creates = r"^/(candidates|candidates/import|availabilities|paychecks)$"
    refusal_says = ("the Troops API key is invalid or expired",)
    # New candidates go 100 to a request: a first sync of 120 workers is about 350 commits
    # and 120 create requests. Kills in and between the batch imports, then elsewhere.
    kill_plans = {"mixed": (("requests", 3), ("creates", 1), ("commit", 20), ("creates", 3), ("commit", 80),
                            ("creates", 30), ("commit", 30))}
    # The listing of the TEA's candidates is read again by records searching it: an identical
    # read soon after a faulted one may be another record's, not its retry.
    shared_reads = True

    def __init__(self, cluster, db, sandbox, tmpdir, mappings=None, extra_conn="", extra_top="", workers=WORKERS,
                 strategy=None, batch=None, gen_args=()):
        opts = f"    tea_id: {TEA}\n    sender_id: {SENDER}\n"
        if strategy:
            opts += f"    import_strategy: {strategy}\n"
        if batch is not None:
            opts += f"    batch_import: {'true' if batch else 'false'}\n"
        super().__init__(cluster, db, sandbox, tmpdir, mappings, extra_conn=opts + extra_conn, extra_top=extra_top)
        self.troops_manifest = os.path.join(self.dir, "troops-manifest.json")
        gen = subprocess.Popen([PYTHON, GEN, "--workers", str(workers), "--manifest", self.troops_manifest,
                                *gen_args],
                               stdout=subprocess.PIPE)
        env = dict(os.environ, PGHOST=cluster.host, PGPORT=cluster.port, PGUSER=cluster.user, PGDATABASE=db)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=gen.stdout, check=True, env=env,
                       stdout=subprocess.DEVNULL)
        gen.stdout.close()
        assert gen.wait() == 0
        with open(self.troops_manifest) as f:
            self.tm = json.load(f)

    def bad(self, table, outcomes=("mapping_error", "deferred", "platform_error")):
        keys = {b["key"] for b in self.tm["bad"] if b["table"] == table and b["outcome"] in outcomes
                and b["why"] != "e-mail taken in the TEA"}
        if table == "interimaires" and "platform_error" in outcomes and self.tm.get("duplicate_email"):
            keys.add(self.dup_loser())
        return keys

    def dup_loser(self):
        """Two workers share an e-mail: Troops takes the first to arrive (batches go in any
        order), and refuses the other."""
        pair = self.tm["duplicate_email"]
        refused = {k for (k,) in self.sql("SELECT erp_key FROM hrsync.failures WHERE kind = 'refused' "
                                          "AND reason LIKE '%%email has already been taken%%'")} \
            if self.has_state() else set()
        losers = set(pair) & refused
        return losers.pop() if len(losers) == 1 else pair[1]

    # ---- what must be on the platform ------------------------------------------------
    def expected(self):
        workers = {k for (k,) in self.sql("SELECT matricule FROM evolia.interimaires")} - self.bad("interimaires")
        left = {k for (k,) in self.sql("SELECT matricule FROM evolia.interimaires WHERE date_sortie IS NOT NULL")}
        ok_workers = workers
        absent = {k for k, m in self.sql("SELECT id_indispo, matricule FROM evolia.indisponibilites "
                                         "WHERE statut = 'active'") if m in ok_workers}
        pays = {k for k, m in self.sql("SELECT numero, matricule FROM evolia.bulletins") if m in ok_workers}
        pays -= self.bad("bulletins")
        return dict(employees=workers, dismissed=left & workers, absences=absent, paychecks=pays)

    def tea_candidates(self, store=None):
        store = store or self.sandbox.store()
        return [c for c in items(store["candidates"]) if c["tea_id"] == TEA]

    def assert_end_state(self):
        exp = self.expected()
        store = self.sandbox.store()
        cands = self.tea_candidates(store)
        refs = collections.Counter(c["refs"]["erp"] for c in cands)
        dups = [r for r, n in refs.items() if n > 1]
        assert not dups, f"candidates created twice: {dups[:5]}"
        assert set(refs) == exp["employees"], (f"missing {sorted(exp['employees'] - set(refs))[:5]}, "
                                               f"extra {sorted(set(refs) - exp['employees'])[:5]}")
        archived = {c["refs"]["erp"] for c in cands if c["archived"]}
        assert archived == exp["dismissed"], f"archived differ: {sorted(archived ^ exp['dismissed'])[:5]}"
        by_ref = {c["refs"]["erp"]: c["id"] for c in cands}
        avs = items(store["availabilities"])
        keys = collections.Counter(MARKER.search(a["comment"] or "").group(1) for a in avs)
        assert not [k for k, n in keys.items() if n > 1], "availabilities created twice"
        assert set(keys) == exp["absences"], (f"missing {sorted(exp['absences'] - set(keys))[:5]}, "
                                              f"extra {sorted(set(keys) - exp['absences'])[:5]}")
        owner = dict(self.sql("SELECT id_indispo, matricule FROM evolia.indisponibilites"))
        for a in avs:
            k = MARKER.search(a["comment"]).group(1)
            assert a["candidate_id"] == by_ref[owner[k]] and a["available"] is False, a
        links = {(m, k): pid for m, k, pid in self.sql("SELECT mapping, erp_key, platform_id FROM hrsync.links")}
        for ref, cid in by_ref.items():
            assert links[("candidates", ref)] == cid, ref
        for a in avs:
            assert links[("availabilities", MARKER.search(a["comment"]).group(1))] == a["id"]
        return exp

    def dismiss(self, key):
        self.sql("UPDATE evolia.interimaires SET date_sortie = '2026-11-20' WHERE matricule = %s", (key,))

    def cancel_absence(self, key):
        self.sql("UPDATE evolia.indisponibilites SET statut = 'annulee' WHERE id_indispo = %s", (key,))

    def duplicate_emails(self):
        return set(self.tm.get("duplicate_email") or ())

    def platform_ids(self, store):
        return {"candidates": {c["id"] for c in self.tea_candidates(store)},
                "availabilities": {a["id"] for a in items(store["availabilities"])},
                "paychecks": {p["id"] for p in items(store["paychecks"])}}

    def failures(self):
        return {(m, k): (kind, reason) for m, k, kind, reason in
                self.sql("SELECT mapping, erp_key, kind, reason FROM hrsync.failures")}
