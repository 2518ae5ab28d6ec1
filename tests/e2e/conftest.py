import json
import os
import uuid

import pytest

from harness import Cluster, Hrsync, Sandbox

# A small mirror keeps the suite fast; the demo (make demo) runs the full size.
SIZE = dict(employees=300, absences=700, assets=120)


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def template(cluster, tmp_path_factory):
    """The small demo mirror, loaded once; tests clone it."""
    manifest = str(tmp_path_factory.mktemp("erp") / "manifest.json")
    cluster.load("erp_template", manifest=manifest, **SIZE)
    with open(manifest) as f:
        return "erp_template", json.load(f)


@pytest.fixture(scope="session")
def sandbox():
    s = Sandbox()
    yield s
    s.stop()


@pytest.fixture
def world(cluster, template, sandbox, tmp_path):
    """A fresh mirror database, a reset sandbox, and hrsync configured for both."""
    tmpl, manifest = template
    db = "t_" + uuid.uuid4().hex[:10]
    cluster.clone(tmpl, db)
    sandbox.reset()
    h = Hrsync(cluster, db, sandbox, tmp_path)
    h.manifest = manifest
    yield h
    cluster.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
