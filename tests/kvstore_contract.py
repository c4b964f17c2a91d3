"""What a :class:`slurmdeploy.kvstore.Store` must do, as checks on any store.

``tests/unit/test_kvstore.py`` runs every check on the in-memory store and
``tests/integration/test_kvstore_etcd.py`` runs the same checks on the real etcd of the
testbed: the in-memory store used by the unit tests of the shell is honest only as far as
these checks pass on etcd too.

Each check takes ``(store, prefix)``: a store and a key prefix no one else writes under.
"""

import pytest

from slurmdeploy.errors import ConfigDBError
from slurmdeploy.kvstore import Compare, Delete, Nested, Put, Range, Transaction
from slurmdeploy.layout import prefix_end


def _put(store, key, value):
    return store.txn("put", [], [Put(key, value)]).revision


def _get(store, key):
    kvs = store.range("get", key).kvs
    return kvs[0] if kvs else None


def check_revisions_of_create_update_delete_and_recreate(store, prefix):
    created = _put(store, f"{prefix}/a", b"1")
    kv = _get(store, f"{prefix}/a")
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"1", created, created, 1)
    updated = _put(store, f"{prefix}/a", b"2")
    kv = _get(store, f"{prefix}/a")
    assert updated == created + 1 and (kv.create_revision, kv.mod_revision, kv.version) == (created, updated, 2)
    gone = store.txn("delete", [], [Delete(f"{prefix}/a")])
    assert gone.responses == [1] and gone.revision == updated + 1 and _get(store, f"{prefix}/a") is None
    again = _put(store, f"{prefix}/a", b"3")
    assert _get(store, f"{prefix}/a").create_revision == again > created  # a new incarnation


def check_a_missing_key_compares_as_revision_zero(store, prefix):
    key = f"{prefix}/missing"
    assert store.txn("cas", [Compare(key, "CREATE", 0), Compare(key, "MOD", 0)], [Put(key, b"x")]).succeeded
    created = _get(store, key).create_revision
    before = store.range("rev", key).revision
    failed = store.txn("cas", [Compare(key, "CREATE", 0)], [Put(key, b"y")])
    assert not failed.succeeded and failed.revision == before  # nothing written, no new revision
    assert _get(store, key).value == b"x"
    assert store.txn("cas", [Compare(key, "CREATE", created), Compare(key, "MOD", created)], [Put(key, b"z")]).succeeded


def check_one_transaction_makes_one_revision_and_none_when_it_changes_nothing(store, prefix):
    start = _put(store, f"{prefix}/x", b"0")
    both = store.txn("two puts", [], [Put(f"{prefix}/x", b"1"), Put(f"{prefix}/y", b"1")])
    assert both.revision == start + 1
    assert _get(store, f"{prefix}/x").mod_revision == _get(store, f"{prefix}/y").create_revision == start + 1
    reads = store.txn("reads", [], [Range(f"{prefix}/x"), Delete(f"{prefix}/nothing")])
    assert reads.revision == start + 1 and reads.responses[1] == 0  # a delete of nothing changes nothing


def check_a_transaction_reads_its_own_writes_and_ranges_in_key_order(store, prefix):
    answer = store.txn("write and read", [], [Put(f"{prefix}/k/b", b"B"), Put(f"{prefix}/k/a", b"A"),
                                              Range(f"{prefix}/k/", prefix_end(f"{prefix}/k/"))])
    assert [(kv.key, kv.value) for kv in answer.responses[2]] == [(f"{prefix}/k/a", b"A"), (f"{prefix}/k/b", b"B")]
    assert answer.responses[:2] == [None, None]


def check_a_key_cannot_be_put_twice_in_one_transaction(store, prefix):
    with pytest.raises(ConfigDBError, match="duplicate key"):
        store.txn("twice", [], [Put(f"{prefix}/d", b"1"), Put(f"{prefix}/d", b"2")])
    assert _get(store, f"{prefix}/d") is None


def check_a_put_inside_a_delete_of_the_same_transaction_is_refused(store, prefix):
    with pytest.raises(ConfigDBError, match="duplicate key"):
        store.txn("put and delete", [], [Delete(f"{prefix}/p/", prefix_end(f"{prefix}/p/")), Put(f"{prefix}/p/x", b"1")])
    assert store.txn("two deletes", [], [Delete(f"{prefix}/p/x"), Delete(f"{prefix}/p/", prefix_end(f"{prefix}/p/"))]).succeeded


def check_nested_transactions_compare_and_write_each_on_its_own_in_one_revision(store, prefix):
    taken = f"{prefix}/n/taken"
    before = _put(store, taken, b"someone")
    answer = store.txn("batch", [], [
        Nested((Compare(taken, "CREATE", 0),), (Put(taken, b"me"),)),
        Nested((Compare(f"{prefix}/n/free", "CREATE", 0),), (Put(f"{prefix}/n/free", b"me"),
                                                            Range(f"{prefix}/n/free"))),
    ])
    assert answer.succeeded and answer.revision == before + 1
    lost, won = answer.responses
    assert (lost.succeeded, lost.responses) == (False, [])
    assert won.succeeded and won.responses[0] is None and won.responses[1][0].value == b"me"
    assert won.responses[1][0].create_revision == answer.revision
    assert _get(store, taken).value == b"someone"
    with pytest.raises(ConfigDBError, match="duplicate key"):
        store.txn("same key twice", [], [Nested((), (Put(f"{prefix}/n/d", b"1"),)),
                                         Nested((), (Put(f"{prefix}/n/d", b"2"),))])


def check_a_range_filters_by_mod_revision_before_its_limit(store, prefix):
    base = f"{prefix}/r/"
    first = _put(store, f"{base}1", b"v")
    _put(store, f"{base}2", b"v")
    _put(store, f"{base}3", b"v")
    latest = store.range("rev", base).revision
    assert store.range("none", base, prefix_end(base), keys_only=True, limit=1, min_mod_revision=latest + 1).kvs == []
    _put(store, f"{base}3", b"changed")
    changed = store.range("one", base, prefix_end(base), keys_only=True, limit=1, min_mod_revision=latest + 1).kvs
    assert [(kv.key, kv.value) for kv in changed] == [(f"{base}3", b"")]  # keys_only: no value
    assert len(store.range("all", base, prefix_end(base)).kvs) == 3
    assert [kv.key for kv in store.range("old", base, prefix_end(base), revision=first).kvs] == [f"{base}1"]


def check_a_read_at_an_earlier_revision_sees_the_value_then(store, prefix):
    key = f"{prefix}/h"
    first = _put(store, key, b"old")
    _put(store, key, b"new")
    assert store.txn("read", [], [Range(key, revision=first)]).responses[0][0].value == b"old"
    assert _get(store, key).value == b"new"


def check_revoking_a_lease_deletes_its_keys(store, prefix):
    lease = store.lease("grant", 30)
    assert store.txn("owned", [], [Put(f"{prefix}/owned", b"me", lease.id), Put(f"{prefix}/kept", b"x")]).succeeded
    assert _get(store, f"{prefix}/owned").lease == lease.id
    assert lease.refresh() > 0
    lease.revoke()
    assert _get(store, f"{prefix}/owned") is None and _get(store, f"{prefix}/kept") is not None


def check_the_retry_loop_commits_once_on_one_consistent_read(store, prefix):
    key = f"{prefix}/counter"
    _put(store, key, b"0")
    bodies = 0
    from slurmdeploy.kvstore import transactions

    for txn in transactions(store, "count"):
        bodies += 1
        kv, = txn.get(key)
        if bodies == 1:
            _put(store, key, b"5")  # another writer between the read and the commit
        txn.put(key, str(int(kv.value) + 1).encode())
    assert bodies == 2 and _get(store, key).value == b"6"  # the second body read 5


def check_a_transaction_that_only_reads_sends_no_commit(store, prefix):
    txn = Transaction(store, "read only")
    txn.get(f"{prefix}/nothing")
    assert txn.commit() and txn.requests == 1


CHECKS = [value for name, value in sorted(globals().items()) if name.startswith("check_")]
