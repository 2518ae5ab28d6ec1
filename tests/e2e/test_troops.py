"""Troops end to end: the connector (connectors/troops.c) against its sandbox
(tests/sandbox/troops.py) over the Evolia-shaped mirror (tests/fixtures/erp/gen_troops.py)."""
import json
import re
import uuid

import pytest

from harness import MARKER, items
from world_troops import OTHER_TEA, SENDER, TEA, TroopsWorld


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
def tworld(cluster, template, sandboxes, tmp_path):
    w = make(cluster, template, sandboxes, tmp_path)
    yield w
    cluster.admin(f'DROP DATABASE IF EXISTS "{w.db}" WITH (FORCE)')


def test_first_sync_then_nothing_to_write(tworld):
    w = tworld
    r = w.run("run")
    assert r.rc == 1, r.err[-4000:]
    open("/tmp/troops_run.log", "w").write(r.err)
    w.assert_end_state()
