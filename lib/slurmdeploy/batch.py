"""Group commit of the Configuration DB work of concurrent submits (issue 18, "burst").

Under a local runner (packrunner: actions are threads of one process) a burst of new
deployments runs many ``submit`` actions at once, and each makes the same three etcd writes
and one read (``docs/design.md``, "Exactly one Slurm job per deployment"): read the deployment,
grant a lease, claim ``/deploy/<key>/owner`` by compare-and-swap, and write the state by
compare-and-swap. :class:`BatchingConfigDB` is a :class:`slurmdeploy.configdb.ConfigDB` whose
``read_deployment``, ``claim`` and ``write_state`` join whatever other threads of the process
are doing the same at that moment into one etcd request (:class:`GroupCommit`):

- reads: :meth:`ConfigDB.read_many` of every waiting key (a read-only transaction of two
  ranges per key: one consistent revision for all; etcd answers it without a raft write);
- claims: one transaction holding one *nested* transaction per key (``RequestOp.request_txn``,
  etcd >= 3.3), each with its own compare (``/deploy/<key>/owner`` absent) and its own outcome,
  so a claim that fails (someone else owns that deployment) fails alone; all on one shared
  lease (:class:`LeasePool`) instead of a lease granted per claim;
- state writes: one transaction of nested compare-and-swap transactions, one per key, each
  succeeding or failing on its own comparisons exactly as :meth:`ConfigDB.write_state`.

So a batch of N submits costs one raft write (one fsync) per step instead of N, and 3 etcd
requests instead of 4N. A lone call is not delayed: the first caller flushes at once and only
calls arriving while a flush is in flight wait for the next one (classic group commit); while a
burst is on (the last flush carried several calls, :data:`BUSY_WITHIN`) a flush first waits
:data:`GATHER` seconds for more. Under
StackStorm every action is a process of its own, so every batch has one member and the only
difference is the lease (see :class:`LeasePool`).

Exactly once is kept: every claim is still a compare-and-swap of its own owner key, and a
claim whose submit outcome is unknown still expires on its own. The shared lease is never kept
alive by a background keep-alive: it is handed to new claims only during the first part of
its life (:attr:`LeasePool.window`), so every claim on it provably lives at least
``claim_margin`` (connect + read timeout: a submit request) after it was made, and the lease
expires at most ``ttl`` seconds after its last refresh; a refresh happens only inside a submit
(:meth:`ConfigDB.refresh`), right before its request. A claim on a shared lease is released by
deleting its owner key (compared on its create_revision, so a later claim of the same key by
someone else is never deleted), never by revoking the lease, which would end the other claims
on it. Shown by ``tests/integration/test_batch.py`` on a real etcd.

Facts used: etcd 3.4's ``TxnRequest`` accepts ``request_txn`` operations (nested transactions,
``etcdserver/etcdserverpb/rpc.proto``, added in 3.3) through the JSON gateway; a failed nested
transaction answers ``{"response_txn": {"header": {}}}`` (``succeeded`` omitted: false); at
most ``--max-txn-ops`` (default 128) operations per transaction level, and no key may be put or
deleted twice in one request, nested levels included ("duplicate key given in txn request"):
hence :data:`MAX_NESTED` and one key at most once per batch (etcd 3.4.23 here,
``tests/integration/test_batch.py``).
"""

import logging
import os
import socket
import threading
import time

from slurmdeploy import kvstore
from slurmdeploy.configdb import Claim, ConfigDB, _read_state, dumps, loads
from slurmdeploy.errors import ConfigDBError
from slurmdeploy.states import DeploymentState

LOG = logging.getLogger(__name__)

#: nested transactions (claims, state writes) per etcd request: below etcd's default
#: ``--max-txn-ops`` of 128 operations per transaction level
MAX_NESTED = 64
#: deployments read per request (:meth:`ConfigDB.read_many`: two ranges each, 128 operations)
MAX_READS = 64
#: seconds a flush waits for more calls while a burst is on (:meth:`GroupCommit._wait_for_more`):
#: with 16 submitting threads, 3 ms made the batches ~1.6x larger and the etcd work ~1.4x
#: cheaper in CPU per deployment (bench/batch.py: 2 ms and 5 ms measured on either side)
GATHER = 0.003
#: a burst is on when the last flush carried several calls and ended less than this ago
#: (seconds); a lone submit (one deployment created at a time) never waits
BUSY_WITHIN = 0.02


class _Entry:
    """One call waiting in a :class:`GroupCommit`."""

    __slots__ = ("item", "conflict", "done", "value", "error")

    def __init__(self, item, conflict):
        self.item = item
        self.conflict = conflict
        self.done = False
        self.value = None
        self.error = None


class GroupCommit:
    """Leader-based group commit: callers of :meth:`call` from many threads are served by
    one ``flush`` of everything waiting; the caller that finds nobody flushing flushes at
    once (no added latency for a lone call), the others wait for the next flush.

    Written here rather than taken from a library: the standard library has no group
    commit, and the pack's threads may be eventlet green threads under StackStorm, where
    ``threading.Condition`` (monkey-patched) is what works.

    Args:
        name: what is batched, for logs (e.g. ``"claim"``).
        flush: ``flush(items) -> [result...]`` (same order as ``items``), or raises: every
            caller of that batch then gets the exception (wrapped by ``error``).
        limit: most items per flush.
        error: ``error(item, exc, size) -> Exception`` for one caller of a failed batch.

    Attributes:
        batches, items, largest: how many flushes ran, how many items they carried, and the
            largest batch (for benchmarks and tests).
    """

    def __init__(self, name, flush, limit, error=None, gather=0.0, busy_within=0.0, clock=time.monotonic):
        self.name = name
        self._flush = flush
        self._limit = max(1, int(limit))
        self._error = error or (lambda item, exc, size: exc)
        self._gather = float(gather)
        self._busy_within = float(busy_within)
        self._clock = clock
        self._last_flush = None  # clock time the last flush ended
        self._last_size = 0  # items of the last flush
        self._cv = threading.Condition()
        self._queue = []
        self._leading = False
        self.batches = self.items = self.largest = 0

    def call(self, item, conflict=None):
        """Run ``item`` in the next flush and return its result.

        Args:
            item: what ``flush`` gets.
            conflict: items with the same non-None ``conflict`` never share a flush (etcd
                refuses one key written twice in a transaction); the later waits for the next.

        Raises:
            whatever ``error`` makes of the flush's exception.
        """
        entry = _Entry(item, conflict)
        with self._cv:
            self._queue.append(entry)
            if len(self._queue) >= self._limit:
                self._cv.notify_all()  # a gathering leader need not wait longer
            while not entry.done and self._leading:
                self._cv.wait()
            if entry.done:
                return self._result(entry)
            self._leading = True
        try:
            while not entry.done:
                with self._cv:
                    self._wait_for_more()
                    batch = self._take()
                self._run(batch)
        finally:
            with self._cv:
                self._leading = False
                self._cv.notify_all()
        return self._result(entry)

    def _wait_for_more(self):
        """In a burst (the last flush carried several calls and ended less than ``busy_within``
        seconds ago), let the
        calls of the other threads join for up to ``gather`` seconds before flushing (the
        lock is released meanwhile). A lone call, long after the last flush, never waits."""
        if (not self._gather or self._last_size < 2 or self._last_flush is None
                or self._clock() - self._last_flush >= self._busy_within):
            return
        deadline = self._clock() + self._gather
        while len(self._queue) < self._limit:
            left = deadline - self._clock()
            if left <= 0:
                return
            self._cv.wait(left)

    @staticmethod
    def _result(entry):
        if entry.error is not None:
            raise entry.error
        return entry.value

    def _take(self):
        """Up to ``limit`` waiting entries, oldest first, no two with the same conflict key."""
        batch, conflicts, rest = [], set(), []
        for entry in self._queue:
            if len(batch) < self._limit and (entry.conflict is None or entry.conflict not in conflicts):
                batch.append(entry)
                if entry.conflict is not None:
                    conflicts.add(entry.conflict)
            else:
                rest.append(entry)
        self._queue = rest
        return batch

    def _run(self, batch):
        items = [entry.item for entry in batch]
        try:
            results = self._flush(items)
            errors = [None] * len(batch)
        except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
            results = [None] * len(batch)
            errors = [self._error(item, exc, len(batch)) for item in items]
        with self._cv:
            self._last_flush, self._last_size = self._clock(), len(batch)
            self.batches += 1
            self.items += len(batch)
            self.largest = max(self.largest, len(batch))
            for entry, value, error in zip(batch, results, errors):
                entry.value, entry.error, entry.done = value, error, True
            self._cv.notify_all()


class LeasePool:
    """The lease that new claims of one time to live are attached to, shared by the claims
    made during its first :attr:`window` seconds, then replaced by a new one.

    A claim on a lease granted ``age`` seconds ago lives at least ``ttl - age`` more
    seconds, more than ``margin`` (the submit request's connect + read timeout) while
    ``age < window = (ttl - margin) / 2``, so :meth:`ConfigDB.refresh` finds it provably alive
    and sends no keep-alive in the common case. Nothing refreshes the lease in the
    background: once no submit refreshes it, it expires ``ttl`` seconds after its last
    refresh, with every claim still on it (a crashed submitter's, or one whose submit
    outcome is unknown: ``docs/design.md``, "Exactly one Slurm job per deployment").

    Args:
        configdb: the :class:`ConfigDB` that grants leases.
        margin: seconds a claim must live after it is made.
        clock: ``time.monotonic`` (tests).
    """

    def __init__(self, configdb, margin, clock=time.monotonic):
        self._configdb = configdb
        self.margin = float(margin)
        self._clock = clock
        self._leases = {}  # ttl -> (etcd3gw Lease, granted_at)
        self._lock = threading.Lock()
        self.granted = 0

    def window(self, ttl):
        """Seconds after its grant during which a lease of ``ttl`` takes new claims."""
        return max(0.0, (float(ttl) - self.margin) / 2)

    def get(self, ttl):
        """``(lease, granted_at)`` for a new claim of ``ttl`` seconds: the current one while
        within its window, else a newly granted one.

        Raises:
            ConfigDBError: the lease could not be granted.
        """
        with self._lock:
            current = self._leases.get(ttl)
            if current is not None and self._clock() - current[1] < self.window(ttl):
                return current
        granted_at = self._clock()
        lease = self._configdb.store.lease(f"grant a lease of {ttl} s for submission claims", int(ttl))
        with self._lock:
            self._leases[ttl] = (lease, granted_at)
            self.granted += 1
        return lease, granted_at

    def drop(self, lease):
        """Forget ``lease`` (etcd no longer knows it); the next :meth:`get` grants another."""
        with self._lock:
            for ttl, (held, _) in list(self._leases.items()):
                if held is lease:
                    del self._leases[ttl]


class SharedClaim(Claim):
    """A :class:`slurmdeploy.configdb.Claim` on a lease shared with other claims.

    Attributes:
        revision: the etcd revision of the transaction that created the owner key (its
            create_revision): :meth:`BatchingConfigDB.release` deletes the owner key only
            while it is still this one.
    """

    def __init__(self, key, lease, ttl, granted_at, state, state_mod_revision, revision):
        super().__init__(key, lease, ttl, granted_at, state, state_mod_revision)
        object.__setattr__(self, "revision", int(revision))


def _keys_text(keys, shown=5):
    """``'a', 'b' and 3 more`` for messages about a batch."""
    head = ", ".join(repr(k) for k in keys[:shown])
    return head + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _batch_error(what):
    """The ``error`` of a :class:`GroupCommit`: a ConfigDBError naming the caller's deployment."""

    def error(item, exc, size):
        key = item[0]
        if size == 1:
            return exc
        return ConfigDBError(f"deployment {key!r} ({what}, one of a batch of {size}): {exc}")

    return error


class BatchingConfigDB(ConfigDB):
    """A :class:`slurmdeploy.configdb.ConfigDB` whose :meth:`read_deployment`, :meth:`claim`
    and :meth:`write_state` are group-committed across the threads of a process (see the
    module docstring). Same arguments, results and errors as :class:`ConfigDB`; build it with
    :meth:`from_settings` (which also sets :attr:`claim_margin`).

    Attributes:
        claim_margin: seconds a claim must live after it is made (connect + read timeout of
            the Slurm submit request; :class:`LeasePool`).
        reads, claims, writes: the :class:`GroupCommit` of each step (their counters show
            the batch sizes).
        leases: the :class:`LeasePool`.
    """

    def __init__(self, client, prefix=""):
        super().__init__(client, prefix)
        self.leases = LeasePool(self, 0.0)
        timing = {"gather": GATHER, "busy_within": BUSY_WITHIN}
        self.reads = GroupCommit("read", self._flush_reads, MAX_READS, _batch_error("read"), **timing)
        self.claims = GroupCommit("claim", self._flush_claims, MAX_NESTED, _batch_error("claim"), **timing)
        self.writes = GroupCommit("state write", self._flush_writes, MAX_NESTED, _batch_error("state write"),
                                  **timing)

    @classmethod
    def from_settings(cls, settings, timeout=10.0):
        """See :meth:`ConfigDB.from_settings`; the claim margin is ``connect_timeout +
        read_timeout`` (what :meth:`slurmdeploy.deployer.Deployer.submit` asks of a claim)."""
        db = super().from_settings(settings, timeout)
        db.claim_margin = settings.connect_timeout + settings.read_timeout
        return db

    @property
    def claim_margin(self):
        return self.leases.margin

    @claim_margin.setter
    def claim_margin(self, seconds):
        self.leases.margin = float(seconds)

    # ---------------------------------------------------------------- reads
    def read_deployment(self, key):
        """See :meth:`ConfigDB.read_deployment` (one request for every waiting key)."""
        return self.reads.call((key,))

    def _flush_reads(self, items):
        keys = [key for (key,) in items]
        records = self.read_many(keys)
        LOG.debug("read %d deployment(s) in one etcd request: %s", len(keys), _keys_text(keys))
        return [(r.deployment, r.state, r.state_mod_revision, r.attempt) for r in records]

    # --------------------------------------------------------------- claims
    def claim(self, key, ttl, attempt_revision=None):
        """See :meth:`ConfigDB.claim`: the same owner value, attempt trace and state read, in
        one nested transaction per key of the batch, on the shared lease (:class:`LeasePool`).

        Returns:
            A :class:`SharedClaim`, or None when another process owns the deployment.
        """
        return self.claims.call((key, int(ttl), attempt_revision), conflict=key)

    def _flush_claims(self, items):
        out = [None] * len(items)
        by_ttl = {}
        for i, item in enumerate(items):
            by_ttl.setdefault(item[1], []).append(i)
        for ttl, indexes in by_ttl.items():
            for attempt in (1, 2):
                lease, granted_at = self.leases.get(ttl)
                try:
                    result, reads = self._claim_txn([items[i] for i in indexes], lease)
                    break
                except ConfigDBError as exc:
                    if attempt == 2 or "lease not found" not in str(exc):
                        raise
                    LOG.warning("the shared claim lease %s is gone (%s); granting a new one", lease.id, exc)
                    self.leases.drop(lease)
            for n, i in enumerate(indexes):
                key, _, attempt_revision = items[i]
                nested = result.responses[reads[n][0]]
                if not nested.succeeded:
                    continue  # owned by someone else: None
                kvs = nested.responses[reads[n][1]]
                if kvs:
                    state, mod = _read_state(key, loads(kvs[0].value), kvs[0].mod_revision, attempt_revision)
                else:
                    state, mod = DeploymentState.from_dict(key, None), 0
                out[i] = SharedClaim(key, lease, ttl, granted_at, state, mod, result.revision)
            keys = [items[i][0] for i in indexes]
            LOG.debug("claimed %d of %d deployment(s) in one etcd transaction on lease %s: %s",
                      sum(1 for i in indexes if out[i] is not None), len(keys), lease.id, _keys_text(keys))
        return out

    def _claim_txn(self, items, lease):
        """One transaction of one nested claim per item; returns its :class:`kvstore.TxnResult`
        and, per item, ``(index of its nested result, index of its state read in it)``."""
        # never argv: StackStorm's python runner passes the decrypted pack config on the
        # action's command line (same owner value as ConfigDB.claim)
        hostname, pid = socket.gethostname(), os.getpid()
        keys = [item[0] for item in items]
        outer = self.transaction(f"claim deployment(s) {_keys_text(keys)}")
        reads = []
        for key, _, attempt_revision in items:
            owner = {"command": ["slurmdeploy", "submit", key], "hostname": hostname, "pid": pid}
            path = self.owner_path(key)
            inner = self.transaction(f"claim deployment {key!r}").require(path, create_revision=0)
            inner.put(path, dumps(owner), lease=lease.id)
            if attempt_revision is not None:
                trace = {"hostname": hostname, "pid": pid, "revision": int(attempt_revision)}
                inner.put(self.attempt_path(key), dumps(trace))
            read = inner.read_back(self.state_path(key))
            reads.append((outer.nest(inner), read))
        outer.commit()
        return outer.result, reads

    def release(self, claim):
        """Give a claim up. A :class:`SharedClaim` deletes its owner key while it is still the
        one it created (its lease holds other claims: never revoked); any other claim is
        released as :meth:`ConfigDB.release` does. Never raises."""
        if not isinstance(claim, SharedClaim):
            return super().release(claim)
        path = self.owner_path(claim.key)
        try:
            self.transaction(f"release the claim on {claim.key!r}").require(
                path, create_revision=claim.revision).delete(path).commit()
        except ConfigDBError as exc:
            LOG.warning("%s; the owner key expires with its lease", exc)

    # --------------------------------------------------------- state writes
    def write_state(self, key, state, expected_mod_revision, deployment_revision=None, done=False):
        """See :meth:`ConfigDB.write_state` (one nested compare-and-swap per key of the batch)."""
        return self.writes.call((key, state, expected_mod_revision, deployment_revision, done), conflict=key)

    def _flush_writes(self, items):
        keys = [item[0] for item in items]
        outer = self.transaction(f"write the state of deployment(s) {_keys_text(keys)}")
        indexes = []
        for key, state, expected_mod_revision, deployment_revision, done in items:
            inner = self.transaction(f"write the state of deployment {key!r}")
            inner.require(self.state_path(key), mod_revision=expected_mod_revision)
            if deployment_revision is not None:
                inner.require(self.deployment_path(key), create_revision=deployment_revision)
            inner.put(self.state_path(key), dumps(state.to_dict()))
            if done:
                inner.delete(self.owner_path(key)).delete(self.attempt_path(key))
            indexes.append(outer.nest(inner))
        outer.commit()
        out = [outer.result.responses[i].succeeded for i in indexes]
        LOG.debug("wrote %d of %d state(s) in one etcd transaction: %s", sum(out), len(items), _keys_text(keys))
        return out
