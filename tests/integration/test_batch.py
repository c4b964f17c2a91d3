"""Group commit of the submits' etcd work (slurmdeploy.batch) on the real etcd 3.4 and Slurm:
nested transactions succeed or fail one by one, a shared lease never outlives its window by a
keep-alive, a claim left behind expires on its own, and a burst of concurrent (and duplicate)
submits through the actions' shared clients still gives exactly one job per deployment."""

import threading
import time

import pytest

from slurmdeploy.batch import BatchingConfigDB, LeasePool, SharedClaim
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.settings import Settings
from slurmdeploy.states import DeploymentState


@pytest.fixture
def batching(pack_config):
    db = BatchingConfigDB.from_settings(Settings.from_config(pack_config, {}))
    yield db
    db.client.session.close()


def hold_first_transaction(db, seconds=0.5):
    """Delay the first etcd transaction of ``db`` so that other threads' calls queue up behind
    it (the etcd requests themselves are real)."""
    real = db.client.transaction
    calls = []

    def transaction(txn):
        calls.append(txn)
        if len(calls) == 1:
            time.sleep(seconds)
        return real(txn)

    db.client.transaction = transaction
    return calls


def in_threads(func, args):
    results, threads = {}, []
    for a in args:
        t = threading.Thread(target=lambda a=a: results.__setitem__(a, func(a)))
        threads.append(t)
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_claims_share_one_transaction_and_lease_and_fail_one_by_one(batching):
    db = batching
    keys = [f"bc-{i}" for i in range(6)]
    revisions = {k: db.create_deployment(k, "slurm", {"script": "#!/bin/bash\ntrue\n"}) for k in keys}
    taken = ConfigDB(db.client, db.prefix).claim("bc-3", 15)  # someone else owns bc-3
    calls = hold_first_transaction(db)
    first = threading.Thread(target=db.claim, args=("bc-0", 15, revisions["bc-0"]))
    first.start()
    time.sleep(0.1)
    claims = in_threads(lambda k: db.claim(k, 15, attempt_revision=revisions[k]), keys[1:])
    first.join(30)
    assert db.claims.largest == 5 and len(calls) == 2  # bc-1..bc-5 in one request
    assert claims["bc-3"] is None  # failed alone: its nested compare did not hold
    won = [claims[k] for k in keys[1:] if k != "bc-3"]
    assert all(isinstance(c, SharedClaim) for c in won)
    assert len({c.lease.id for c in won}) == 1 and db.leases.granted == 1
    snap = db.snapshot()
    for c in won:
        assert snap.owners[c.key]["command"] == ["slurmdeploy", "submit", c.key]
        assert snap.attempts[c.key] == revisions[c.key]
    assert "bc-3" not in snap.attempts and snap.owners["bc-3"] is not None  # the other owner's, untouched
    assert taken.lease.id != won[0].lease.id


def test_state_writes_in_one_transaction_each_compared_on_its_own(batching):
    db = batching
    keys = [f"bw-{i}" for i in range(5)]
    revisions = {k: db.create_deployment(k, "slurm", {"script": "#!/bin/bash\ntrue\n"}) for k in keys}
    claims = {k: db.claim(k, 15, attempt_revision=revisions[k]) for k in keys}
    db.write_state("bw-2", DeploymentState("bw-2", 7, "PENDING", "Other"), 0, revisions["bw-2"])  # a concurrent writer
    calls = hold_first_transaction(db)
    written = {}

    def write(key):
        return db.write_state(key, DeploymentState(key, 100 + int(key[-1]), "PENDING", "Submitted"),
                              claims[key].state_mod_revision, revisions[key], done=True)

    writer = threading.Thread(target=lambda: written.__setitem__("bw-0", write("bw-0")))
    writer.start()
    time.sleep(0.1)
    written.update(in_threads(write, keys[1:]))
    writer.join(30)
    assert db.writes.largest == 4 and len(calls) == 2
    assert written == {"bw-0": True, "bw-1": True, "bw-2": False, "bw-3": True, "bw-4": True}
    snap = db.snapshot()
    assert snap.states["bw-2"][0].job_id == 7 and snap.owners.get("bw-2") is not None  # untouched
    for k in ("bw-0", "bw-1", "bw-3", "bw-4"):
        assert snap.states[k][0].job_id == 100 + int(k[-1])
        assert k not in snap.owners and k not in snap.attempts  # the claim ended with the write


def test_reads_of_a_burst_in_one_request(batching):
    db = batching
    keys = [f"br-{i}" for i in range(4)]
    revisions = {k: db.create_deployment(k, "slurm", {"script": "#!/bin/bash\ntrue\n"}) for k in keys}
    calls = hold_first_transaction(db)
    first = threading.Thread(target=db.read_deployment, args=("br-0",))
    first.start()
    time.sleep(0.1)
    reads = in_threads(db.read_deployment, keys[1:] + ["br-missing"])
    first.join(30)
    assert db.reads.largest == 4 and len(calls) == 2
    assert reads["br-missing"][0] is None
    for k in keys[1:]:
        dep, state, mod, attempt = reads[k]
        assert dep.key == k and dep.revision == revisions[k] and state.status == "UNSET" and mod == 0
        assert attempt is None


def test_release_deletes_only_its_own_owner_key_and_keeps_the_shared_lease(batching):
    db = batching
    for k in ("rl-1", "rl-2"):
        db.create_deployment(k, "slurm", {"script": "#!/bin/bash\ntrue\n"})
    one, two = db.claim("rl-1", 15), db.claim("rl-2", 15)
    assert one.lease.id == two.lease.id
    db.release(one)
    assert db.get_owner("rl-1") is None and db.get_owner("rl-2") is not None
    assert db.refresh(two) is True and two.lease.refresh() > 0  # the lease was not revoked
    # a release after someone else claimed the key again does not delete their claim
    again = ConfigDB(db.client, db.prefix).claim("rl-1", 15)
    db.release(one)
    assert db.get_owner("rl-1") is not None
    assert again.key == "rl-1"


def test_a_claim_left_behind_expires_on_its_own(batching):
    """A submit whose outcome is unknown keeps its claim (never released, never refreshed):
    later claims on the same shared lease, within its window, do not keep it alive."""
    db = batching
    ttl = 4
    db.claim_margin = 1.0  # window (4 - 1) / 2 = 1.5 s
    for k in ("lb-1", "lb-2", "lb-3"):
        db.create_deployment(k, "slurm", {"script": "#!/bin/bash\ntrue\n"})
    t0 = time.monotonic()
    left = db.claim("lb-1", ttl)
    time.sleep(0.5)
    other = db.claim("lb-2", ttl)  # same lease, made within the window
    assert other.lease.id == left.lease.id
    time.sleep(1.2)
    later = db.claim("lb-3", ttl)  # after the window: a new lease
    assert later.lease.id != left.lease.id and db.leases.granted == 2
    assert db.refresh(other, margin=1.0)  # still provably alive: no keep-alive sent
    deadline = t0 + ttl + 3
    while time.monotonic() < deadline and db.get_owner("lb-1") is not None:
        time.sleep(0.2)
    assert db.get_owner("lb-1") is None and db.get_owner("lb-2") is None
    assert time.monotonic() - t0 < ttl + 3


def test_lease_pool_window_on_real_grants(batching):
    clock = [0.0]
    pool = LeasePool(batching, margin=25, clock=lambda: clock[0])
    assert pool.window(60) == 17.5 and pool.window(30) == 2.5 and pool.window(20) == 0.0
    first, at = pool.get(30)
    clock[0] = 2.49
    assert pool.get(30) == (first, at)
    assert 30 - clock[0] > 25  # a claim made now outlives a submit request
    clock[0] = 2.5
    second, _ = pool.get(30)
    assert second.id != first.id and second.refresh() > 0 and pool.granted == 2
    assert pool.get(20)[0].id not in (first.id, second.id)  # window 0: a lease per claim


def test_a_burst_of_duplicate_submits_through_shared_clients_gives_one_job_each(pack_config, deployer):
    from slurmdeploy import deployer as deployer_module
    from slurmdeploy.deployer import Deployer

    keys = [f"bb-{i}" for i in range(8)]
    for k in keys:
        deployer.configdb.create_deployment(k, "slurm", {"script": "#!/bin/bash\nsleep 2\n"})
    actions = [Deployer.from_config(pack_config, environ={"PATH": "/bin"}, share_clients=True)
               for _ in range(3 * len(keys))]
    db = actions[0].configdb
    assert isinstance(db, BatchingConfigDB) and all(a.configdb is db for a in actions)
    hold_first_transaction(db)  # the other submits' reads queue behind the first
    try:
        run_burst(actions, keys, db, deployer)
    finally:
        deployer_module._SHARED_CLIENTS.clear()  # the next tests get clients of their own


def run_burst(actions, keys, db, deployer):
    results = []
    threads = [threading.Thread(target=lambda a=a, k=k: results.append(a.submit(k)))
               for a, k in zip(actions, keys * 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    by_key = {}
    for ok, res in results:
        by_key.setdefault(res["key"], []).append(res["outcome"])
    for k in keys:
        assert sorted(by_key[k]).count("submitted") == 1, by_key[k]
        assert set(by_key[k]) <= {"submitted", "claimed_elsewhere", "already_submitted"}, by_key[k]
        jobs = deployer.slurm.find_jobs(deployer.mcs_label, f"sdp-{k}")
        assert len(jobs) == 1
        state, _ = deployer.configdb.get_state(k)
        assert state.job_id == jobs[0].job_id
    assert db.claims.items >= len(keys) and db.claims.batches < db.claims.items  # some claims were batched
