"""ConfigDB's logic on the in-memory store (slurmdeploy.kvstore.MemoryStore): claims, the
compare-and-swap state writes, stale states, the recursive delete and the one-request read.

The same behaviour on the real etcd is proven by tests/integration (test_deployer.py,
test_deployment_actions.py, test_faults.py, test_watch.py); the store itself is held to etcd's
semantics by tests/kvstore_contract.py, run on both.
"""

import pytest

from slurmdeploy import configdb
from slurmdeploy.configdb import ConfigDB, dumps
from slurmdeploy.errors import ConfigDBError
from slurmdeploy.kvstore import Put
from slurmdeploy.states import DeploymentState

ARGS = {"script": "#!/bin/bash\ntrue\n"}


@pytest.fixture
def clock():
    now = [1000.0]
    tick = lambda: now[0]  # noqa: E731
    tick.now = now
    return tick


@pytest.fixture
def db(clock):
    return ConfigDB.in_memory("/sdp", clock=clock)


def _requests(db, func, *args, **kwargs):
    before = db.store.requests
    result = func(*args, **kwargs)
    return result, db.store.requests - before


def test_a_deployment_is_read_with_its_state_owner_and_attempt_in_one_request(db):
    revision = db.create_deployment("r-1", "slurm", ARGS)
    claim = db.claim("r-1", 30, attempt_revision=revision)
    assert db.write_state("r-1", DeploymentState("r-1", 42, "PENDING"), 0, revision)
    record, sent = _requests(db, db.read, "r-1")
    assert sent == 1
    assert (record.deployment.revision, record.state.job_id, record.attempt) == (revision, 42, revision)
    assert record.owner["command"] == ["slurmdeploy", "submit", "r-1"] and record.state_mod_revision > revision
    # what the deployer did before (get_deployment, then get_state): two requests
    (_, (state, _)), sent = _requests(db, lambda: (db.get_deployment("r-1"), db.get_state("r-1", revision)))
    assert sent == 2 and state.job_id == 42
    assert db.read_deployment("r-1") == (record.deployment, record.state, record.state_mod_revision, revision)
    db.release(claim)
    assert db.read("r-1").owner is None


def test_a_sibling_key_is_not_read_as_a_child(db):
    db.create_deployment("s-1", "slurm", ARGS)
    db.create_deployment("s-1x", "slurm", ARGS)
    db.write_state("s-1x", DeploymentState("s-1x", 7, "RUNNING"), 0)
    assert db.read("s-1").state.status == "UNSET"


def test_a_state_older_than_its_deployment_reads_as_unset_with_its_real_mod_revision(db):
    first = db.create_deployment("st-1", "slurm", ARGS)
    assert db.write_state("st-1", DeploymentState("st-1", 5, "FINISHED"), 0, first)
    stale_mod = db.get_state("st-1")[1]
    # etcdctl del of the deployment alone (a non-recursive delete)
    assert db.transaction("delete alone").delete(db.deployment_path("st-1")).commit()
    second = db.create_deployment("st-1", "slurm", ARGS)
    record = db.read("st-1")
    assert (record.state.status, record.state_mod_revision) == ("UNSET", stale_mod)
    assert not db.write_state("st-1", DeploymentState("st-1", 6, "PENDING"), 0, second)  # mod 0 is wrong
    assert db.write_state("st-1", DeploymentState("st-1", 6, "PENDING"), stale_mod, second)


def test_only_one_claim_until_it_expires_and_the_claim_reads_the_state(db, clock):
    revision = db.create_deployment("c-1", "slurm", ARGS)
    db.write_state("c-1", DeploymentState("c-1", None, "UNSET"), 0, revision)
    first = db.claim("c-1", 10, attempt_revision=revision)
    assert first is not None and first.state_mod_revision == db.get_state("c-1")[1]
    assert db.claim("c-1", 10) is None  # owned
    assert db.get_attempt("c-1") == revision
    clock.now[0] += 11  # the owner crashed: its lease expires
    assert not db.refresh(first, margin=10)  # margin=ttl: ask the store
    assert db.get_owner("c-1") is None and db.get_attempt("c-1") == revision  # the trace outlives the claim
    assert db.claim("c-1", 10) is not None


def test_a_done_state_write_drops_the_claim_and_the_attempt_in_the_same_transaction(db):
    revision = db.create_deployment("d-1", "slurm", ARGS)
    claim = db.claim("d-1", 30, attempt_revision=revision)
    before = db.store.revision
    assert db.write_state("d-1", DeploymentState("d-1", 9, "PENDING"), claim.state_mod_revision, revision, done=True)
    assert db.store.revision == before + 1  # one transaction
    record = db.read("d-1")
    assert (record.owner, record.attempt, record.state.job_id) == (None, None, 9)


def test_a_state_write_fails_when_the_deployment_was_replaced(db):
    first = db.create_deployment("w-1", "slurm", ARGS)
    assert db.delete_deployment("w-1", first)
    db.create_deployment("w-1", "slurm", ARGS)
    assert not db.write_state("w-1", DeploymentState("w-1", 1, "PENDING"), 0, first)
    assert db.get_state("w-1")[1] == 0


def test_create_twice_and_delete_a_stale_incarnation(db):
    first = db.create_deployment("x-1", "slurm", ARGS)
    assert first and db.create_deployment("x-1", "slurm", ARGS) is None
    assert not db.delete_deployment("x-1", first + 100)  # not that incarnation: nothing deleted
    assert db.get_deployment("x-1").revision == first
    with pytest.raises(ValueError, match="must match"):
        db.create_deployment("bad key", "slurm", ARGS)


def test_orphans_are_dropped_only_while_the_deployment_is_absent(db):
    revision = db.create_deployment("o-1", "slurm", ARGS)
    db.write_state("o-1", DeploymentState("o-1", 3, "FINISHED"), 0, revision)
    assert not db.drop_orphan_state("o-1")
    assert db.get_state("o-1")[1]
    db.transaction("delete alone").delete(db.deployment_path("o-1")).commit()
    assert db.snapshot().orphans == ["o-1"]
    assert db.drop_orphan_state("o-1") and db.snapshot().orphans == []


def test_deployment_delete_reads_again_when_the_deployment_is_recreated_meanwhile(db):
    configdb.deployment_create(db, "rc-1", ARGS)
    store, real_txn, raced = db.store, db.store.txn, []

    def racing_txn(what, compare, success):
        if compare and not raced:  # the delete's commit: someone re-creates the key first
            raced.append(True)
            real_txn("racer", [], [Put(db.deployment_path("rc-1"), dumps({"key": "rc-1", "kind": "slurm",
                                                                            "args": ARGS}))])
            real_txn("racer", [], [])
        return real_txn(what, compare, success)

    store.txn = racing_txn
    ok, result = configdb.deployment_delete(db, "rc-1")
    assert ok and raced and result["outcome"] == "deleted"
    assert db.get_deployment("rc-1") is None and db.snapshot().deployments == {}


def test_deployment_delete_gives_up_with_a_clear_error_when_the_key_keeps_changing(db):
    configdb.deployment_create(db, "busy-1", ARGS)
    real_txn = db.store.txn

    def always_racing(what, compare, success):
        if compare:
            # an in-place update of the deployment read: its mod_revision moves on
            real_txn("racer", [], [Put(db.deployment_path("busy-1"), dumps({"kind": "slurm", "args": ARGS}))])
        return real_txn(what, compare, success)

    db.store.txn = always_racing
    with pytest.raises(ConfigDBError, match="delete deployment 'busy-1': the keys kept changing during 5 attempts"):
        configdb.deployment_delete(db, "busy-1")


def test_list_and_snapshot_on_the_memory_store(db):
    configdb.deployment_create(db, "l-1", ARGS)
    db.store.txn("bad", [], [Put(db.layout.deployment("bad key"), b"{}")])
    listing = configdb.deployment_list(db)
    assert [row["key"] for row in listing["deployments"]] == ["l-1"]
    assert listing["ignored"] == [db.layout.deployment("bad key")]


def test_changed_since_sees_only_later_writes(db):
    db.create_deployment("cs-1", "slurm", ARGS)
    revision = db.snapshot().revision
    assert db.changed_since(revision) == (False, 1)
    db.write_state("cs-1", DeploymentState("cs-1", 1, "PENDING"), 0)
    assert db.changed_since(revision) == (True, 1)


def test_an_in_memory_configdb_cannot_be_watched(db):
    with pytest.raises(ConfigDBError, match="not etcd: it cannot be watched"):
        db.new_client()


def test_several_deployments_are_read_in_one_request(db):
    revisions = {k: db.create_deployment(k, "slurm", ARGS) for k in ("m-1", "m-2")}
    db.write_state("m-2", DeploymentState("m-2", 8, "RUNNING"), 0, revisions["m-2"])
    records, sent = _requests(db, db.read_many, ["m-2", "absent", "m-1"])
    assert sent == 1
    assert [(r.key, r.deployment and r.deployment.revision, r.state.job_id) for r in records] == [
        ("m-2", revisions["m-2"], 8), ("absent", None, None), ("m-1", revisions["m-1"], None)]
    assert len({r.revision for r in records}) == 1  # one consistent view
    with pytest.raises(ValueError, match="at most 64"):
        db.read_many([f"k-{i}" for i in range(65)])


def test_the_deployer_reads_a_deployment_and_its_state_in_one_request(db):
    """update_state and cancel read the deployment with its state once (issue 18: they made two
    requests, get_deployment then get_state). A finished deployment needs no Slurm request."""
    from slurmdeploy.deployer import Deployer
    from slurmdeploy.settings import Settings

    deployer = Deployer(Settings.from_config({}, {}), db, slurm=None)
    revision = db.create_deployment("fin-1", "slurm", ARGS)
    db.write_state("fin-1", DeploymentState("fin-1", 3, "FINISHED"), 0, revision)
    (ok, res), sent = _requests(db, deployer.update_state, "fin-1")
    assert sent == 1 and res["outcome"] == "terminal"
    (ok, res), sent = _requests(db, deployer.update_state, "gone-1")
    assert sent == 1 and res["outcome"] == "deployment_gone"
