"""SDP Configuration Database (etcd) access in ska-sdp-config's layout and value format.

``ska-sdp-config`` is only published on SKA's own index, so the pack speaks to etcd
directly through ``etcd3gw`` (etcd's HTTP/JSON gateway; works under StackStorm's eventlet
monkey-patching, unlike the gRPC clients). Paths and the layout table live in
:mod:`slurmdeploy.layout` (``docs/design.md``, "Configuration Database layout"), transactions
in :mod:`slurmdeploy.kvstore` (a builder, an optimistic retry loop, the etcd store and an
in-memory store for unit tests); this module knows what the values mean.

Values are JSON written exactly as ska-sdp-config writes them (:func:`dumps`).
Writes that depend on what was read are etcd compare-and-swap transactions on the
keys' ``mod_revision``/``create_revision``, like the library's optimistic transactions.
"""

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Optional

from slurmdeploy import kvstore
from slurmdeploy.decisions import Outcome
from slurmdeploy.errors import ConfigDBError, InvalidDeployment
from slurmdeploy.jobs import validate_args
from slurmdeploy.layout import ATTEMPT, KEY_PATTERN, OWNER, STATE, Layout
from slurmdeploy.states import DeploymentState

LOG = logging.getLogger(__name__)

__all__ = ["KEY_PATTERN"]  # re-exported: callers import it from here


def dumps(value):
    """Encode a value as ska-sdp-config does (sorted keys, 2-space indent, UTF-8 kept).

    Returns:
        bytes (UTF-8). etcd3gw base64-encodes ``str`` as latin-1, which breaks on
        non-latin-1 characters, so callers always hand it bytes.
    """
    text = json.dumps(value, ensure_ascii=False, indent=2, separators=(",", ": "), sort_keys=True)
    return text.encode("utf-8")


def loads(raw):
    """Decode a stored value (bytes or str). Returns None for undecodable JSON."""
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class Deployment:
    """One SDP deployment as stored at ``/deploy/<key>``.

    Attributes:
        key: deployment key.
        kind: ``"slurm"`` or ``"helm"`` (0.x ``type``).
        args: the deployment's arguments (dict; for ``slurm`` see :mod:`slurmdeploy.jobs`).
        revision: etcd ``create_revision`` of the key: changes when a deployment is
            deleted and created again with the same key (used to tell jobs apart).
        valid: False when the stored value is not a JSON object with a dict ``args`` or
            has no ``kind``; ``problem`` then says why.
        mod_revision: etcd ``mod_revision`` of the key (0 when unknown): tells one stored
            value from the next, e.g. to log a bad value once. Differs from ``revision``
            when the value was updated in place (:attr:`updated_in_place`).
        stored_key: the ``key`` (0.x ``id``) inside the stored JSON value, or None when it
            has none; ska-sdp-config writes the etcd key's last part there.
    """

    key: str
    kind: Optional[str]
    args: dict
    revision: int
    valid: bool = True
    problem: Optional[str] = None
    mod_revision: int = 0
    stored_key: Optional[str] = None

    @property
    def updated_in_place(self):
        """True when ``/deploy/<key>`` was written again after it was created (same
        create_revision, a later mod_revision): e.g. new args put over the old ones. The
        deployer ignores such updates, as the original SKA deployer does (issue 15, item 7)."""
        return bool(self.mod_revision) and self.mod_revision != self.revision


@dataclass(frozen=True)
class DeploymentRecord:
    """A deployment with its state, owner and submit-attempt trace, read in one etcd
    transaction (:meth:`ConfigDB.read`: one consistent store revision, one request).

    Attributes:
        key: deployment key.
        deployment: the :class:`Deployment`, or None when ``/deploy/<key>`` is absent.
        state: the :class:`DeploymentState` (UNSET when none, or when the stored one is older
            than the deployment: :func:`is_stale_state`).
        state_mod_revision: the state key's mod_revision (0: no state), for a compare-and-swap
            write (:meth:`ConfigDB.write_state`).
        owner: the decoded owner value, or None when nobody owns the deployment.
        attempt: the deployment revision of a recorded submit attempt, or None.
        revision: the store revision the record was read at.
    """

    key: str
    deployment: Optional[Deployment]
    state: DeploymentState
    state_mod_revision: int
    owner: Optional[dict]
    attempt: Optional[int]
    revision: int


@dataclass
class Snapshot:
    """Everything under ``/deploy/`` read in one consistent etcd range request (and, in the
    sensor, kept current by applying watch events: :meth:`apply`, :meth:`remove`).

    Attributes:
        deployments: key -> :class:`Deployment`.
        states: key -> ``(DeploymentState, mod_revision)``.
        owners: key -> decoded owner value.
        revision: the etcd store revision of the read (or of the last event applied).
        attempts: key -> the deployment revision (create_revision) a submit attempt was
            made for (``/deploy/<key>/attempt``).
        layout: the :class:`slurmdeploy.layout.Layout` the paths are in (its
            ``deploy_prefix`` is :attr:`base`).
        raw_states: key -> ``(decoded state value, mod_revision)`` as stored; ``states``
            is derived from it and the deployment (a stale state reads as UNSET).
        ignored_entries: path -> ``(path, mod_revision, reason)`` of every entry under
            ``/deploy/`` that is not a deployment, state, owner or attempt in ska-sdp-config's
            layout (e.g. a key that ska-sdp-config would reject: unicode, spaces, ``/``,
            longer than 96); see :attr:`ignored`.
    """

    deployments: dict
    states: dict
    owners: dict
    revision: int
    attempts: dict = field(default_factory=dict)
    layout: Layout = field(default_factory=Layout)
    raw_states: dict = field(default_factory=dict)
    ignored_entries: dict = field(default_factory=dict)

    @property
    def base(self):
        """The path the keys are relative to, ``[prefix]/deploy/``."""
        return self.layout.deploy_prefix

    @property
    def ignored(self):
        """``[(path, mod_revision, reason)]`` of the entries this snapshot cannot use."""
        return list(self.ignored_entries.values())

    @property
    def orphans(self):
        """Keys with a state in the Slurm deployer's format, an owner or a submit-attempt trace
        written by this deployer but no deployment (left by a non-recursive delete), sorted."""
        return sorted(k for k in set(self.raw_states) | set(self.owners) | set(self.attempts) if self.is_orphan(k))

    def is_orphan(self, key):
        """True when ``key`` is one of :attr:`orphans`."""
        return key not in self.deployments and (is_slurm_state(self.raw_states.get(key, (None, 0))[0])
                                                or is_our_owner(self.owners.get(key)) or key in self.attempts)

    def key_of(self, path):
        """The deployment key a path belongs to (the deployment or one of its children), or
        None for a path the layout has no place for."""
        return self.layout.split(path).key

    def _derive_state(self, key):
        """Set ``states[key]`` from the stored state and the deployment: a state last written
        before its deployment was created belongs to an earlier deployment with the same key
        (:func:`is_stale_state`) and reads as no state (UNSET) with its real mod_revision, so
        the next write replaces it."""
        if key not in self.raw_states:
            self.states.pop(key, None)
            return
        dep = self.deployments.get(key)
        self.states[key] = _read_state(key, *self.raw_states[key], dep.revision if dep is not None else None)

    def apply(self, path, raw, create_rev, mod_rev):
        """Record one key's value (a range item or a watch PUT event). Entries that do not
        fit ska-sdp-config's layout are kept in :attr:`ignored_entries`."""
        where = self.layout.split(path)
        key = where.key
        if key is None:
            if where.problem is not None:
                self.ignored_entries[path] = (path, mod_rev, where.problem)
            return
        if where.child is None:
            self.deployments[key] = _parse_deployment(key, raw, create_rev, mod_rev)
            self._derive_state(key)
        elif where.child == STATE:
            self.raw_states[key] = (loads(raw), mod_rev)
            self._derive_state(key)
        elif where.child == OWNER:
            self.owners[key] = loads(raw) or {}
        elif where.child == ATTEMPT:
            self.attempts[key] = _attempt_revision(raw)

    def remove(self, path):
        """Forget one key (a watch DELETE event)."""
        self.ignored_entries.pop(path, None)
        where = self.layout.split(path)
        key = where.key
        if key is None:
            return
        if where.child is None:
            self.deployments.pop(key, None)
            self._derive_state(key)
        elif where.child == STATE:
            self.raw_states.pop(key, None)
            self._derive_state(key)
        else:
            {OWNER: self.owners, ATTEMPT: self.attempts}[where.child].pop(key, None)

    def attempt_pending(self, key):
        """True when a submit of this incarnation of ``key`` may have reached Slurm unrecorded:
        an attempt trace for its revision, no owner (the submitter is gone) and no job id."""
        dep = self.deployments.get(key)
        if dep is None or key in self.owners or self.attempts.get(key) != dep.revision:
            return False
        state = self.states.get(key)
        return state is None or (state[0].job_id is None and not state[0].terminal)


@dataclass(frozen=True)
class Claim:
    """Proof that this process owns a deployment (the owner key exists on our lease).

    Attributes:
        key: deployment key.
        lease: the lease the owner key is attached to (``id``, ``refresh()``, ``revoke()``).
        ttl: the lease's time to live in seconds.
        granted_at: ``time.monotonic()`` just before the lease was granted.
        state, state_mod_revision: the deployment's state and its mod_revision, read in
            the claiming transaction (None when not read).
    """

    key: str
    lease: object
    ttl: int = 0
    granted_at: float = 0.0
    state: Optional[DeploymentState] = None
    state_mod_revision: int = 0


class ConfigDB:
    """Configuration Database client for deployments, their states and owners.

    Args:
        client: an ``etcd3gw.Etcd3Client``, or a :class:`slurmdeploy.kvstore.Store` (e.g.
            :class:`slurmdeploy.kvstore.MemoryStore` for unit tests: :meth:`in_memory`).
        prefix: global key prefix (ska-sdp-config's ``--prefix``), ``""`` for none.

    Attributes:
        store: the :class:`slurmdeploy.kvstore.Store` every request goes through.
        client: the etcd3gw client (None on an in-memory store).
        layout: the :class:`slurmdeploy.layout.Layout` of ``prefix``.
        endpoint: where the store is, for messages.

    All methods raise :class:`slurmdeploy.errors.ConfigDBError` (naming the etcd
    endpoint, never the password) when etcd cannot be reached or answers an error.
    """

    def __init__(self, client, prefix=""):
        if isinstance(client, kvstore.Store):
            self.store, self.client = client, getattr(client, "client", None)
        else:
            self.store, self.client = kvstore.EtcdStore(client), client
        self.layout = Layout(prefix)
        self.prefix = self.layout.prefix
        self.endpoint = self.store.endpoint

    @classmethod
    def in_memory(cls, prefix="", clock=time.monotonic):
        """A ConfigDB on a new :class:`slurmdeploy.kvstore.MemoryStore` (unit tests only)."""
        return cls(kvstore.MemoryStore(clock), prefix)

    @classmethod
    def from_settings(cls, settings, timeout=10.0):
        """Connect as configured by ``config_*`` settings (``SDP_CONFIG_*``).

        ``etcd3gw`` has no user/password support; when ``config_username`` is set this
        authenticates through the gateway's ``/v3/auth/authenticate`` and sends the
        token in the ``Authorization`` header, as etcd's gateway expects
        (:meth:`slurmdeploy.kvstore.EtcdStore.authenticate`).

        Raises:
            ConfigDBError: authentication failed.
        """
        import etcd3gw
        import requests

        session = requests.Session()
        session.trust_env = False
        if settings.config_cert:
            session.verify = settings.config_cert
        client = etcd3gw.Etcd3Client(
            host=settings.config_host,
            port=settings.config_port,
            protocol=settings.config_protocol,
            timeout=timeout,
            api_path="/v3/",
            session=session,
        )
        db = cls(client, settings.config_prefix)
        if settings.config_username:
            db.store.authenticate(settings.config_username, settings.config_password or "")
        return db

    # ------------------------------------------------------------------ paths
    def deployment_path(self, key):
        """``[prefix]/deploy/<key>`` (:meth:`Layout.deployment`)."""
        return self.layout.deployment(key)

    def state_path(self, key):
        """``[prefix]/deploy/<key>/state`` (:meth:`Layout.state`)."""
        return self.layout.state(key)

    def owner_path(self, key):
        """``[prefix]/deploy/<key>/owner`` (:meth:`Layout.owner`)."""
        return self.layout.owner(key)

    def attempt_path(self, key):
        """``[prefix]/deploy/<key>/attempt`` (:meth:`Layout.attempt`)."""
        return self.layout.attempt(key)

    @property
    def deploy_prefix(self):
        """``[prefix]/deploy/``: where all deployments live."""
        return self.layout.deploy_prefix

    def new_client(self, timeout=None):
        """A second etcd3gw client to the same etcd with its own HTTP session (and the same
        credentials): a watch holds its connection open, so it must not share one.

        Args:
            timeout: request timeout in seconds (default: this client's).

        Raises:
            ConfigDBError: this ConfigDB is not on etcd (an in-memory store has no watch).
        """
        if self.client is None:
            raise ConfigDBError(f"the Configuration Database at {self.endpoint} is not etcd: it cannot be watched")
        import etcd3gw
        import requests

        session = requests.Session()
        session.trust_env = False
        session.verify = self.client.session.verify
        session.headers.update(self.client.session.headers)
        return etcd3gw.Etcd3Client(host=self.client.host, port=self.client.port, protocol=self.client.protocol,
                                   timeout=timeout or self.client.timeout, api_path="/v3/", session=session)

    # ------------------------------------------------------------- transactions
    def txn(self, what, attempts=kvstore.DEFAULT_ATTEMPTS):
        """Optimistic transactions, as ska-sdp-config's ``for txn in config.txn(): ...``::

            for txn in db.txn("bump x"):
                kv, = txn.get(db.state_path("x"))
                txn.put(db.state_path("x"), new_value(kv))

        Keys read with ``txn.get`` are compared on their mod_revision at commit; a changed
        key runs the body again on a fresh read (:func:`slurmdeploy.kvstore.transactions`).

        Args:
            what: what the transaction does, for error messages.
            attempts: how many times the body may run.

        Yields:
            :class:`slurmdeploy.kvstore.Transaction`.

        Raises:
            ConfigDBError: the keys kept changing for ``attempts`` attempts.
        """
        return kvstore.transactions(self.store, what, attempts)

    def transaction(self, what):
        """One :class:`slurmdeploy.kvstore.Transaction` that the caller commits itself (a
        compare-and-swap whose failure the caller handles: re-read and decide again)."""
        return kvstore.Transaction(self.store, what)

    # ------------------------------------------------------------- reading
    def snapshot(self):
        """Read all deployments, states and owners in one range request.

        A state last written before its deployment was created (etcd ``mod_revision``
        lower than the deployment's ``create_revision``) belongs to an earlier deployment
        with the same key, left behind by a non-recursive delete: it reads as no state
        (status UNSET) with its real mod_revision, so the next write replaces it
        (:meth:`get_state`).

        Returns:
            A :class:`Snapshot`. Keys that do not match ska-sdp-config's key pattern
            and children other than ``state``/``owner``/``attempt`` are listed in ``ignored``.
        """
        start, end = self.layout.deploy_range()
        answer = self.store.range("read the deployments", start, end)
        snap = Snapshot({}, {}, {}, answer.revision, layout=self.layout)
        for kv in answer.kvs:
            snap.apply(kv.key, kv.value, kv.create_revision, kv.mod_revision)
        return snap

    def changed_since(self, revision):
        """Did any key under ``[prefix]/deploy/`` change after store revision ``revision``?
        One small range request: at most one key (``keys_only``, ``limit: 1``) with
        ``mod_revision > revision``.

        ``count_only`` with ``min_mod_revision`` cannot answer it: etcd ignores the
        mod/create revision filters when it only counts and returns the size of the whole
        range (etcd 3.4.23 here; etcd-io/etcd#18267, documented upstream rather than fixed;
        pinned by ``tests/integration/test_watch_liveness.py``). etcd filters by revision
        before it applies the limit, so an unchanged first key does not hide a changed later one.

        Returns:
            ``(changed, raft_term)``: bool, and etcd's raft term in the answer's header (a new
            term means etcd restarted or elected a new leader).
        """
        start, end = self.layout.deploy_range()
        answer = self.store.range("check the watch", start, end, keys_only=True, limit=1,
                                  min_mod_revision=int(revision) + 1)
        return bool(answer.kvs), answer.raft_term

    def _get(self, what, path):
        kvs = self.store.range(what, path).kvs
        return kvs[0] if kvs else None

    def get_deployment(self, key):
        """Return the :class:`Deployment` at ``/deploy/<key>``, or None when absent."""
        kv = self._get(f"read deployment {key!r}", self.deployment_path(key))
        return None if kv is None else _parse_deployment(key, kv.value, kv.create_revision, kv.mod_revision)

    def get_state(self, key, deployment_revision=None):
        """Return ``(DeploymentState, mod_revision)``; mod_revision 0 when no state exists.

        Args:
            key: deployment key.
            deployment_revision: the deployment's create_revision (``Deployment.revision``).
                When given, a state last written before it (an earlier deployment's, left
                by a non-recursive delete of ``/deploy/<key>``; :func:`is_stale_state`)
                reads as no state (UNSET) but keeps its mod_revision, so that a
                compare-and-swap write replaces it.
        """
        kv = self._get(f"read the state of deployment {key!r}", self.state_path(key))
        if kv is None:
            return DeploymentState.from_dict(key, None), 0
        if deployment_revision is not None and is_stale_state(kv.mod_revision, deployment_revision):
            LOG.debug("deployment %r: the state written at revision %s predates the deployment (revision %s); "
                      "ignored", key, kv.mod_revision, deployment_revision)
        return _read_state(key, loads(kv.value), kv.mod_revision, deployment_revision)

    def get_attempt(self, key):
        """Return the deployment revision of a recorded submit attempt, or None when none."""
        kv = self._get(f"read the submit attempt of deployment {key!r}", self.attempt_path(key))
        return None if kv is None else _attempt_revision(kv.value)

    def get_owner(self, key):
        """Return the decoded owner value, or None when nobody owns the deployment."""
        kv = self._get(f"read the owner of deployment {key!r}", self.owner_path(key))
        return None if kv is None else (loads(kv.value) or {})

    def read(self, key, txn=None):
        """Read a deployment with its state, owner and submit-attempt trace in ONE request:
        an etcd transaction of two range reads (``/deploy/<key>`` and its children
        ``/deploy/<key>/`` .. ``/deploy/<key>0``) at one store revision.

        Args:
            key: deployment key.
            txn: read within this :class:`slurmdeploy.kvstore.Transaction` (its keys are
                then compared at its commit) instead of a transaction of its own.

        Returns:
            A :class:`DeploymentRecord`.
        """
        return self.read_many([key], txn)[0]

    def read_many(self, keys, txn=None):
        """:meth:`read` of several deployments in one request (two range reads per key in
        one etcd transaction; etcd's default ``--max-txn-ops`` is 128, so at most 64 keys).

        Returns:
            ``[DeploymentRecord]`` in the order of ``keys``.

        Raises:
            ValueError: more than 64 keys.
        """
        keys = list(keys)
        if len(keys) > 64:
            raise ValueError(f"read_many reads at most 64 deployments per request (etcd's --max-txn-ops 128), "
                             f"got {len(keys)}")
        txn = txn or kvstore.Transaction(self.store, f"read deployment(s) {', '.join(map(repr, keys[:5]))}"
                                                     f"{' ...' if len(keys) > 5 else ''}")
        found = txn.get(*[self.deployment_path(k) for k in keys], ranges=[self.layout.children_range(k) for k in keys])
        return [self._record(key, found[i], found[len(keys) + i], txn.read_revision) for i, key in enumerate(keys)]

    def _record(self, key, dep_kv, children, revision):
        dep = None if dep_kv is None else _parse_deployment(key, dep_kv.value, dep_kv.create_revision,
                                                            dep_kv.mod_revision)
        found = {self.layout.split(kv.key).child: kv for kv in children}
        state_kv, owner_kv, attempt_kv = found.get(STATE), found.get(OWNER), found.get(ATTEMPT)
        if state_kv is None:
            state, mod = DeploymentState.from_dict(key, None), 0
        else:
            state, mod = _read_state(key, loads(state_kv.value), state_kv.mod_revision,
                                     dep.revision if dep is not None else None)
        return DeploymentRecord(key, dep, state, mod, None if owner_kv is None else (loads(owner_kv.value) or {}),
                                None if attempt_kv is None else _attempt_revision(attempt_kv.value), revision)

    def read_deployment(self, key):
        """Read a deployment, its state and its submit-attempt trace in one request
        (:meth:`read`).

        Returns:
            ``(Deployment or None, DeploymentState, state mod_revision (0: none),
            attempt revision or None)``; a state older than the deployment reads as no
            state (as in :meth:`get_state`).
        """
        record = self.read(key)
        return record.deployment, record.state, record.state_mod_revision, record.attempt

    # ------------------------------------------------------------- writing
    def create_deployment(self, key, kind, args):
        """Create ``/deploy/<key>`` (as SDP components do) if it does not exist, by
        compare-and-swap (``create_revision == 0``): of two creators only one wins.

        Returns:
            The new deployment's etcd create_revision (an int > 0, true) when created,
            None when the key already existed.

        Raises:
            ValueError: the key does not match ``^[A-Za-z0-9\\-]{1,96}$``.
        """
        if not KEY_PATTERN.match(key or ""):
            raise ValueError(f"deployment key {key!r} must match {KEY_PATTERN.pattern}")
        path = self.deployment_path(key)
        txn = self.transaction(f"create deployment {key!r}").require(path, create_revision=0)
        if not txn.put(path, dumps({"key": key, "kind": kind, "args": args})).commit():
            return None
        # a transaction's header revision is the store revision its writes made: the put's
        # create_revision (etcd 3.4 TxnResponse)
        return txn.result.revision

    def delete_deployment(self, key, revision=None):
        """Delete ``/deploy/<key>`` and its children (state, owner, attempt), as
        ska-sdp-config's recursive delete does, in one transaction.

        Args:
            revision: when given, delete only if the deployment still has this
                create_revision (it was not deleted and re-created since it was read).

        Returns:
            True when ``/deploy/<key>`` existed (and, with ``revision``, was that incarnation)
            and is now gone with its children; False otherwise (nothing deleted with
            ``revision``; leftovers of a non-recursive delete are deleted without).
        """
        txn = self.transaction(f"delete deployment {key!r}")
        if revision is not None:
            txn.require(self.deployment_path(key), create_revision=revision)
        txn.delete(self.deployment_path(key)).delete_range(*self.layout.children_range(key))
        return txn.commit() and txn.result.responses[0] > 0

    def drop_orphan_state(self, key):
        """Delete the state, owner and submit-attempt trace left under a deleted deployment
        (only while ``/deploy/<key>`` is absent), so the key can be used again.

        Returns:
            True when the deployment was absent (and any leftovers are gone).
        """
        txn = self.transaction(f"remove the leftover state and owner of deleted deployment {key!r}")
        txn.require(self.deployment_path(key), create_revision=0)
        for path in (self.state_path(key), self.owner_path(key), self.attempt_path(key)):
            txn.delete(path)
        return txn.commit()

    def write_state(self, key, state, expected_mod_revision, deployment_revision=None, done=False):
        """Write ``/deploy/<key>/state`` if nobody changed it since it was read.

        Args:
            key: deployment key.
            state: a :class:`DeploymentState`.
            expected_mod_revision: the state's mod_revision when read (0: must not exist).
            deployment_revision: when given, the deployment's create_revision must still
                be this (the deployment was not deleted or replaced meanwhile).
            done: the submission is over: the same transaction deletes the owner key (the
                claim; its unused lease then expires by itself) and the submit-attempt trace.

        Returns:
            True when written, False when a comparison failed (re-read and decide again).
        """
        txn = self.transaction(f"write the state of deployment {key!r}")
        txn.require(self.state_path(key), mod_revision=expected_mod_revision)
        if deployment_revision is not None:
            txn.require(self.deployment_path(key), create_revision=deployment_revision)
        txn.put(self.state_path(key), dumps(state.to_dict()))
        if done:
            txn.delete(self.owner_path(key)).delete(self.attempt_path(key))
        return txn.commit()

    def claim(self, key, ttl, attempt_revision=None):
        """Become the owner of a deployment: create ``/deploy/<key>/owner`` on a new lease.

        The owner value is ``{"pid", "hostname", "command"}`` like ska-sdp-config's.
        The key disappears when the lease expires (``ttl`` seconds) or is revoked, so
        a crashed owner never blocks a deployment for longer than ``ttl``. The same
        transaction reads the state (so the caller need not read it again) and, with
        ``attempt_revision`` (the deployment's create_revision), writes the submit-attempt
        trace ``/deploy/<key>/attempt`` and reads a state older than that revision as no
        state (:func:`is_stale_state`).

        Returns:
            A :class:`Claim`, or None when another process owns the deployment.
        """
        granted_at = time.monotonic()
        lease = self.store.lease(f"grant a lease for deployment {key!r}", int(ttl))
        # never argv: StackStorm's python runner passes the decrypted pack config (tokens,
        # passwords) on the action's command line (python_runner.py "--config=...")
        owner = {"command": ["slurmdeploy", "submit", key], "hostname": socket.gethostname(), "pid": os.getpid()}
        path = self.owner_path(key)
        txn = self.transaction(f"claim deployment {key!r}").require(path, create_revision=0)
        txn.put(path, dumps(owner), lease=lease.id)
        if attempt_revision is not None:
            trace = {"hostname": owner["hostname"], "pid": owner["pid"], "revision": int(attempt_revision)}
            txn.put(self.attempt_path(key), dumps(trace))
        read = txn.read_back(self.state_path(key))
        if not txn.commit():
            lease.revoke()
            return None
        kvs = txn.result.responses[read]
        if not kvs:
            state, mod = DeploymentState.from_dict(key, None), 0
        else:
            state, mod = _read_state(key, loads(kvs[0].value), kvs[0].mod_revision, attempt_revision)
        return Claim(key, lease, int(ttl), granted_at, state, mod)

    def refresh(self, claim, margin=0.0):
        """Keep a claim alive for another ``ttl``. Returns False when it already expired.

        Args:
            margin: seconds the claim must still live; when less than ``ttl - margin``
                seconds passed since the lease was granted, it provably does, and no
                request is sent.
        """
        if claim.ttl and time.monotonic() - claim.granted_at < claim.ttl - margin:
            return True
        try:
            return claim.lease.refresh() > 0
        except (KeyError, TypeError, ValueError):
            # etcd3gw's Lease.refresh reads result["result"]["TTL"]; an expired lease has none
            return False

    def release(self, claim):
        """Give a claim up (revoking the lease deletes the owner key). Never raises."""
        try:
            claim.lease.revoke()
        except ConfigDBError as exc:
            LOG.warning("%s; the owner key expires with its lease", exc)


def _attempt_revision(raw):
    """The ``revision`` of a stored submit-attempt trace (None when unreadable)."""
    value = loads(raw)
    return value.get("revision") if isinstance(value, dict) else None


def _parse_deployment(key, raw, create_rev, mod_rev=0):
    value = loads(raw)
    if not isinstance(value, dict):
        what = "not JSON" if value is None else f"a JSON {type(value).__name__}"
        return Deployment(key, None, {}, create_rev, False,
                          f"the stored value is {what}, not a JSON object {{\"key\", \"kind\", \"args\"}}", mod_rev)
    kind = value.get("kind", value.get("type"))
    if kind is None:
        return Deployment(key, None, {}, create_rev, False,
                          "the stored object has no 'kind' (ska-sdp-config writes 'slurm' or 'helm')", mod_rev)
    args = value.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return Deployment(key, kind, {}, create_rev, False, f"'args' must be an object, got {type(args).__name__}",
                          mod_rev)
    stored_key = value.get("key", value.get("id"))
    return Deployment(key, kind, args, create_rev, mod_revision=mod_rev,
                      stored_key=None if stored_key is None else str(stored_key))


def _read_state(key, value, mod_revision, deployment_revision=None):
    """``(DeploymentState, mod_revision)`` of a decoded state value: the one place the stale
    rule is applied (:meth:`ConfigDB.get_state`, :meth:`ConfigDB.read`, the watched
    :class:`Snapshot`). A state older than ``deployment_revision`` (:func:`is_stale_state`)
    reads as no state but keeps its mod_revision, so a compare-and-swap write replaces it."""
    if deployment_revision is not None and is_stale_state(mod_revision, deployment_revision):
        value = None
    return DeploymentState.from_dict(key, value), mod_revision


def is_stale_state(state_mod_revision, deployment_revision):
    """True when a state was last written before its deployment was created.

    Every state this deployer writes is written by a compare-and-swap that requires the
    deployment's current create_revision (:meth:`ConfigDB.write_state`), so the state of
    the current deployment always has a mod_revision at or above the deployment's
    create_revision (equal when ska-sdp-config creates both in one transaction). A lower
    one is an earlier deployment's, left when only ``/deploy/<key>`` was deleted.
    """
    return int(state_mod_revision) < int(deployment_revision)


def is_slurm_state(value):
    """True for a decoded state value in the Slurm deployer's format (``jobs`` ->
    ``{key: {"slurm_job_id", ...}}``); other deployers' states are left alone."""
    jobs = value.get("jobs") if isinstance(value, dict) else None
    return isinstance(jobs, dict) and any(isinstance(j, dict) and "slurm_job_id" in j for j in jobs.values())


def is_our_owner(value):
    """True for a decoded owner value written by this deployer (:meth:`ConfigDB.claim`)."""
    command = value.get("command") if isinstance(value, dict) else None
    return isinstance(command, list) and command[:1] == ["slurmdeploy"]


# ------------------------------------------------- deployments for operators and newcomers
# What the actions deployment_create, deployment_list and deployment_delete do (thin wrappers in
# actions/), so that a deployment can be made without ska-sdp-config (only on SKA's own index).

#: the kinds ska-sdp-config knows (``Deployment.kind``); only ``slurm`` is run by this pack
DEPLOYMENT_KINDS = ("slurm", "helm")


def check_new_deployment(key, kind, args, mcs_label=""):
    """Check a deployment before it is written, as ska-sdp-config and ``submit`` would.

    Args:
        key: deployment key; must match ska-sdp-config's ``^[A-Za-z0-9\\-]{1,96}$``.
        kind: ``"slurm"`` (its args are checked as ``submit`` checks them,
            :func:`slurmdeploy.jobs.validate_args`) or ``"helm"`` (args must be an object).
        args: the deployment's args (dict).
        mcs_label: the deployer's label, for the message about a reserved field.

    Raises:
        InvalidDeployment: naming the key and what is wrong and accepted.
    """
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise InvalidDeployment(key, f"the key must match {KEY_PATTERN.pattern} (ska-sdp-config's rule: "
                                     f"letters, digits and '-', 1 to 96 characters)")
    if kind not in DEPLOYMENT_KINDS:
        raise InvalidDeployment(key, f"kind {kind!r} is not one of {', '.join(DEPLOYMENT_KINDS)} "
                                     f"(this pack runs only 'slurm')")
    if kind == "slurm":
        validate_args(key, args, mcs_label)
    elif not isinstance(args, dict):
        raise InvalidDeployment(key, f"args must be an object, got {type(args).__name__}")


def deployment_create(db, key, args, kind="slurm", replace=False, mcs_label=""):
    """Validate and create ``/deploy/<key>`` by compare-and-swap (:meth:`ConfigDB.create_deployment`).

    Args:
        db: a :class:`ConfigDB`.
        key, args, kind: the deployment (see :func:`check_new_deployment`).
        replace: when the key exists, delete that deployment with its state (as
            :func:`deployment_delete` does: the sensor then cancels its job) and create the
            new one, a new incarnation (new create_revision) that gets its own job. Without
            it an existing key is refused.
        mcs_label: for messages (see :func:`check_new_deployment`).

    Returns:
        ``(ok, result)``: ``result`` is ``{"outcome", "key", "path", ...}`` with outcome
        ``created`` (and ``revision``, the create_revision), ``exists`` (not ok; ``revision``
        of the existing one), or ``invalid`` (not ok; ``error`` says what to fix). Nothing is
        written unless the outcome is ``created`` (with ``replace``, the old deployment is
        deleted even when another creator then wins the key: outcome ``exists``).

    Raises:
        ConfigDBError: etcd cannot be reached or answers an error.
    """
    base = {"key": key, "path": db.deployment_path(key) if isinstance(key, str) else None}
    try:
        check_new_deployment(key, kind, args, mcs_label)
    except InvalidDeployment as exc:
        return False, {**base, "outcome": Outcome.INVALID.value, "error": str(exc)}
    replaced = None
    if replace:
        existing = db.get_deployment(key)
        if existing is not None and db.delete_deployment(key, existing.revision):
            replaced = existing.revision
            LOG.info("deployment %r: deleted incarnation %s with its state to replace it", key, replaced)
    revision = db.create_deployment(key, kind, args)
    if revision is None:
        existing = db.get_deployment(key)
        return False, {**base, "outcome": Outcome.EXISTS.value, "revision": existing.revision if existing else None,
                       "error": f"deployment {key!r} already exists at {base['path']}; delete it first "
                                f"(deployment_delete) or pass replace=true"}
    LOG.info("deployment %r created at %s (revision %s)", key, base["path"], revision)
    result = {**base, "outcome": Outcome.CREATED.value, "kind": kind, "revision": revision}
    if replaced is not None:
        result["replaced_revision"] = replaced
    return True, result


def deployment_rows(snapshot):
    """One row per deployment of a :class:`Snapshot`, sorted by key, for listings.

    Returns:
        ``[{"key", "kind", "revision", "status", "job_id", "state_reason", "problem"}]``:
        ``status`` is the SDP status of its state (``UNSET`` before the deployer wrote one,
        also for a stale state of an earlier incarnation), ``problem`` why an unusable
        stored value is ignored (else None).
    """
    rows = []
    for key in sorted(snapshot.deployments):
        dep = snapshot.deployments[key]
        state = snapshot.states.get(key, (DeploymentState.from_dict(key, None), 0))[0]
        rows.append({"key": key, "kind": dep.kind, "revision": dep.revision, "status": state.status,
                     "job_id": state.job_id, "state_reason": state.state_reason,
                     "problem": None if dep.valid else dep.problem})
    return rows


def deployment_list(db):
    """Every deployment under ``[prefix]/deploy/`` with its state, read in one request.

    Returns:
        ``{"count", "deployments": deployment_rows(...), "ignored": [path...]}`` (``ignored``:
        entries ska-sdp-config's layout has no place for, e.g. a key with a space).
    """
    snapshot = db.snapshot()
    rows = deployment_rows(snapshot)
    return {"count": len(rows), "deployments": rows, "ignored": sorted(p for p, _, _ in snapshot.ignored)}


def deployment_delete(db, key):
    """Delete a deployment and its state, owner and submit-attempt trace in one transaction,
    as ska-sdp-config's recursive delete does. Its Slurm job is not touched here: the
    deployment sensor sees an unfinished job that no deployment wants and dispatches
    ``deployment_removed``, whose rule runs ``cancel``.

    Returns:
        ``(ok, result)``: ``{"outcome": Outcome.DELETED.value, "key", "path", "revision", "job_id",
        "status", "note"}`` (``job_id``/``status`` from the state deleted with it), or
        ``(False, {"outcome": Outcome.NOT_FOUND.value, ...})``; ``invalid`` for a key ska-sdp-config
        rejects.

    Raises:
        ConfigDBError: etcd cannot be reached or answers an error.
    """
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        return False, {"outcome": Outcome.INVALID.value, "key": key,
                       "error": f"deployment key {key!r} does not match {KEY_PATTERN.pattern}"}
    base = {"key": key, "path": db.deployment_path(key)}
    # read and delete in one optimistic transaction: re-read when the deployment or one of
    # its children changed between the read and the delete (e.g. it was re-created)
    for txn in db.txn(f"delete deployment {key!r}", attempts=5):
        record = db.read(key, txn)
        dep, state = record.deployment, record.state
        if dep is None:
            return False, {**base, "outcome": Outcome.NOT_FOUND.value, "error": f"no deployment at {base['path']}"}
        txn.require(db.deployment_path(key), create_revision=dep.revision)
        txn.delete(db.deployment_path(key)).delete_range(*db.layout.children_range(key))
    if state.job_id is not None and not state.terminal:
        note = (f"Slurm job {state.job_id} is cancelled by the deployment sensor (deployment_removed -> cancel) "
                f"when its etcd watch wakes, at the latest after loop_interval")
    elif state.job_id is not None:
        note = f"Slurm job {state.job_id} had already ended ({state.status})"
    else:
        note = ("no job recorded; a job being submitted right now is cancelled by the deployment sensor "
                "(deployment_removed -> cancel)")
    LOG.info("deployment %r (revision %s) deleted with its state; %s", key, dep.revision, note)
    return True, {**base, "outcome": Outcome.DELETED.value, "revision": dep.revision, "job_id": state.job_id,
                  "status": state.status, "note": note}


def connect(settings):
    """Shorthand for :meth:`ConfigDB.from_settings`."""
    return ConfigDB.from_settings(settings)
