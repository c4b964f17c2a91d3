"""slurmdeploy.batch.GroupCommit without etcd: who flushes, what shares a flush,
how errors reach every caller (the etcd side is tests/integration/test_batch.py)."""

import threading

from slurmdeploy.batch import GroupCommit, _batch_error
from slurmdeploy.errors import ConfigDBError


class Gate:
    """A flush that blocks its first call until released, recording every batch."""

    def __init__(self):
        self.batches = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return [("done", item) for item in items]


def run_threads(group, items, conflicts=None):
    results = {}
    threads = []
    for i, item in enumerate(items):
        conflict = conflicts[i] if conflicts else None
        t = threading.Thread(target=lambda i=i, item=item, c=conflict: results.__setitem__(i, group.call(item, c)))
        threads.append(t)
        t.start()
    return threads, results


def test_a_lone_call_is_flushed_at_once_by_its_caller():
    seen = []
    group = GroupCommit("t", lambda items: [seen.append(threading.current_thread()) or i * 2 for i in items], 8)
    assert group.call(21) == 42
    assert seen == [threading.current_thread()] and group.batches == 1 and group.largest == 1


def test_calls_arriving_during_a_flush_share_the_next_one():
    gate = Gate()
    group = GroupCommit("t", gate, 8)
    first = threading.Thread(target=group.call, args=("a",))
    first.start()
    assert gate.entered.wait(10)
    threads, results = run_threads(group, ["b", "c", "d"])
    while sum(len(e) for e in [group._queue]) < 3:
        threading.Event().wait(0.01)
    gate.release.set()
    for t in threads + [first]:
        t.join(10)
    assert gate.batches[0] == ["a"]
    assert sorted(gate.batches[1]) == ["b", "c", "d"]  # one flush for the three waiting calls
    assert sorted(results.values()) == [("done", "b"), ("done", "c"), ("done", "d")]
    assert group.batches == 2 and group.largest == 3


def test_the_same_conflict_key_never_shares_a_flush_and_the_limit_holds():
    gate = Gate()
    group = GroupCommit("t", gate, 2)
    first = threading.Thread(target=group.call, args=(("x", 0),), kwargs={"conflict": "x"})
    first.start()
    assert gate.entered.wait(10)
    threads, results = run_threads(group, [("x", 1), ("x", 2), ("y", 1), ("z", 1)], ["x", "x", "y", "z"])
    while len(group._queue) < 4:
        threading.Event().wait(0.01)
    gate.release.set()
    for t in threads + [first]:
        t.join(10)
    assert len(results) == 4
    for batch in gate.batches:
        keys = [k for k, _ in batch]
        assert len(keys) == len(set(keys)) and len(batch) <= 2, gate.batches


def test_a_failed_flush_raises_in_every_caller_naming_its_deployment():
    gate = Gate()

    def flush(items):
        gate(items)
        if len(items) > 1:
            raise ConfigDBError("cannot reach the Configuration Database (etcd at http://x) to claim: Timeout")
        return [None] * len(items)

    group = GroupCommit("claim", flush, 8, _batch_error("claim"))
    first = threading.Thread(target=group.call, args=(("k0", 15, None),))
    first.start()
    assert gate.entered.wait(10)
    errors = {}

    def call(key):
        try:
            group.call((key, 15, None), conflict=key)
        except ConfigDBError as exc:
            errors[key] = str(exc)

    threads = [threading.Thread(target=call, args=(k,)) for k in ("k1", "k2")]
    for t in threads:
        t.start()
    while len(group._queue) < 2:
        threading.Event().wait(0.01)
    gate.release.set()
    for t in threads + [first]:
        t.join(10)
    assert set(errors) == {"k1", "k2"}
    assert errors["k1"].startswith("deployment 'k1' (claim, one of a batch of 2): cannot reach")
    assert "'k2'" in errors["k2"] and "'k1'" not in errors["k2"]


def test_gathering_happens_only_in_a_burst():
    clock = [100.0]
    group = GroupCommit("t", lambda items: items, 8, gather=5.0, busy_within=1.0, clock=lambda: clock[0])
    group._cv = threading.Condition()
    waited = []
    group._cv.wait = lambda timeout=None: (waited.append(timeout), clock.__setitem__(0, clock[0] + timeout))
    assert group.call(1) == 1 and waited == []  # nothing before: no wait
    group._last_size = 3  # the last flush carried several calls, just now
    assert group.call(2) == 2 and waited == [5.0]
    clock[0] += 2.0  # long after the last flush: a lone call again
    group._last_size = 3
    assert group.call(3) == 3 and waited == [5.0]
