import json
import uuid

import pytest

from harness import Cluster
from world_peopleforce import PeopleForceWorld
from world_personio import PersonioWorld
from world_workelo import WorkeloWorld
from worlds import CONNECTORS

# A small mirror keeps the suite fast; the demo (make demo) runs the full size.
SIZE = dict(employees=300, absences=700, assets=120)


@pytest.fixture(scope="session")
def cluster():
    """One PostgreSQL cluster per pytest process (per worker under xdist), on a free port."""
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
def sandboxes():
    """The platform sandboxes of this process, each started the first time a test needs it
    (on an ephemeral port) and reset by each world."""
    started = {}

    def get(world_class):
        if world_class.name not in started:
            started[world_class.name] = world_class.sandbox_class()
        return started[world_class.name]
    yield get
    for s in started.values():
        s.stop()


@pytest.fixture(scope="session")
def sandbox(sandboxes):
    return sandboxes(PeopleForceWorld)


@pytest.fixture(scope="session")
def pio_sandbox(sandboxes):
    return sandboxes(PersonioWorld)


def make_world(world_class, cluster, template, sandbox, tmp_path, files=None, rate=None):
    """A fresh mirror database cloned from the template, the sandbox reset to its seed, and
    hrsync configured for both; the database is dropped afterwards."""
    tmpl, manifest = template
    db = f"{world_class.name}_{uuid.uuid4().hex[:10]}"
    cluster.clone(tmpl, db)
    sandbox.reset()
    w = world_class(cluster, db, sandbox, tmp_path)
    if rate:
        w.rate = rate
        w.write_config()
    if files:
        w.use_mappings(*files)
    w.manifest = manifest
    yield w
    cluster.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def world(cluster, template, sandbox, tmp_path):
    """PeopleForce, every shipped mapping."""
    yield from make_world(PeopleForceWorld, cluster, template, sandbox, tmp_path)


@pytest.fixture
def wworld(cluster, template, sandboxes, tmp_path):
    """Workelo, its push mappings (units, employees, journeys) and its pull."""
    yield from make_world(WorkeloWorld, cluster, template, sandboxes(WorkeloWorld), tmp_path, rate="1000/s")


@pytest.fixture
def pworld(cluster, template, pio_sandbox, tmp_path):
    """Personio, every shipped mapping."""
    yield from make_world(PersonioWorld, cluster, template, pio_sandbox, tmp_path)


@pytest.fixture(params=sorted(CONNECTORS))
def cworld(request, cluster, template, sandboxes, tmp_path):
    """Each connector in turn, with the mappings its contract tests run (contract_files).
    hrsync paces itself at 1000 requests/s rather than 400: the sandboxes set no limit and
    no contract test is about pacing (its 429s are faults), and a first sync of the demo
    mirror, paced at 400/s, waits on the pacing more than on anything else (4.2 s -> 2.4 s)."""
    cls = CONNECTORS[request.param]
    yield from make_world(cls, cluster, template, sandboxes(cls), tmp_path, cls.contract_files, rate="1000/s")
