"""SDP Configuration Database (etcd) access in ska-sdp-config's layout and value format.

``ska-sdp-config`` is only published on SKA's own index, so the pack speaks to etcd
directly through ``etcd3gw`` (etcd's HTTP/JSON gateway; works under StackStorm's
eventlet monkey-patching, unlike the gRPC clients). Layout (``docs/design.md``):

- ``[prefix]/deploy/<key>``        ``{"key", "kind", "args"}`` (0.x: ``id``/``type``)
- ``[prefix]/deploy/<key>/state``  the deployer's state (:class:`slurmdeploy.states.DeploymentState`)
- ``[prefix]/deploy/<key>/owner``  ``{"pid", "hostname", "command"}``, attached to a lease
- ``[prefix]/deploy/<key>/attempt`` ``{"revision", "pid", "hostname"}``: this pack's own trace
  that a submit request for the deployment's incarnation ``revision`` may have reached Slurm
  without its job id being recorded yet (written before the submit, deleted once the state
  holds the job id); only then does a submit, or the sensor, look for the job in Slurm

Values are JSON written exactly as ska-sdp-config writes them (:func:`dumps`).
Writes that depend on what was read are etcd compare-and-swap transactions on the
keys' ``mod_revision``/``create_revision``, like the library's optimistic transactions.
"""

import base64
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Optional

from slurmdeploy.clientlibs import etcd3gw, requests  # noqa: I001 - first: without eventlet/chardet (see there)
from etcd3gw import exceptions as etcd_exceptions

from slurmdeploy.decisions import Outcome
from slurmdeploy.errors import ConfigDBError, InvalidDeployment
from slurmdeploy.jobs import validate_args
from slurmdeploy.states import DeploymentState

LOG = logging.getLogger(__name__)

#: Deployment keys accepted by ska-sdp-config.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9\-]{1,96}$")


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


def _b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


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
        base: the path the keys are relative to, ``[prefix]/deploy/``.
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
    base: str = "/deploy/"
    raw_states: dict = field(default_factory=dict)
    ignored_entries: dict = field(default_factory=dict)

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

    def _split(self, path):
        """``(key, [child...])`` of a path under :attr:`base`; ``(None, reason)`` for an
        entry ska-sdp-config's layout has no place for; ``(None, None)`` outside :attr:`base`."""
        if not path.startswith(self.base):
            return None, None  # not under the deployment prefix: not ours to judge
        parts = path[len(self.base):].split("/")
        if not KEY_PATTERN.match(parts[0]):
            return None, (f"deployment key {_shown_key(path[len(self.base):])} does not match "
                          f"{KEY_PATTERN.pattern} (ska-sdp-config rejects it)")
        if parts[1:] not in ([], ["state"], ["owner"], ["attempt"]):
            return None, (f"deployment key {_shown_key(path[len(self.base):])} contains '/' "
                          f"(ska-sdp-config rejects it; keys match {KEY_PATTERN.pattern})")
        return parts[0], parts[1:]

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
        key, rest = self._split(path)
        if key is None:
            if rest is not None:
                self.ignored_entries[path] = (path, mod_rev, rest)
            return
        if not rest:
            self.deployments[key] = _parse_deployment(key, raw, create_rev, mod_rev)
            self._derive_state(key)
        elif rest == ["state"]:
            self.raw_states[key] = (loads(raw), mod_rev)
            self._derive_state(key)
        elif rest == ["owner"]:
            self.owners[key] = loads(raw) or {}
        elif rest == ["attempt"]:
            value = loads(raw)
            self.attempts[key] = value.get("revision") if isinstance(value, dict) else None

    def remove(self, path):
        """Forget one key (a watch DELETE event)."""
        self.ignored_entries.pop(path, None)
        key, rest = self._split(path)
        if key is None:
            return
        if not rest:
            self.deployments.pop(key, None)
            self._derive_state(key)
        elif rest == ["state"]:
            self.raw_states.pop(key, None)
            self._derive_state(key)
        else:
            {("owner",): self.owners, ("attempt",): self.attempts}[tuple(rest)].pop(key, None)

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
        lease: the etcd3gw lease the owner key is attached to.
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
        client: an ``etcd3gw.Etcd3Client``.
        prefix: global key prefix (ska-sdp-config's ``--prefix``), ``""`` for none.

    All methods raise :class:`slurmdeploy.errors.ConfigDBError` (naming the etcd
    endpoint, never the password) when etcd cannot be reached or answers an error.
    """

    def __init__(self, client, prefix=""):
        self.client = client
        self.prefix = prefix.rstrip("/")
        self.endpoint = f"{client.protocol}://{client.host}:{client.port}"
        self._credentials = None

    @classmethod
    def from_settings(cls, settings, timeout=10.0):
        """Connect as configured by ``config_*`` settings (``SDP_CONFIG_*``).

        ``etcd3gw`` has no user/password support; when ``config_username`` is set this
        authenticates through the gateway's ``/v3/auth/authenticate`` and sends the
        token in the ``Authorization`` header, as etcd's gateway expects.

        Raises:
            ConfigDBError: authentication failed.
        """
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
            db._authenticate(settings.config_username, settings.config_password or "")
        return db

    def _authenticate(self, username, password):
        try:
            answer = self.client.post(
                self.client.get_url("/auth/authenticate"), json={"name": username, "password": password}
            )
        except etcd_exceptions.Etcd3Exception as exc:
            raise ConfigDBError(
                f"etcd at {self.endpoint} refused user {username!r} (check config_username/config_password, "
                f"env SDP_CONFIG_USERNAME/SDP_CONFIG_PASSWORD): {type(exc).__name__}"
            ) from None
        self.client.session.headers["Authorization"] = answer["token"]
        self._credentials = (username, password)

    # ------------------------------------------------------------------ paths
    def deployment_path(self, key):
        """``[prefix]/deploy/<key>``."""
        return f"{self.prefix}/deploy/{key}"

    def state_path(self, key):
        """``[prefix]/deploy/<key>/state``."""
        return f"{self.deployment_path(key)}/state"

    def owner_path(self, key):
        """``[prefix]/deploy/<key>/owner``."""
        return f"{self.deployment_path(key)}/owner"

    def attempt_path(self, key):
        """``[prefix]/deploy/<key>/attempt``."""
        return f"{self.deployment_path(key)}/attempt"

    @property
    def deploy_prefix(self):
        """``[prefix]/deploy/``: where all deployments live."""
        return f"{self.prefix}/deploy/"

    def new_client(self, timeout=None):
        """A second etcd3gw client to the same etcd with its own HTTP session (and the same
        credentials): a watch holds its connection open, so it must not share one.

        Args:
            timeout: request timeout in seconds (default: this client's).
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.client.session.verify
        session.headers.update(self.client.session.headers)
        return etcd3gw.Etcd3Client(host=self.client.host, port=self.client.port, protocol=self.client.protocol,
                                   timeout=timeout or self.client.timeout, api_path="/v3/", session=session)

    # ------------------------------------------------------------------ calls
    def _call(self, what, func, *args, **kwargs):
        try:
            try:
                return func(*args, **kwargs)
            except etcd_exceptions.Etcd3Exception as exc:
                # etcd auth tokens die with an etcd restart or expire: log in again, once
                if self._credentials and "auth" in str(getattr(exc, "detail_text", "") or exc).lower():
                    self._authenticate(*self._credentials)
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

    def _range(self, what, key, prefix=False):
        payload = {"key": _b64(key)}
        if prefix:
            raw = key.encode("utf-8")
            payload["range_end"] = _b64(raw[:-1] + bytes([raw[-1] + 1]))
        answer = self._call(what, self.client.post, self.client.get_url("/kv/range"), json=payload)
        revision = int(answer.get("header", {}).get("revision", 0))
        items = []
        for kv in answer.get("kvs", []):
            items.append(
                (
                    base64.b64decode(kv["key"]).decode("utf-8", "replace"),
                    base64.b64decode(kv.get("value", "")),
                    int(kv.get("create_revision", 0)),
                    int(kv.get("mod_revision", 0)),
                )
            )
        return items, revision

    def txn(self, what, compare, success):
        """Run one etcd transaction in gateway JSON (keys and values base64).

        Returns:
            True when the comparisons held and ``success`` was applied.
        """
        answer = self._call(
            what, self.client.transaction, {"compare": compare, "success": success, "failure": []}
        )
        # the gateway omits default-valued fields: a missing "succeeded" means False
        return bool(answer.get("succeeded", False))

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
            and children other than ``state``/``owner`` are listed in ``ignored``.
        """
        base = self.deploy_prefix
        items, revision = self._range("read the deployments", base, prefix=True)
        snap = Snapshot({}, {}, {}, revision, base=base)
        for path, raw, create_rev, mod_rev in items:
            snap.apply(path, raw, create_rev, mod_rev)
        return snap

    def get_deployment(self, key):
        """Return the :class:`Deployment` at ``/deploy/<key>``, or None when absent."""
        items, _ = self._range(f"read deployment {key!r}", self.deployment_path(key))
        if not items:
            return None
        _, raw, create_rev, mod_rev = items[0]
        return _parse_deployment(key, raw, create_rev, mod_rev)

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
        items, _ = self._range(f"read the state of deployment {key!r}", self.state_path(key))
        if not items:
            return DeploymentState.from_dict(key, None), 0
        _, raw, _, mod_rev = items[0]
        if deployment_revision is not None and is_stale_state(mod_rev, deployment_revision):
            LOG.debug("deployment %r: the state written at revision %s predates the deployment (revision %s); "
                      "ignored", key, mod_rev, deployment_revision)
        return _read_state(key, loads(raw), mod_rev, deployment_revision)

    def get_attempt(self, key):
        """Return the deployment revision of a recorded submit attempt, or None when none."""
        items, _ = self._range(f"read the submit attempt of deployment {key!r}", self.attempt_path(key))
        value = loads(items[0][1]) if items else None
        return value.get("revision") if isinstance(value, dict) else None

    def read_deployment(self, key):
        """Read a deployment, its state and its submit-attempt trace in one request (a
        read-only etcd transaction of three ranges: one consistent revision).

        Returns:
            ``(Deployment or None, DeploymentState, state mod_revision (0: none),
            attempt revision or None)``; a state older than the deployment reads as no
            state (as in :meth:`get_state`).
        """
        paths = (self.deployment_path(key), self.state_path(key), self.attempt_path(key))
        answer = self._call(f"read deployment {key!r}", self.client.transaction, {
            "compare": [], "success": [{"request_range": {"key": _b64(p)}} for p in paths], "failure": []})
        found = []
        for response in answer.get("responses") or []:
            kvs = (response.get("response_range") or {}).get("kvs") or []
            found.append(kvs[0] if kvs else None)
        found += [None] * (3 - len(found))
        dep_kv, state_kv, attempt_kv = found
        dep = None
        if dep_kv is not None:
            dep = _parse_deployment(key, base64.b64decode(dep_kv.get("value", "")), int(dep_kv.get("create_revision", 0)),
                                    int(dep_kv.get("mod_revision", 0)))
        state, mod = _decode_state(key, state_kv, dep.revision if dep is not None else None)
        attempt = loads(base64.b64decode(attempt_kv.get("value", ""))) if attempt_kv is not None else None
        return dep, state, mod, (attempt.get("revision") if isinstance(attempt, dict) else None)

    def get_owner(self, key):
        """Return the decoded owner value, or None when nobody owns the deployment."""
        items, _ = self._range(f"read the owner of deployment {key!r}", self.owner_path(key))
        return (loads(items[0][1]) or {}) if items else None

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
        answer = self._call(f"create deployment {key!r}", self.client.transaction, {
            "compare": [{"key": _b64(path), "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            "success": [{"request_put": {"key": _b64(path),
                                         "value": _b64(dumps({"key": key, "kind": kind, "args": args}))}}],
            "failure": []})
        if not answer.get("succeeded", False):
            return None
        # a transaction's header revision is the store revision its writes made: the put's
        # create_revision (etcd 3.4 TxnResponse; revisions come back as strings)
        return int(answer.get("header", {}).get("revision", 0))

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
        path = self.deployment_path(key)
        raw = (path + "/").encode("utf-8")
        compare = []
        if revision is not None:
            compare = [{"key": _b64(path), "result": "EQUAL", "target": "CREATE", "create_revision": int(revision)}]
        answer = self._call(f"delete deployment {key!r}", self.client.transaction, {
            "compare": compare,
            "success": [
                {"request_delete_range": {"key": _b64(path)}},
                # "/deploy/<key>/" up to "/deploy/<key>0": every child, nothing of "<key>-x"
                {"request_delete_range": {"key": _b64(raw), "range_end": _b64(raw[:-1] + b"0")}},
            ],
            "failure": []})
        if not answer.get("succeeded", False):
            return False
        first = ((answer.get("responses") or [{}])[0].get("response_delete_range") or {})
        return int(first.get("deleted", 0)) > 0  # the gateway omits deleted: 0

    def drop_orphan_state(self, key):
        """Delete the state, owner and submit-attempt trace left under a deleted deployment
        (only while ``/deploy/<key>`` is absent), so the key can be used again.

        Returns:
            True when the deployment was absent (and any leftovers are gone).
        """
        return self.txn(
            f"remove the leftover state and owner of deleted deployment {key!r}",
            [{"key": _b64(self.deployment_path(key)), "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            [{"request_delete_range": {"key": _b64(self.state_path(key))}},
             {"request_delete_range": {"key": _b64(self.owner_path(key))}},
             {"request_delete_range": {"key": _b64(self.attempt_path(key))}}],
        )

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
        compare = [
            {"key": _b64(self.state_path(key)), "result": "EQUAL", "target": "MOD",
             "mod_revision": int(expected_mod_revision)}
        ]
        if deployment_revision is not None:
            compare.append({"key": _b64(self.deployment_path(key)), "result": "EQUAL", "target": "CREATE",
                            "create_revision": int(deployment_revision)})
        success = [{"request_put": {"key": _b64(self.state_path(key)), "value": _b64(dumps(state.to_dict()))}}]
        if done:
            success += [{"request_delete_range": {"key": _b64(self.owner_path(key))}},
                        {"request_delete_range": {"key": _b64(self.attempt_path(key))}}]
        return self.txn(f"write the state of deployment {key!r}", compare, success)

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
        lease = self._call(f"grant a lease for deployment {key!r}", self.client.lease, int(ttl))
        # never argv: StackStorm's python runner passes the decrypted pack config (tokens,
        # passwords) on the action's command line (python_runner.py "--config=...")
        owner = {"command": ["slurmdeploy", "submit", key], "hostname": socket.gethostname(), "pid": os.getpid()}
        path = self.owner_path(key)
        success = [{"request_put": {"key": _b64(path), "value": _b64(dumps(owner)), "lease": lease.id}}]
        if attempt_revision is not None:
            trace = {"hostname": owner["hostname"], "pid": owner["pid"], "revision": int(attempt_revision)}
            success.append({"request_put": {"key": _b64(self.attempt_path(key)), "value": _b64(dumps(trace))}})
        success.append({"request_range": {"key": _b64(self.state_path(key))}})
        answer = self._call(f"claim deployment {key!r}", self.client.transaction, {
            "compare": [{"key": _b64(path), "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            "success": success, "failure": []})
        if not answer.get("succeeded", False):
            self._call("revoke an unused lease", lease.revoke)
            return None
        kvs = ((answer.get("responses") or [{}])[-1].get("response_range") or {}).get("kvs") or []
        state, mod = _decode_state(key, kvs[0] if kvs else None, attempt_revision)
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
            return self._call(f"refresh the claim on {claim.key!r}", claim.lease.refresh) > 0
        except (KeyError, TypeError, ValueError):
            # etcd3gw's Lease.refresh reads result["result"]["TTL"]; an expired lease has none
            return False

    def release(self, claim):
        """Give a claim up (revoking the lease deletes the owner key). Never raises."""
        try:
            self._call(f"release the claim on {claim.key!r}", claim.lease.revoke)
        except ConfigDBError as exc:
            LOG.warning("%s; the owner key expires with its lease", exc)


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


def _decode_state(key, kv, deployment_revision=None):
    """``(DeploymentState, mod_revision)`` of a raw gateway range item of a state key (None:
    no state, mod_revision 0). A state older than ``deployment_revision`` belongs to an earlier
    deployment with the same key: it reads as no state with its real mod_revision, so the
    next compare-and-swap write replaces it (:func:`is_stale_state`)."""
    if kv is None:
        return DeploymentState.from_dict(key, None), 0
    return _read_state(key, loads(base64.b64decode(kv.get("value", ""))), int(kv.get("mod_revision", 0)),
                       deployment_revision)


def _read_state(key, value, mod_revision, deployment_revision=None):
    """``(DeploymentState, mod_revision)`` of a decoded state value: the one place the stale
    rule is applied (:meth:`ConfigDB.get_state`, :func:`_decode_state`, the watched
    :class:`Snapshot`). A state older than ``deployment_revision`` (:func:`is_stale_state`)
    reads as no state but keeps its mod_revision, so a compare-and-swap write replaces it."""
    if deployment_revision is not None and is_stale_state(mod_revision, deployment_revision):
        value = None
    return DeploymentState.from_dict(key, value), mod_revision


def _shown_key(key, limit=60):
    """A key for a log line: repr, cut to ``limit`` characters with its length."""
    shown = repr(key)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(key)} characters)"


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
    for _ in range(5):  # re-read when the deployment was re-created between read and delete
        dep, state, _mod, _attempt = db.read_deployment(key)
        if dep is None:
            return False, {**base, "outcome": Outcome.NOT_FOUND.value, "error": f"no deployment at {base['path']}"}
        if db.delete_deployment(key, dep.revision):
            break
    else:
        raise ConfigDBError(f"deployment {key!r} kept being re-created while it was deleted; try again")
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
