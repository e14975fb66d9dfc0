"""Registry storage: the file (atomic, grouped writes) and the hub's shared store."""

import itertools
import json
import random

import pytest
from twisted.internet import reactor

from freescore.clicker import logic
from freescore.clicker.logic import IdsExhausted, Registry
from freescore.clicker.store import HubRegistry, RegistryStore, load_registry
from freescore.hub.memory import MemoryHub


def result_of(d):
    out = []
    d.addBoth(out.append)
    assert out, "Deferred did not fire"
    return out[0]


def test_load_creates_the_folder_and_starts_empty(tmp_path):
    reg = load_registry(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir() and len(reg) == 0


def test_commit_writes_the_registry_before_firing(tmp_path):
    reg = Registry()
    store = RegistryStore(tmp_path, reg, reactor, threaded=False)
    r = reg.register("")
    assert result_of(store.commit()) is None
    assert json.loads((tmp_path / "registry.json").read_text())["secrets"] == {r.secret: r.device_id}
    assert load_registry(tmp_path).lookup(r.secret) == r.device_id
    assert result_of(store.idle()) is None


def test_failed_write_fails_the_waiters(tmp_path):
    store = RegistryStore(tmp_path / "missing", Registry(), reactor, threaded=False)
    failure = result_of(store.commit())
    assert failure.check(FileNotFoundError)
    assert result_of(store.idle()) is None


def test_hub_registry_known_unknown_and_taken_ids():
    hub = MemoryHub(0)
    counter = itertools.count()
    reg = HubRegistry(hub, rng=random.Random(2), new_secret=lambda: f"secret-{next(counter)}")
    first = result_of(reg.register(""))
    assert first.created and first.secret == "secret-0"
    assert result_of(hub.get("clicker:secret:secret-0")) == first.device_id
    assert result_of(hub.get(f"clicker:id:{first.device_id}")) == "secret-0"
    assert result_of(reg.register("secret-0")) == logic.Registration(first.device_id, "secret-0", False)
    unknown = result_of(reg.register("nobody-knows-me"))
    assert unknown.created and unknown.secret == "secret-1" and unknown.device_id != first.device_id
    # Same random sequence again: the ids it draws first are taken, so it moves on.
    again = HubRegistry(hub, rng=random.Random(2), new_secret=lambda: f"other-{next(counter)}")
    third = result_of(again.register(""))
    assert third.device_id not in (first.device_id, unknown.device_id)


def test_hub_registry_gives_up_when_every_draw_is_taken(monkeypatch):
    monkeypatch.setattr("freescore.clicker.store.ID_SPACE", 3)
    hub = MemoryHub(0)
    reg = HubRegistry(hub, rng=random.Random(1), tries=20)
    ids = {result_of(reg.register("")).device_id for _ in range(3)}
    assert ids == {"000000", "000001", "000002"}
    failure = result_of(reg.register(""))
    assert failure.check(IdsExhausted)


def test_dense_file_registry_is_exhausted_only_when_full(monkeypatch):
    monkeypatch.setattr(logic, "ID_SPACE", 5)
    reg = Registry(rng=random.Random(0))
    for _ in range(5):
        reg.register("")
    with pytest.raises(IdsExhausted):
        reg.register("")


def test_hub_registry_adopts_this_nodes_file_registry():
    local = Registry(rng=random.Random(4))
    before = local.register("")
    hub = MemoryHub(0)
    reg = HubRegistry(hub, rng=random.Random(4), local=local)  # same draws as the local registry
    assert result_of(reg.register(before.secret)) == logic.Registration(before.device_id, before.secret, False)
    assert result_of(hub.get("clicker:secret:" + before.secret)) == before.device_id
    assert result_of(hub.get("clicker:id:" + before.device_id)) == before.secret
    fresh = result_of(reg.register(""))
    assert fresh.device_id != before.device_id  # ids this node handed out are never drawn again


def test_hub_registry_does_not_adopt_an_id_another_secret_holds():
    local = Registry()
    before = local.register("")
    hub = MemoryHub(0)
    result_of(hub.set("clicker:id:" + before.device_id, "someone-else"))
    got = result_of(HubRegistry(hub, local=local).register(before.secret))
    assert got.created and got.device_id != before.device_id and got.secret != before.secret


def test_hub_registry_asks_admit_only_for_new_ids():
    hub = MemoryHub(0)
    reg = HubRegistry(hub, rng=random.Random(4))
    asked = []

    def admit():
        asked.append(1)
        return logic.Refused.RATE if len(asked) > 1 else None

    first = result_of(reg.register("", admit=admit))
    assert first.created and len(asked) == 1
    assert result_of(reg.register("", admit=admit)) is logic.Refused.RATE
    assert result_of(reg.register(first.secret, admit=admit)).device_id == first.device_id
    assert len(asked) == 2  # the known secret was not asked about


class _PoolStub:
    """Stands in for the reactor's thread pool: writes wait until the test runs them."""

    def __init__(self):
        self.pending = []

    def getThreadPool(self):
        return None

    def defer(self, reactor, pool, f, *args):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.pending.append((d, f, args))
        return d

    def run_one(self):
        d, f, args = self.pending.pop(0)
        f(*args)
        d.callback(None)


def test_a_burst_of_registrations_shares_few_registry_writes(tmp_path, monkeypatch):
    from freescore.clicker import store as store_module

    pool = _PoolStub()
    written = []
    real_write = store_module.write_atomic

    def counting_write(path, data):
        written.append(data)
        real_write(path, data)

    monkeypatch.setattr(store_module, "deferToThreadPool", pool.defer)
    monkeypatch.setattr(store_module, "write_atomic", counting_write)
    reg = Registry()
    store = RegistryStore(tmp_path, reg, pool)
    fired, issued = [], []
    for i in range(1000):  # 1000 new devices; a write completes only every 100 registrations
        issued.append(reg.register(""))
        store.commit().addCallback(fired.append)
        if i % 100 == 99:
            pool.run_one()
    while pool.pending:
        pool.run_one()
    assert len(fired) == 1000  # every REGISTERED waited for a write that holds its secret
    assert store.writes == len(written) <= 12
    saved = json.loads((tmp_path / "registry.json").read_text())["secrets"]
    assert saved == {r.secret: r.device_id for r in issued}
    assert result_of(store.idle()) is None
