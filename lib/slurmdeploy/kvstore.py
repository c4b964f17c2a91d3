"""etcd key-value access for the Configuration Database: a transaction builder, an optimistic
retry loop, and two stores behind one interface (real etcd through its HTTP/JSON gateway, and
an in-memory store for unit tests).

The pack speaks etcd v3's gateway JSON through ``etcd3gw`` (it works under StackStorm's eventlet
monkey-patching, unlike the gRPC clients; ska-sdp-config itself is only on SKA's own index).
etcd3gw's ``transaction`` takes the raw gateway JSON (keys and values base64), so
:class:`EtcdStore` is the one place that builds and reads those dicts; everything else states
a transaction with :class:`Transaction`.

The retry loop follows ska-sdp-config's ``for txn in config.txn(): ...``
(``ska_sdp_config/config.py``, ``Config.txn`` / ``Transaction``): every key the body reads is
compared on its ``mod_revision`` when the body's writes are committed, all reads of one
attempt are pinned to the revision of its first read (one consistent view), and a failed
comparison runs the body again on a fresh read, at most ``attempts`` times
(:func:`transactions`).

Semantics the in-memory store reproduces, each checked against etcd 3.4 by the integration
tests (``tests/integration``) and stated in etcd's API reference (``api_reference_v3``,
``etcdserverpb.Compare`` / ``TxnRequest``):

- a missing key compares as create_revision = mod_revision = version = 0;
- one transaction makes at most one new store revision, shared by all its writes, and none
  when it changes nothing; its header revision is the store revision after it;
- a put keeps the key's create_revision and sets its mod_revision; a delete then put makes a
  new create_revision (a new deployment incarnation);
- a transaction may not put the same key twice (etcd: "duplicate key given in txn request");
- revoking or expiring a lease deletes the keys attached to it.
"""

import base64
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from slurmdeploy.errors import ConfigDBError

LOG = logging.getLogger(__name__)

#: attempts of a :func:`transactions` loop before it gives up
DEFAULT_ATTEMPTS = 8


@dataclass(frozen=True)
class KV:
    """One stored key (etcd ``mvccpb.KeyValue``).

    Attributes:
        key: the path (str, UTF-8 decoded).
        value: bytes.
        create_revision, mod_revision: store revisions of the key's creation / last write.
        version: writes since creation (1 after the create).
        lease: the lease id the key is attached to (0: none).
    """

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int = 1
    lease: int = 0


# ------------------------------------------------------------------ transaction operations
@dataclass(frozen=True)
class Compare:
    """``target`` (``"CREATE"`` or ``"MOD"``) revision of ``key`` must EQUAL ``revision``."""

    key: str
    target: str
    revision: int


@dataclass(frozen=True)
class Put:
    """Write ``value`` (bytes) at ``key``, attached to ``lease`` (0: none)."""

    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class Delete:
    """Delete ``key`` or, with ``range_end``, every key in ``[key, range_end)``."""

    key: str
    range_end: Optional[str] = None


@dataclass(frozen=True)
class Range:
    """Read ``key`` or every key in ``[key, range_end)``, at store ``revision`` (0: latest)."""

    key: str
    range_end: Optional[str] = None
    revision: int = 0


@dataclass(frozen=True)
class Nested:
    """A transaction inside a transaction (etcd >= 3.3 ``RequestOp.request_txn``): its own
    ``compare`` decides whether its ``success`` operations run; it shares the outer
    transaction's revision. Lets one request make many independent compare-and-swaps (e.g. a
    batch of claims, each of which may fail alone)."""

    compare: tuple
    success: tuple


@dataclass(frozen=True)
class TxnResult:
    """What a transaction did.

    Attributes:
        succeeded: the comparisons held (the success operations ran).
        revision: the store revision after the transaction (the one its writes made).
        responses: one per operation: ``[KV]`` for a :class:`Range`, the number of keys
            deleted for a :class:`Delete`, None for a :class:`Put`, a :class:`TxnResult`
            for a :class:`Nested` (its ``responses`` empty when its compare failed).
        raft_term: etcd's raft term in the response header.
    """

    succeeded: bool
    revision: int
    responses: list = field(default_factory=list)
    raft_term: int = 0


@dataclass(frozen=True)
class RangeResult:
    """The answer of :meth:`Store.range`: ``kvs`` ([KV]), the store ``revision`` it was read
    at, etcd's ``raft_term``."""

    kvs: list
    revision: int
    raft_term: int = 0


class Store:
    """The interface of a key-value store (see :class:`EtcdStore`, :class:`MemoryStore`).

    Every method raises :class:`slurmdeploy.errors.ConfigDBError` when the store cannot be
    reached or answers an error (``what`` says what was being done, for the message).
    """

    endpoint = "?"

    def txn(self, what, compare, success):
        """Run one transaction: when every :class:`Compare` holds, the ``success`` operations
        (:class:`Put`, :class:`Delete`, :class:`Range`, :class:`Nested`) in order. Returns a
        :class:`TxnResult`."""
        raise NotImplementedError

    def range(self, what, key, range_end=None, keys_only=False, limit=0, min_mod_revision=0, revision=0):
        """Read one key or a range. Returns a :class:`RangeResult`. ``min_mod_revision``
        keeps only keys written after it, applied before ``limit`` (as etcd does)."""
        raise NotImplementedError

    def lease(self, what, ttl):
        """Grant a lease of ``ttl`` seconds: an object with ``id``, ``refresh()`` (the TTL
        left, 0 or an error when expired) and ``revoke()``."""
        raise NotImplementedError


class Transaction:
    """One attempt of an optimistic transaction (see :func:`transactions`).

    Reads (:meth:`get`) are sent at once, pinned to the revision of the attempt's first read,
    and each key read is compared on its mod_revision at :meth:`commit`; :meth:`require` adds
    explicit comparisons; :meth:`put`, :meth:`delete`, :meth:`delete_range` and
    :meth:`read_back` are sent together by :meth:`commit`, in the order given.

    Args:
        store: a :class:`Store`.
        what: what the transaction does, for error messages (e.g. ``"claim deployment 'a'"``).
    """

    def __init__(self, store, what):
        self.store = store
        self.what = what
        self.compares = []
        self.operations = []
        self.read_revision = 0
        self.result = None
        self.requests = 0  # requests sent by this attempt (reads and commit)

    def get(self, *keys, ranges=()):
        """Read keys (and ``(start, range_end)`` ranges) in one request, at the revision of
        this attempt's first read.

        Returns:
            For each key, its :class:`KV` or None; then for each range, its ``[KV]``.
        """
        ops = [Range(k, revision=self.read_revision) for k in keys]
        ops += [Range(s, e, revision=self.read_revision) for s, e in ranges]
        answer = self.store.txn(self.what, [], ops)
        self.requests += 1
        if not self.read_revision:
            self.read_revision = answer.revision
        found = []
        for key, kvs in zip(keys, answer.responses[:len(keys)]):
            kv = kvs[0] if kvs else None
            self.compares.append(Compare(key, "MOD", kv.mod_revision if kv else 0))
            found.append(kv)
        for (start, end), kvs in zip(ranges, answer.responses[len(keys):]):
            # a range read is compared key by key: a key added to it later is not noticed
            # (etcd has no compare on a range); callers compare the parent key for that
            self.compares.extend(Compare(kv.key, "MOD", kv.mod_revision) for kv in kvs)
            found.append(list(kvs))
        return found

    def require(self, key, create_revision=None, mod_revision=None):
        """Commit only if ``key`` still has this create_revision and/or mod_revision
        (0: the key must not exist)."""
        if create_revision is not None:
            self.compares.append(Compare(key, "CREATE", int(create_revision)))
        if mod_revision is not None:
            self.compares.append(Compare(key, "MOD", int(mod_revision)))
        return self

    def put(self, key, value, lease=0):
        """Write ``value`` (bytes) at ``key`` at commit (attached to lease id ``lease``)."""
        self.operations.append(Put(key, value, int(lease or 0)))
        return self

    def delete(self, key):
        """Delete ``key`` at commit."""
        self.operations.append(Delete(key))
        return self

    def delete_range(self, start, range_end):
        """Delete every key in ``[start, range_end)`` at commit."""
        self.operations.append(Delete(start, range_end))
        return self

    def nest(self, txn):
        """Add another :class:`Transaction`'s comparisons and operations as one nested
        transaction (:class:`Nested`) committed with this one; its result is the
        :class:`TxnResult` in :attr:`result`'s responses at the returned index."""
        self.operations.append(Nested(tuple(txn.compares), tuple(txn.operations)))
        return len(self.operations) - 1

    def read_back(self, key):
        """Read ``key`` in the committing transaction itself (after the writes before it);
        its ``[KV]`` is in :attr:`result`'s responses at this operation's index."""
        self.operations.append(Range(key))
        return len(self.operations) - 1

    @property
    def writes(self):
        """True when the commit would change something (a put or a delete)."""
        return any(not isinstance(op, Range) for op in self.operations)

    def commit(self):
        """Send the comparisons and operations as one transaction.

        An attempt that only read (no operation) commits without a request: its reads were
        already one consistent view.

        Returns:
            True when the comparisons held; :attr:`result` is the :class:`TxnResult`.
        """
        if not self.operations:
            self.result = TxnResult(True, self.read_revision)
            return True
        self.result = self.store.txn(self.what, self.compares, self.operations)
        self.requests += 1
        return self.result.succeeded


def transactions(store, what, attempts=DEFAULT_ATTEMPTS):
    """Optimistic transactions in ska-sdp-config's style::

        for txn in transactions(store, "update x"):
            kv, = txn.get(path)
            txn.put(path, new_value(kv))

    Each iteration yields a new :class:`Transaction`; when the loop body returns to the
    loop, its writes are committed; when a compared key changed meanwhile, the body runs
    again on a fresh read. A ``break`` (or ``return``) in the body ends the loop without a
    commit. After the loop, the yielded object's :attr:`Transaction.result` is the commit's.

    Raises:
        ConfigDBError: the keys kept changing for ``attempts`` attempts (the message says
            what was being done; try again).
    """
    for attempt in range(1, attempts + 1):
        txn = Transaction(store, what)
        yield txn
        if txn.commit():
            return
        LOG.debug("%s: a compared key changed meanwhile (attempt %s of %s); reading again", what, attempt, attempts)
    raise ConfigDBError(f"Configuration Database (etcd at {store.endpoint}) failed to {what}: the keys kept "
                        f"changing during {attempts} attempts; try again")


# ------------------------------------------------------------------------------- etcd
def _b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _kv(item):
    return KV(base64.b64decode(item["key"]).decode("utf-8", "replace"), base64.b64decode(item.get("value", "")),
              int(item.get("create_revision", 0)), int(item.get("mod_revision", 0)), int(item.get("version", 0)),
              int(item.get("lease", 0)))


def _range_json(key, range_end=None, revision=0):
    body = {"key": _b64(key)}
    if range_end is not None:
        body["range_end"] = _b64(range_end)
    if revision:
        body["revision"] = int(revision)
    return body


class EtcdStore(Store):
    """A :class:`Store` on a real etcd through ``etcd3gw`` (etcd's v3 HTTP/JSON gateway).

    Args:
        client: an ``etcd3gw.Etcd3Client``.

    Attributes:
        client: the etcd3gw client; endpoint: ``protocol://host:port`` (for messages).
    """

    def __init__(self, client):
        self.client = client
        self.endpoint = f"{client.protocol}://{client.host}:{client.port}"
        self._credentials = None

    def authenticate(self, username, password):
        """Log in through the gateway's ``/v3/auth/authenticate`` (etcd3gw has no user/password
        support) and send the token in the ``Authorization`` header, as etcd's gateway expects.

        Raises:
            ConfigDBError: refused (the message names the user, never the password).
        """
        from etcd3gw import exceptions as etcd_exceptions

        try:
            answer = self.client.post(self.client.get_url("/auth/authenticate"),
                                      json={"name": username, "password": password})
        except etcd_exceptions.Etcd3Exception as exc:
            raise ConfigDBError(
                f"etcd at {self.endpoint} refused user {username!r} (check config_username/config_password, "
                f"env SDP_CONFIG_USERNAME/SDP_CONFIG_PASSWORD): {type(exc).__name__}"
            ) from None
        self.client.session.headers["Authorization"] = answer["token"]
        self._credentials = (username, password)

    def call(self, what, func, *args, **kwargs):
        """Call an etcd3gw function; an expired auth token is renewed once; errors become
        :class:`ConfigDBError` naming the endpoint and ``what`` (never the password)."""
        # imported here: an in-memory store (unit tests) needs neither; cached after the first call
        import requests
        from etcd3gw import exceptions as etcd_exceptions

        try:
            try:
                return func(*args, **kwargs)
            except etcd_exceptions.Etcd3Exception as exc:
                # etcd auth tokens die with an etcd restart or expire: log in again, once
                if self._credentials and "auth" in str(getattr(exc, "detail_text", "") or exc).lower():
                    self.authenticate(*self._credentials)
                    return func(*args, **kwargs)
                raise
        except etcd_exceptions.Etcd3Exception as exc:
            raise ConfigDBError(
                f"Configuration Database (etcd at {self.endpoint}) failed to {what}: "
                f"{type(exc).__name__}: {getattr(exc, 'detail_text', '') or exc}"
            ) from None
        except requests.RequestException as exc:
            raise ConfigDBError(
                f"cannot reach the Configuration Database (etcd at {self.endpoint}) to {what}: {type(exc).__name__}"
            ) from None

    @staticmethod
    def _txn_json(compare, success):
        body = {"compare": [], "success": [], "failure": []}
        for c in compare:
            field_name = "create_revision" if c.target == "CREATE" else "mod_revision"
            body["compare"].append({"key": _b64(c.key), "result": "EQUAL", "target": c.target,
                                    field_name: int(c.revision)})
        for op in success:
            if isinstance(op, Put):
                put = {"key": _b64(op.key), "value": _b64(op.value)}
                if op.lease:
                    put["lease"] = op.lease
                body["success"].append({"request_put": put})
            elif isinstance(op, Delete):
                body["success"].append({"request_delete_range": _range_json(op.key, op.range_end)})
            elif isinstance(op, Nested):
                body["success"].append({"request_txn": EtcdStore._txn_json(op.compare, op.success)})
            else:
                body["success"].append({"request_range": _range_json(op.key, op.range_end, op.revision)})
        return body

    @staticmethod
    def _txn_result(answer, success, revision, raft_term):
        # the gateway omits default-valued fields: no "succeeded" is False, no "kvs" none,
        # no "deleted" 0; revisions come back as strings (etcd 3.4 TxnResponse)
        succeeded = bool(answer.get("succeeded", False))
        responses = []
        raw = answer.get("responses") or []
        if succeeded:
            for index, op in enumerate(success):
                item = raw[index] if index < len(raw) else {}
                if isinstance(op, Range):
                    responses.append([_kv(kv) for kv in (item.get("response_range") or {}).get("kvs") or []])
                elif isinstance(op, Delete):
                    responses.append(int((item.get("response_delete_range") or {}).get("deleted", 0)))
                elif isinstance(op, Nested):
                    responses.append(EtcdStore._txn_result(item.get("response_txn") or {}, op.success, revision,
                                                           raft_term))
                else:
                    responses.append(None)
        return TxnResult(succeeded, revision, responses, raft_term)

    def txn(self, what, compare, success):
        answer = self.call(what, self.client.transaction, self._txn_json(compare, success))
        header = answer.get("header") or {}
        return self._txn_result(answer, success, int(header.get("revision", 0)), int(header.get("raft_term", 0)))

    def range(self, what, key, range_end=None, keys_only=False, limit=0, min_mod_revision=0, revision=0):
        body = _range_json(key, range_end, revision)
        if keys_only:
            body["keys_only"] = True
        if limit:
            body["limit"] = int(limit)
        if min_mod_revision:
            body["min_mod_revision"] = int(min_mod_revision)
        answer = self.call(what, self.client.post, self.client.get_url("/kv/range"), json=body)
        header = answer.get("header") or {}
        return RangeResult([_kv(kv) for kv in answer.get("kvs") or []], int(header.get("revision", 0)),
                           int(header.get("raft_term", 0)))

    def lease(self, what, ttl):
        lease = self.call(what, self.client.lease, int(ttl))
        store = self

        class _Lease:
            """etcd3gw's Lease with errors as ConfigDBError."""

            id = lease.id

            def refresh(self):
                return store.call(f"{what}: refresh", lease.refresh)

            def revoke(self):
                return store.call(f"{what}: revoke", lease.revoke)

        return _Lease()


# ------------------------------------------------------------------------------- memory
class MemoryStore(Store):
    """An in-memory :class:`Store` with etcd's revision semantics (see the module docs), as
    ska-sdp-config's memory backend stands in for etcd in its unit tests.

    It is for unit tests of the I/O shell (configdb, deployer) only: it has no watch, no
    compaction, no auth and one member (raft term 1). The integration tests on real etcd
    (``tests/integration``) remain the proof that the pack works with etcd.

    Args:
        clock: time source in seconds for lease expiry (default ``time.monotonic``).

    Attributes:
        requests: how many requests (transactions, ranges, lease calls) it answered: what a
            test counts to pin "one request per operation".
        revision: the store revision (1 when empty, as etcd starts).
    """

    endpoint = "memory://"

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.revision = 1
        self.requests = 0
        self._history = {}  # key -> [(revision, KV or None)], oldest first
        self._leases = {}  # id -> (ttl, expires at)
        self._lease_ids = itertools.count(7587880000000000001)
        self._lock = threading.Lock()

    # --------------------------------------------------------------- internals
    def _at(self, key, revision=0):
        history = self._history.get(key)
        if not history:
            return None
        if not revision:
            return history[-1][1]
        for rev, kv in reversed(history):
            if rev <= revision:
                return kv
        return None

    def _keys(self, key, range_end, revision=0):
        if range_end is None:
            kv = self._at(key, revision)
            return [kv] if kv is not None else []
        found = (self._at(k, revision) for k in sorted(self._history)
                 if key.encode("utf-8") <= k.encode("utf-8") < range_end.encode("utf-8"))
        return [kv for kv in found if kv is not None]

    def _expire(self):
        now = self.clock()
        for lease_id in [i for i, (_, until) in self._leases.items() if until <= now]:
            self._revoke(lease_id)

    def _revoke(self, lease_id):
        self._leases.pop(lease_id, None)
        attached = [k for k, h in self._history.items() if h[-1][1] is not None and h[-1][1].lease == lease_id]
        if attached:
            self.revision += 1
            for key in attached:
                self._history[key].append((self.revision, None))

    def _check_revision(self, revision):
        if revision and revision > self.revision:
            raise ConfigDBError(f"Configuration Database ({self.endpoint}) failed to read: "
                                f"etcdserver: mvcc: required revision is a future revision")

    # --------------------------------------------------------------- interface
    def _fail(self, what, reason):
        return ConfigDBError(f"Configuration Database ({self.endpoint}) failed to {what}: etcdserver: {reason}")

    def _check_writes(self, what, success):
        """etcd refuses a transaction that puts one key twice, or puts a key a delete of the
        same transaction covers, also across nested transactions ("duplicate key given in txn
        request"); a nested transaction's writes are checked against the outer ones."""
        puts, deletes = [], []

        def walk(ops):
            for op in ops:
                if isinstance(op, Put):
                    puts.append(op.key)
                elif isinstance(op, Delete):
                    deletes.append(op)
                elif isinstance(op, Nested):
                    walk(op.success)

        walk(success)
        covered = any(_inside(key, d.key, d.range_end) for key in puts for d in deletes)
        if len(puts) != len(set(puts)) or covered:
            raise self._fail(what, "duplicate key given in txn request")

    def _holds(self, compare, current):
        for c in compare:
            kv = current(c.key)
            have = 0 if kv is None else (kv.create_revision if c.target == "CREATE" else kv.mod_revision)
            if have != c.revision:
                return False
        return True

    def _apply(self, what, success, pending, new_revision):
        """Apply operations to ``pending`` (key -> KV or None); returns their responses."""

        def current(key):
            return pending[key] if key in pending else self._at(key)

        responses = []
        for op in success:
            if isinstance(op, Put):
                if op.lease and op.lease not in self._leases:
                    raise self._fail(what, "requested lease not found")
                old = current(op.key)
                pending[op.key] = KV(op.key, bytes(op.value), old.create_revision if old else new_revision,
                                     new_revision, (old.version if old else 0) + 1, op.lease)
                responses.append(None)
            elif isinstance(op, Delete):
                gone = 0
                for key in sorted(set(self._history) | set(pending)):
                    if _inside(key, op.key, op.range_end) and current(key) is not None:
                        pending[key] = None
                        gone += 1
                responses.append(gone)
            elif isinstance(op, Nested):
                if self._holds(op.compare, current):
                    responses.append(TxnResult(True, 0, self._apply(what, op.success, pending, new_revision), 1))
                else:
                    responses.append(TxnResult(False, 0, [], 1))
            elif op.revision:
                responses.append(self._keys(op.key, op.range_end, op.revision))
            else:
                merged = {kv.key: kv for kv in self._keys(op.key, op.range_end)}
                merged.update({k: kv for k, kv in pending.items() if _inside(k, op.key, op.range_end)})
                responses.append([merged[k] for k in sorted(merged, key=str.encode) if merged[k] is not None])
        return responses

    def txn(self, what, compare, success):
        with self._lock:
            self.requests += 1
            self._expire()
            for op in success:
                self._check_revision(getattr(op, "revision", 0))
            self._check_writes(what, success)
            if not self._holds(compare, self._at):
                return TxnResult(False, self.revision, [], 1)
            pending = {}  # key -> KV or None, this transaction's writes
            new_revision = self.revision + 1
            responses = self._apply(what, success, pending, new_revision)
            changed = {k: v for k, v in pending.items() if not (v is None and self._at(k) is None)}
            if changed:
                self.revision = new_revision
                for key, kv in changed.items():
                    self._history.setdefault(key, []).append((new_revision, kv))
            return TxnResult(True, self.revision, [_with_revision(r, self.revision) for r in responses], 1)

    def range(self, what, key, range_end=None, keys_only=False, limit=0, min_mod_revision=0, revision=0):
        with self._lock:
            self.requests += 1
            self._expire()
            self._check_revision(revision)
            kvs = [kv for kv in self._keys(key, range_end, revision) if kv.mod_revision >= (min_mod_revision or 0)]
            if limit:
                kvs = kvs[:limit]
            if keys_only:
                kvs = [KV(kv.key, b"", kv.create_revision, kv.mod_revision, kv.version, kv.lease) for kv in kvs]
            return RangeResult(kvs, revision or self.revision, 1)

    def lease(self, what, ttl):
        with self._lock:
            self.requests += 1
            self._expire()
            lease_id = next(self._lease_ids)
            self._leases[lease_id] = (int(ttl), self.clock() + int(ttl))
        return _MemoryLease(self, lease_id)


def _inside(key, start, range_end):
    """True when ``key`` is ``start`` (no ``range_end``) or in ``[start, range_end)`` (bytes order)."""
    if range_end is None:
        return key == start
    return start.encode("utf-8") <= key.encode("utf-8") < range_end.encode("utf-8")


def _with_revision(response, revision):
    """A nested :class:`TxnResult` with the outer transaction's revision (as etcd's header)."""
    if not isinstance(response, TxnResult):
        return response
    return TxnResult(response.succeeded, revision, [_with_revision(r, revision) for r in response.responses], 1)


class _MemoryLease:
    """A lease of a :class:`MemoryStore` (``id``, ``refresh()``, ``revoke()`` as etcd3gw's)."""

    def __init__(self, store, lease_id):
        self.store = store
        self.id = lease_id

    def refresh(self):
        """Keep the lease for another TTL. Returns the TTL, or 0 when it already expired."""
        store = self.store
        with store._lock:
            store.requests += 1
            store._expire()
            if self.id not in store._leases:
                return 0
            ttl = store._leases[self.id][0]
            store._leases[self.id] = (ttl, store.clock() + ttl)
            return ttl

    def revoke(self):
        """Revoke the lease: its keys are deleted (one new store revision). Returns True."""
        store = self.store
        with store._lock:
            store.requests += 1
            store._revoke(self.id)
        return True
