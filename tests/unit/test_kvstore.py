"""The in-memory store against the store contract (tests/kvstore_contract.py, which
tests/integration/test_kvstore_etcd.py runs on the real etcd), and the retry loop."""

import pytest

from kvstore_contract import CHECKS
from slurmdeploy.errors import ConfigDBError
from slurmdeploy.kvstore import MemoryStore, Put, transactions


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__[len("check_"):])
def test_the_memory_store_keeps_the_store_contract(check):
    check(MemoryStore(), "/contract")


def test_the_retry_loop_gives_up_with_a_clear_error_when_keys_keep_changing():
    store = MemoryStore()
    store.txn("seed", [], [Put("/k", b"0")])
    with pytest.raises(ConfigDBError, match=r"bump /k: the keys kept changing during 3 attempts; try again"):
        for txn in transactions(store, "bump /k", attempts=3):
            kv, = txn.get("/k")
            store.txn("racer", [], [Put("/k", kv.value + b"!")])  # always someone faster
            txn.put("/k", b"mine")
    assert store.range("read", "/k").kvs[0].value == b"0!!!"


def test_a_break_in_the_loop_commits_nothing():
    store = MemoryStore()
    for txn in transactions(store, "nothing"):
        txn.put("/k", b"x")
        break
    assert store.range("read", "/k").kvs == []


def test_reads_of_one_attempt_are_pinned_to_its_first_read():
    store = MemoryStore()
    store.txn("seed", [], [Put("/a", b"1"), Put("/b", b"1")])
    for txn in transactions(store, "pinned", attempts=1):
        txn.get("/a")
        store.txn("writer", [], [Put("/b", b"2")])
        b, = txn.get("/b")
        assert b.value == b"1"  # the view of the first read
        break


def test_a_lease_expires_with_the_clock_and_its_keys_go():
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    lease = store.lease("grant", 10)
    store.txn("owned", [], [Put("/owned", b"me", lease.id)])
    now[0] += 9.9
    assert store.range("read", "/owned").kvs
    now[0] += 0.2
    assert store.range("read", "/owned").kvs == [] and lease.refresh() == 0
    with pytest.raises(ConfigDBError, match="lease not found"):
        store.txn("late", [], [Put("/owned", b"me", lease.id)])
