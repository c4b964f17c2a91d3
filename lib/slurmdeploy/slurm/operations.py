"""Slurm operations for HPC operators: jobs, nodes, partitions, reservations, cluster.

:class:`SlurmOperations` wraps a :class:`~slurmdeploy.slurm.client.SlurmClient` (its
transport, token refresh and version detection) with one method per operation of the
pack's operations actions. Which operation a REST version serves is the table
:data:`slurmdeploy.slurm.versions.ENDPOINTS`; an operation the version in use lacks
raises :class:`~slurmdeploy.errors.UnsupportedOperation` *before* any request is sent.

Unlike the deployer (``slurmdeploy.deployer``), these operations are **not** limited
to jobs carrying the deployer's ``mcs_label``: they act on whatever the configured Slurm
user may act on, and slurmctld enforces that (a plain user may hold, release, update and
cancel only its own jobs; node updates need an operator or administrator: Slurm error
2010 "Invalid user id" otherwise, seen on 24.11.5).

Results are Slurm's own records and field names as the REST version in use returns them
(``meta`` removed; it only echoes the client and plugin). Nothing here returns a token.

Facts these methods rest on (checked on Slurm 22.05.8 / REST v0.0.38 and 24.11.5 /
v0.0.40-42 in the testbed):

- ``GET /node/{name}`` of an unknown name answers 200 with another node (a cluster whose
  only node is ``localhost``) or with none (24.11.5, node ``node1``), so nodes are matched
  by name here;
- an unknown partition answers 500 + error 2000 (22.05) or 422 + 9000 (24.11); an unknown
  reservation 500 + 2053 (22.05) or 200 with no records (24.11, error 0 "Unable to query
  reservations" when none exist): partitions and reservations are listed and matched by
  name, the same on every version;
- ``POST /job/{id}`` takes the job fields themselves (v0.0.38 ``job_properties``, v0.0.40+
  ``job_desc_msg``, no ``{"job": ...}`` wrapper); ``hold: true`` sets priority 0 (state
  reason ``JobHeldUser``), ``hold: false`` releases; 24.11 ignores an unknown field with
  only a warning ("Ignoring unknown field ..."), which is raised as an error here;
- ``POST /node/{name}`` (v0.0.39+) takes ``{"state": ["DRAIN"], "reason": ...}``.
"""

import logging

import hostlist

from slurmdeploy.errors import BadRequest, NotFound, SlurmAPIError, error_from_answer, ignored_fields
from slurmdeploy.slurm.client import CANCEL_ALREADY_ENDED, CANCEL_NOT_FOUND, SlurmClient
from slurmdeploy.slurm.reservations import check_name, reservation_fields
from slurmdeploy.slurm.versions import no_val_number

LOG = logging.getLogger(__name__)

#: the largest job id this library sends to Slurm. Slurm's job ids are ``uint32_t``
#: (slurm.h, ``job_id_msg_t``); 0 is no job, 0xfffffffe is ``NO_VAL`` and 0xffffffff
#: ``INFINITE`` (slurm.h), so 1..0xfffffffd. A cluster assigns ids up to MaxJobId
#: (at most 67,108,863 since Slurm 17.02, RELEASE_NOTES); a federation puts the sibling
#: cluster's id in the top 6 bits, hence ids up to the uint32 range. Larger numbers must never
#: reach slurmrestd: 22.05 wraps them modulo 2**32 (``GET /job/4294967297`` returns job 1,
#: tests/integration/test_operations.py).
MAX_JOB_ID = 0xFFFFFFFD

#: what slurmctld's REST API cannot give compared with ``scontrol show config`` (up to v0.0.44;
#: v0.0.45 serves ``GET /conf``, see :meth:`SlurmOperations.config`)
CONFIG_NOT_AVAILABLE = (
    "slurmctld's REST API up to v0.0.44 has no endpoint for the slurm.conf "
    "settings that `scontrol show config` prints (SchedulerType, SelectType, MinJobAge, "
    "AuthType, timeouts, plugins...; REST v0.0.45, Slurm 26.05, serves them); config_get "
    "returns what the API exposes instead: the Slurm release and cluster name, the REST API "
    "version, the controllers (ping) and each partition's configuration. For slurm.conf items "
    "use `scontrol show config` on a host of the cluster."
)

#: node states an operator sets through node_update's ``state`` (update_node_msg, scontrol)
NODE_STATE_DRAIN, NODE_STATE_DOWN, NODE_STATE_RESUME = "DRAIN", "DOWN", "RESUME"


def public(answer):
    """Return a decoded slurmrestd answer without ``meta`` and empty ``errors``/``warnings``."""
    return {k: v for k, v in answer.items() if k != "meta" and not (k in ("errors", "warnings") and not v)}


def field_matches(value, wanted):
    """Whether one record field matches one criterion (``job_find``, ``node_list``).

    Rules, the same in every REST version:

    - ``{"set", "infinite", "number"}`` numbers compare by their number (unset/infinite:
      None);
    - a list field (v0.0.40+ ``job_state`` ``["PENDING"]``, node ``state``) matches a
      scalar criterion when one item equals it;
    - a list criterion matches a field equal to any of its items;
    - a number and its decimal string are equal (``30`` and ``"30"``); strings are
      compared exactly (Slurm names are case-sensitive).
    """
    if isinstance(value, dict) and "number" in value and "set" in value:
        value = no_val_number(value)
    if isinstance(wanted, list):
        return any(field_matches(value, item) for item in wanted)
    if isinstance(value, list):
        return any(field_matches(item, wanted) for item in value)
    if value == wanted:
        return True
    if isinstance(value, (dict, list)) or isinstance(wanted, (dict, list)) or value is None or wanted is None:
        return False
    if isinstance(value, bool) or isinstance(wanted, bool):
        return str(value).lower() == str(wanted).lower()
    return str(value) == str(wanted)


def match_records(records, criteria, kind):
    """The records whose every ``criteria`` field matches (:func:`field_matches`).

    Raises:
        BadRequest: ``criteria`` is not a mapping, or names a field that no record has
            (listing the fields the records do have).
    """
    if not isinstance(criteria, dict):
        raise BadRequest(f"criteria must be a mapping of {kind} field -> value, got {type(criteria).__name__}")
    if records and criteria:
        known = set().union(*(r.keys() for r in records))
        unknown = sorted(set(criteria) - known)
        if unknown:
            raise BadRequest(f"unknown {kind} field(s) {', '.join(unknown)} in criteria; {kind} records of this "
                             f"Slurm have: {', '.join(sorted(known))}")
    return [r for r in records if all(field_matches(r.get(k), v) for k, v in criteria.items())]


def valid_job_id(job_id):
    """``job_id`` as an int, checked against Slurm's range (1..:data:`MAX_JOB_ID`).

    Args:
        job_id: an int or its decimal string (a StackStorm parameter may arrive as a string).

    Raises:
        BadRequest: not an integer (a bool is not), or outside 1..4294967293.
    """
    if isinstance(job_id, bool):
        raise BadRequest(f"job_id must be a Slurm job id (an integer 1..{MAX_JOB_ID}), got {job_id!r}")
    try:
        value = int(job_id)
    except (TypeError, ValueError):
        raise BadRequest(f"job_id must be a Slurm job id (an integer 1..{MAX_JOB_ID}), got {job_id!r}") from None
    if not 1 <= value <= MAX_JOB_ID:
        raise BadRequest(f"job_id {value} is outside Slurm's job ids 1..{MAX_JOB_ID} (uint32 without NO_VAL and "
                         "INFINITE); check the id (squeue -j ID)")
    return value


def expand_node_names(expression):
    """The node names a Slurm hostlist expression names, in order, each once.

    Uses python-hostlist (``hostlist.expand_hostlist``, the same syntax as Slurm's
    ``scontrol show hostnames``): ``"n[1-3],m1"`` -> ``["n1", "n2", "n3", "m1"]``.

    Raises:
        BadRequest: not a non-empty string, or not a valid hostlist (e.g. ``n[1-``).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise BadRequest(f"node name must be a non-empty string, got {expression!r}")
    try:
        names = hostlist.expand_hostlist(expression.strip())
    except hostlist.BadHostlist as exc:
        raise BadRequest(f"node {expression!r} is not a valid Slurm hostlist ({exc}); write a node name, "
                         "a list n1,n2 or a range n[1-3]") from None
    if not names or not all(names):
        raise BadRequest(f"node {expression!r} names no node; write a node name, a list n1,n2 or a range n[1-3]")
    return names


def verify_fields(fields, record, special=None):
    """Compare the fields an update asked for with the record read back afterwards.

    Args:
        fields: ``{field: value asked}``.
        record: the record read back from Slurm.
        special: ``{field: predicate(record) -> bool or None}`` for fields that do not read
            back under their own name (e.g. ``hold``); None means "cannot tell".

    Returns:
        ``{"applied": [...], "not_applied": [...], "unverified": [...]}`` (field names, sorted).
        A field is unverified when the record has no field of that name or it is null (e.g.
        ``nice`` in Slurm 22.05's job records). Lists compare as sets; numbers and strings as
        :func:`field_matches` does.
    """
    out = {"applied": [], "not_applied": [], "unverified": []}
    for field, wanted in sorted(fields.items()):
        if special and field in special:
            verdict = special[field](record)
        elif record.get(field) is None:  # no such field (or null, e.g. nice in 22.05's job records)
            verdict = None
        else:
            value = record[field]
            if field == "comment" and isinstance(value, dict):  # some builds nest it (versions._comment)
                value = value.get("job")
            if isinstance(value, dict) and "number" in value and "set" in value:
                value = no_val_number(value)
            if isinstance(wanted, list) or isinstance(value, list):
                wanted_set = {str(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
                have_set = {str(v) for v in (value if isinstance(value, list) else [value]) if v not in (None, "")}
                verdict = wanted_set == have_set
            else:
                verdict = field_matches(value, wanted)
        out["applied" if verdict else "not_applied" if verdict is False else "unverified"].append(field)
    return out


class SlurmOperations:
    """The operations actions' library: one method per operation.

    Args:
        client: a :class:`~slurmdeploy.slurm.client.SlurmClient`.

    Every method raises :class:`~slurmdeploy.errors.SlurmAPIError` when slurmrestd
    fails or refuses (Slurm's error numbers attached),
    :class:`~slurmdeploy.errors.UnsupportedOperation` when the REST version lacks the
    endpoint, :class:`~slurmdeploy.errors.NotFound` for an unknown name or id and
    :class:`~slurmdeploy.errors.BadRequest` for bad arguments.
    """

    def __init__(self, client):
        self.client = client

    @classmethod
    def from_settings(cls, settings):
        """Build from :class:`slurmdeploy.settings.Settings` (``slurm_url`` and credentials)."""
        return cls(SlurmClient.from_settings(settings))

    @property
    def api(self):
        return self.client.api

    # ------------------------------------------------------------------ plumbing
    def call(self, operation, body=None, params=None, allow_statuses=(), **names):
        """Send ``operation`` (a key of ``ENDPOINTS``) with path parameters ``names``.

        Returns:
            ``(status, decoded answer)``.
        """
        return self.client.call(operation, body=body, params=params, allow_statuses=allow_statuses, **names)

    def _post(self, operation, body, **names):
        """POST an update; Slurm's warnings about ignored fields become errors."""
        status, data = self.call(operation, body=body, **names)
        ignored = ignored_fields(data.get("warnings"))
        if ignored or data.get("errors"):
            method, path = self.client.endpoint(operation, **names)
            raise error_from_answer(status, data.get("errors"), warnings=ignored, message="Slurm did not apply the "
                                    "update", method=method, endpoint=path, api_version=self.api.name,
                                    job_id=names.get("job_id"))
        return data

    # ------------------------------------------------------------------- cluster
    def ping(self):
        """``GET /ping``: ``{"api_version", "slurm_release", "pings": [{hostname, ping/pinged, mode...}]}``."""
        data = self.client.ping()
        return {"api_version": self.api.name, "slurm_release": self._release(data), **public(data)}

    def diag(self):
        """``GET /diag``: ``{"api_version", "statistics": {...}}`` (slurmctld's sdiag counters)."""
        data = self.client.diag()
        return {"api_version": self.api.name, **public(data)}

    def licenses(self):
        """``GET /licenses``: ``{"licenses": [{LicenseName, Total, Used, Free...}]}``."""
        _, data = self.call("licenses")
        return {"licenses": data.get("licenses") or []}

    @staticmethod
    def _release(data):
        meta = data.get("meta") or {}
        slurm = meta.get("slurm") or meta.get("Slurm") or {}  # v0.0.38 says "Slurm"
        return slurm.get("release")

    def config(self, item=None):
        """What the REST API exposes of the cluster's configuration (see :data:`CONFIG_NOT_AVAILABLE`).

        Args:
            item: one key of the result to return alone, or None for all.

        Returns:
            ``{"slurm_release", "cluster_name" (None on v0.0.38), "api_version",
            "controllers": pings, "partitions": {name: record}, "not_available": str}``
            or ``{item: value}``. On REST v0.0.45 (Slurm 26.05) ``"slurm_conf"`` (``GET /conf``:
            every slurm.conf item, ``scontrol show config``'s names) replaces
            ``"not_available"``, and ``item`` may name a slurm.conf item (``MinJobAge``).

        Raises:
            BadRequest: ``item`` is not one of those keys.
        """
        ping = self.client.ping()
        meta_slurm = (ping.get("meta") or {}).get("slurm") or {}
        out = {
            "slurm_release": self._release(ping),
            "cluster_name": meta_slurm.get("cluster"),
            "api_version": self.api.name,
            "controllers": ping.get("pings") or [],
            "partitions": {p.get("name"): p for p in self.list_partitions()},
            "not_available": CONFIG_NOT_AVAILABLE,
        }
        if self.api.supports("slurm_conf"):
            # REST v0.0.45 (Slurm 26.05): GET /conf is slurm.conf as `scontrol show config`
            # prints it ({"slurm_conf": {"MinJobAge": 3600, ...}, "slurm_conf_meta": {...}}, seen
            # on 26.05.5); its items are then config items too (config_get item=MinJobAge)
            _, conf = self.call("slurm_conf")
            out["slurm_conf"] = conf.get("slurm_conf") or {}
            out.pop("not_available")
            if item and item not in out and item in out["slurm_conf"]:
                return {item: out["slurm_conf"][item]}
        if item is None or item == "":
            return out
        if item not in out:
            if "slurm_conf" in out:
                raise BadRequest(f"config item {item!r} is neither one of {', '.join(out)} nor a slurm.conf item "
                                 "of this Slurm (names as `scontrol show config` prints them, e.g. MinJobAge)")
            raise BadRequest(f"config item {item!r} is not available through the REST API; items: "
                             f"{', '.join(out)}. {CONFIG_NOT_AVAILABLE}")
        return {item: out[item]}

    # ---------------------------------------------------------------------- jobs
    def list_jobs(self):
        """Every job record slurmctld holds (``GET /jobs``; cost grows with the queue)."""
        return self.client.job_records()

    def get_job(self, job_id):
        """One job record by id.

        Raises:
            NotFound: slurmctld does not know the id (error 2017; 404 on 24.11, 500 on 22.05).
        """
        job_id = self._job_id(job_id)
        record = self.client.job_record(job_id)
        if record is None:
            raise NotFound(f"Slurm job {job_id} not found (finished jobs vanish after MinJobAge)", job_id=job_id,
                           api_version=self.api.name)
        return record

    def find_jobs(self, criteria):
        """Job records whose fields match ``criteria`` (see :func:`field_matches`), oldest first.

        Args:
            criteria: ``{job field: value}``, e.g. ``{"name": "x", "job_state": "PENDING"}``.
        """
        records = match_records(self.list_jobs(), criteria, "job")
        return sorted(records, key=lambda r: no_val_number(r.get("job_id")) or 0)

    def cancel_jobs(self, job_id=None, name=None, signal=None, other_users=False):
        """Cancel (or signal) one job by id, or every unfinished job named ``name``.

        Not limited to the deployer's mcs_label: slurmctld decides (a plain user may
        cancel only its own jobs; a refusal is reported per job). A job of another Slurm
        user than the pack's is left alone (outcome ``refused``, no request sent) unless
        ``other_users`` says the pack's user is an operator: on Slurm 24.11.5 (REST
        v0.0.40-42) a REST cancel that slurmctld refuses for lack of permission leaves
        slurmctld's job lock held, so every later job request hangs until slurmctld is
        restarted (reproduced in the testbed; ``scancel`` of the same job is refused
        cleanly, and job updates are refused cleanly with error 2010).

        Args:
            job_id: Slurm job id; or
            name: job name (every job of that name that has not finished).
            signal: signal name such as ``"SIGTERM"`` (default: Slurm's SIGKILL, i.e. cancel).
            other_users: also cancel jobs of other users (the pack's Slurm user must be a
                Slurm operator or administrator).

        Returns:
            A list of ``{"job_id", "name", "job_state", "outcome"}``; outcome ``cancelled``,
            ``signalled``, ``already_finished``, ``not_found`` or ``refused`` (with ``error``).

        Raises:
            BadRequest: neither or both of ``job_id`` and ``name``.
            NotFound: no job has that id or that name.
        """
        if (job_id is None) == (name in (None, "")):
            raise BadRequest("give either job_id or name (not both, not neither)")
        if job_id is not None:
            records = [self.get_job(job_id)]
        else:
            records = [r for r in self.list_jobs() if r.get("name") == name]
            if not records:
                raise NotFound(f"no Slurm job named {name!r}")
        out = []
        me = self.client.user_name  # the pack's Slurm user (SlurmClient.user_name)
        for record in records:
            job = self.api.parse_job(record)
            item = {"job_id": job.job_id, "name": job.name, "job_state": job.job_state}
            if job.finished:
                item["outcome"] = "already_finished"
            elif not other_users and job.user_name and me and job.user_name != me:
                item.update(outcome="refused", error=(
                    f"Slurm job {job.job_id} belongs to {job.user_name}, not to {me} (the pack's Slurm user); "
                    "set other_users=true if that user is a Slurm operator or administrator (a refused REST "
                    "cancel hangs slurmctld 24.11.5's job requests, so it is not tried)"))
            else:
                try:
                    answer = self.client.cancel_job(job.job_id, signal=signal)
                    item["outcome"] = {CANCEL_NOT_FOUND: "not_found", CANCEL_ALREADY_ENDED: "already_finished"}.get(
                        answer, "signalled" if signal else "cancelled")
                except SlurmAPIError as exc:
                    item.update(outcome="refused", error=str(exc))
            out.append(item)
        return out

    def update_job(self, job_id, fields):
        """Update a job: ``POST /job/{id}`` with ``fields`` (Slurm job field names).

        Args:
            job_id: Slurm job id.
            fields: e.g. ``{"time_limit": 30}`` (minutes), ``{"priority": 100}``,
                ``{"hold": true}``, ``{"nice": 10}``, ``{"comment": "x"}``. Numbers the
                version writes as ``{"set", "number"}`` (time_limit, priority on v0.0.39+)
                are given as plain ints and wrapped here.

        The job is read back afterwards and each field compared (:func:`verify_fields`):
        Slurm's answer alone is not the truth. Slurm 22.05 (REST v0.0.38) answers a plain
        user lowering its own job's priority with HTTP 500 and error 2095 "Changes to job
        priority are not persistent, change nice instead" although it set the priority
        (tests/integration/test_operations.py); such an update is reported as applied, with
        Slurm's errors under ``slurm_errors``.

        Returns:
            ``{"job_id", "updated": fields, "applied": [field...], "unverified": [field...]
            (the record has no such field, e.g. ``nice`` on 22.05), "job": the record read
            back}``, plus ``"slurm_errors"`` when Slurm reported errors although every field
            it could be checked for was applied.

        Raises:
            BadRequest: ``fields`` empty or not a mapping; a job id outside 1..4294967293.
            NotFound: unknown job id.
            SlurmAPIError: Slurm refused and the job read back shows a field not applied (or
                a field that cannot be checked), e.g. 2002 "Access/permission denied" raising
                a priority as a plain user, 2042 updating a held job's priority on 22.05; the
                message says per field what happened. Also when Slurm ignored an unknown
                field (24.11 warns only) or said yes but a field reads back unchanged.
        """
        if not isinstance(fields, dict) or not fields:
            raise BadRequest("give at least one job field to update, e.g. {\"time_limit\": 30}")
        job_id = self._job_id(job_id)
        self.get_job(job_id)  # an unknown id fails as NotFound, the same on every version
        refused = None
        try:
            self._post("job_update", self.api.job_update_body(fields), job_id=job_id)
        except SlurmAPIError as exc:
            if exc.warnings and not exc.errors:
                raise  # 24.11 ignored an unknown field: nothing to read back
            refused = exc
        record = self.get_job(job_id)
        verdict = verify_fields(fields, record, special={"hold": lambda r: self._held(r, fields["hold"])})
        report = "; ".join(f"{what.replace('_', ' ')}: {', '.join(names)}" for what, names in verdict.items() if names)
        if verdict["not_applied"] or (refused is not None and verdict["unverified"]):
            message = f"Slurm job {job_id}: the update was not (fully) applied, read back: {report}"
            if refused is None:
                raise SlurmAPIError(message + " (Slurm reported success)", api_version=self.api.name, job_id=job_id)
            raise error_from_answer(refused.status, refused.errors, warnings=refused.warnings, message=message,
                                    method=refused.method, endpoint=refused.endpoint,
                                    api_version=refused.api_version, job_id=job_id)
        out = {"job_id": job_id, "updated": fields, "applied": verdict["applied"],
               "unverified": verdict["unverified"], "job": record}
        if refused is not None:
            LOG.warning("Slurm job %s: Slurm reported an error but the job read back shows the update applied (%s): %s",
                        job_id, report, refused)
            out["slurm_errors"] = refused.errors
        return out

    @staticmethod
    def _held(record, hold):
        """Whether a job record reads back as held (``hold: true``) or released (``false``)."""
        reason = record.get("state_reason")
        if not isinstance(reason, str):
            return None
        return reason.startswith("JobHeld") == bool(hold)

    def hold_job(self, job_id):
        """Hold a pending job (``hold: true``: priority 0, state_reason JobHeldUser/JobHeldAdmin)."""
        return self.update_job(job_id, {"hold": True})

    def release_job(self, job_id):
        """Release a held job (``hold: false``)."""
        return self.update_job(job_id, {"hold": False})

    @staticmethod
    def _job_id(job_id):
        return valid_job_id(job_id)

    # --------------------------------------------------------------------- nodes
    def list_nodes(self, criteria=None):
        """Node records (``GET /nodes``), filtered by ``criteria`` like :meth:`find_jobs`
        (``{"state": "DRAIN"}`` matches a node with that base state or flag on every version)."""
        _, data = self.call("node_list")
        records = data.get("nodes") or []
        if criteria:
            normal = [dict(r, state=self.api.node_states(r)) for r in records]
            keep = {id(n): r for n, r in zip(normal, records)}
            return [keep[id(n)] for n in match_records(normal, criteria, "node")]
        return records

    def get_node(self, name):
        """One node record by name.

        Raises:
            NotFound: no such node (slurmrestd may answer an unknown name with another node).
        """
        self._name(name, "node name")
        _, data = self.call("node_get", node_name=name)
        for record in data.get("nodes") or []:
            if record.get("name") == name:
                return record
        raise NotFound(f"Slurm node {name!r} not found")

    def node_state(self, record):
        """A node record's state in one version-independent shape.

        Returns:
            ``{"name", "state": "IDLE+DRAIN" (base state, then flags, joined by "+" as
            ``scontrol show node`` prints it), "state_flags": [...], "reason" (None when
            empty), "reason_set_by_user", "reason_changed_at" (epoch s or None)}``.
        """
        states = self.api.node_states(record)
        return {
            "name": record.get("name"),
            "state": "+".join(states),
            "state_flags": states[1:],
            "reason": record.get("reason") or None,
            "reason_set_by_user": record.get("reason_set_by_user") or None,
            "reason_changed_at": no_val_number(record.get("reason_changed_at")) or None,
        }

    def update_node(self, name, fields):
        """Update one node or several: ``POST /node/{name}`` (REST v0.0.39+, Slurm 23.02+).

        Every node named must exist before anything is changed: a hostlist expression
        (``n[1-3]``, ``n1,n2``) is expanded (:func:`expand_node_names`) and each name
        checked against ``GET /nodes`` (one name: ``GET /node/{name}``, whose answer must
        carry that very name: slurmrestd answers an unknown name with other nodes, and a
        single-node cluster whose node is ``localhost`` acts on that node). Afterwards
        each node is read back and the fields other than ``state``/``reason`` compared
        (:func:`verify_fields`; a state may move on by itself, e.g. ReturnToService).

        Args:
            name: a node name or a hostlist expression.
            fields: update_node_msg fields, e.g. ``{"state": ["DRAIN"], "reason": "x"}``,
                ``{"weight": 5}``, ``{"comment": "x"}``, ``{"features": ["a"]}``; a
                string ``state`` is turned into a one-item list.

        Returns:
            ``{"node": name as given, "nodes": [each name], "updated": fields,
            "state": node_state() of the node (one node) or None, "states": {name:
            node_state()}}``.

        Raises:
            UnsupportedOperation: REST v0.0.38 (Slurm 22.05) has no node update.
            BadRequest: no fields, a bad hostlist, or an empty ``features`` /
                ``features_act`` / ``gres`` (24.11.5 answers ``{"features": []}`` with 200 and
                changes nothing, tests/integration/test_operations.py).
            NotFound: a node named is unknown (all unknown names listed; nothing changed).
            SlurmAPIError: Slurm refused, e.g. 2010 "Invalid user id" for a user that is
                not an operator, 2028 "Invalid node state specified", 2031 "Active features
                not subset of available features"; or a field other than state/reason reads
                back unchanged.
        """
        self.api.require("node_update")
        if not isinstance(fields, dict) or not fields:
            raise BadRequest("give at least one node field to update, e.g. {\"state\": \"DRAIN\", \"reason\": \"x\"}")
        for field in ("features", "features_act", "gres"):
            if field in fields and fields[field] in ([], "", None):
                raise BadRequest(f"an empty {field} is ignored by slurmrestd (Slurm 24.11.5 answers 200 and changes "
                                 f"nothing), so it is refused: give the {field} the node(s) should have (to remove "
                                 "some, give the rest; the REST API cannot clear them all: use scontrol update on a "
                                 "host of the cluster)")
        body = dict(fields)
        if isinstance(body.get("state"), str):
            body["state"] = [body["state"].upper()]
        names = expand_node_names(name)
        if len(names) == 1:
            records = {names[0]: self.get_node(names[0])}
        else:
            records = {r.get("name"): r for r in self.list_nodes()}
            unknown = [n for n in names if n not in records]
            if unknown:
                raise NotFound(f"Slurm node(s) {', '.join(unknown)} of {name!r} not found; nothing was changed "
                               f"(nodes: {hostlist.collect_hostlist(sorted(records)) or 'none'})")
        target = names[0] if len(names) == 1 else hostlist.collect_hostlist(names)
        LOG.info("updating Slurm node(s) %s (%d): %s", target, len(names), ", ".join(sorted(fields)))
        self._post("node_update", body, node_name=target)
        if len(names) == 1:
            after = {names[0]: self.get_node(names[0])}
        else:
            after = {r.get("name"): r for r in self.list_nodes() if r.get("name") in set(names)}
        checked = {k: v for k, v in fields.items() if k not in ("state", "reason")}
        failed = {}
        for node, record in after.items():
            verdict = verify_fields(checked, record)
            if verdict["not_applied"]:
                failed[node] = verdict["not_applied"]
        if failed:
            detail = "; ".join(f"{node}: {', '.join(f)}" for node, f in sorted(failed.items()))
            raise SlurmAPIError(f"Slurm accepted the update of node(s) {target} but these fields read back "
                                f"unchanged: {detail}", api_version=self.api.name)
        states = {n: self.node_state(after[n]) for n in names}
        return {"node": name, "nodes": names, "updated": fields,
                "state": states[names[0]] if len(names) == 1 else None, "states": states}

    def drain_node(self, name, reason):
        """Drain a node: no new jobs, running ones finish (``state DRAIN`` with a reason)."""
        return self.update_node(name, {"state": [NODE_STATE_DRAIN], "reason": self._reason(reason)})

    def down_node(self, name, reason):
        """Set a node DOWN with a reason (its running jobs are killed by slurmctld)."""
        return self.update_node(name, {"state": [NODE_STATE_DOWN], "reason": self._reason(reason)})

    def resume_node(self, name):
        """Resume a DRAIN/DOWN node (``state RESUME``); slurmctld returns it to service."""
        return self.update_node(name, {"state": [NODE_STATE_RESUME]})

    @staticmethod
    def _reason(reason):
        if not isinstance(reason, str) or not reason.strip():
            raise BadRequest("a reason is required (Slurm keeps it with the node; sinfo -R shows it)")
        return reason

    @staticmethod
    def _name(name, what):
        if not isinstance(name, str) or not name.strip():
            raise BadRequest(f"{what} must be a non-empty string, got {name!r}")
        return name

    # --------------------------------------------------- partitions, reservations
    def list_partitions(self):
        """Partition records (``GET /partitions``)."""
        _, data = self.call("partition_list")
        return data.get("partitions") or []

    def get_partition(self, name):
        """One partition record by name. Raises NotFound, naming the partitions there are;
        BadRequest for an empty name, before any request."""
        name = self._name(name, "partition name")
        return self._by_name(self.list_partitions(), name, "partition")

    def list_reservations(self):
        """Reservation records (``GET /reservations``; none: an empty list on every version)."""
        _, data = self.call("reservation_list")
        return data.get("reservations") or []

    def get_reservation(self, name):
        """One reservation record by name. Raises NotFound, naming the reservations there are;
        BadRequest for an empty name, before any request."""
        name = self._name(name, "reservation name")
        return self._by_name(self.list_reservations(), name, "reservation")

    # Reservation writes (REST v0.0.43+). POST /reservation creates a reservation when no
    # reservation of that name exists (case-insensitively) and updates it otherwise
    # (reservations.c _create_or_update_each_resv): create and update read the reservations
    # first, so a create never changes an existing reservation and an update never creates
    # one. Between that read and the POST another client may create the same name: the
    # window is one request long and the POST then updates that reservation.
    def create_reservation(self, name, nodes=None, node_count=None, start_time=None, end_time=None,
                           duration=None, users=None, accounts=None, flags=None, fields=None):
        """Create a reservation: ``POST /reservation`` (REST v0.0.43+, Slurm 25.05+).

        Args: as :func:`slurmdeploy.slurm.reservations.reservation_fields` (``fields``: other
        reservation_desc_msg fields such as ``partition``, ``features``, ``comment``).

        Returns:
            ``{"reservation": name, "created": True, "record": the record read back}``.

        Raises:
            UnsupportedOperation: REST v0.0.38-v0.0.42 (before any request).
            BadRequest: invalid fields (end not after start, neither nodes nor node_count...),
                an existing reservation of that name, or unknown node names.
            SlurmAPIError: slurmctld refused (unknown user or account, overlap with another
                reservation, busy nodes...), with its error; nothing was created (checked).
        """
        self.api.require("reservation_create")
        body = reservation_fields(name, nodes=nodes, node_count=node_count, start_time=start_time,
                                  end_time=end_time, duration=duration, users=users, accounts=accounts,
                                  flags=flags, extra=fields)
        existing = self._reservation_named(name, self.list_reservations())
        if existing is not None:
            raise BadRequest(f"Slurm reservation {existing.get('name')!r} already exists (names are compared "
                             "case-insensitively): choose another name, or change it with reservation_update")
        if "node_list" in body and not any("[" in n for n in body["node_list"]):
            # checked here: a single-node cluster whose node is "localhost" reads any unknown
            # name as that node (26.05.5 then answers 2058 "overlaps with another reservation")
            known = {r.get("name") for r in self.list_nodes()}
            unknown = [n for n in body["node_list"] if n not in known]
            if unknown:
                raise BadRequest(f"unknown node(s) {', '.join(unknown)}: Slurm has {', '.join(sorted(known))}")
        self._write_reservation("reservation_create", body, name, "create")
        return {"reservation": name, "created": True, "record": self.get_reservation(name)}

    def update_reservation(self, name, nodes=None, node_count=None, start_time=None, end_time=None,
                           duration=None, users=None, accounts=None, flags=None, fields=None):
        """Change an existing reservation: ``POST /reservation`` with its name (REST v0.0.43+).

        Only the given fields change. ``flags`` adds flags; ``NO_<flag>`` removes one
        (Slurm's rule, ``RESERVATION_DESC_MSG``). Args as :meth:`create_reservation`.

        Returns:
            ``{"reservation": name, "updated": the fields sent, "record": the record read back}``.

        Raises:
            UnsupportedOperation: REST v0.0.38-v0.0.42 (before any request).
            NotFound: no such reservation (POST would create one, so it is never sent).
            BadRequest: an empty name (before any request).
            BadRequest: nothing to change, or the result would end before it starts.
            SlurmAPIError: slurmctld refused; the reservation is unchanged.
        """
        self._name(name, "reservation name")  # an empty name is refused first, whatever the version
        self.api.require("reservation_update")
        current = self.get_reservation(check_name(name))
        body = reservation_fields(current["name"], nodes=nodes, node_count=node_count, start_time=start_time,
                                  end_time=end_time, duration=duration, users=users, accounts=accounts,
                                  flags=flags, extra=fields, current=current)
        self._write_reservation("reservation_update", body, current["name"], "update")
        return {"reservation": current["name"], "updated": {k: v for k, v in body.items() if k != "name"},
                "record": self.get_reservation(current["name"])}

    def delete_reservation(self, name):
        """Delete a reservation: ``DELETE /reservation/{name}`` (REST v0.0.43+).

        Returns:
            ``{"reservation": name, "deleted": True}`` once it is gone from the listing.

        Raises:
            UnsupportedOperation: REST v0.0.38-v0.0.42 (before any request).
            NotFound: no such reservation (naming those there are).
            BadRequest: an empty name (before any request).
            SlurmAPIError: slurmctld refused (e.g. jobs still running in it).
        """
        self._name(name, "reservation name")  # an empty name is refused first, whatever the version
        self.api.require("reservation_delete")
        current = self.get_reservation(check_name(name))
        status, data = self.call("reservation_delete", allow_statuses=range(400, 600),
                                 reservation_name=current["name"])
        if not 200 <= status < 300 or data.get("errors"):
            method, path = self.client.endpoint("reservation_delete", reservation_name=current["name"])
            raise error_from_answer(status, data.get("errors"), method=method, endpoint=path,
                                    api_version=self.api.name, message=f"Slurm did not delete reservation "
                                    f"{current['name']!r}{_slurm_says(data)}")
        if self._reservation_named(current["name"], self.list_reservations()) is not None:
            raise SlurmAPIError(f"Slurm answered the delete of reservation {current['name']!r} but still lists it",
                                status=status, api_version=self.api.name)
        return {"reservation": current["name"], "deleted": True}

    def _write_reservation(self, operation, body, name, verb):
        """POST a reservation_desc_msg; raise SlurmAPIError when Slurm refused or ignored a
        field, after making sure a refused create left nothing behind."""
        method, path = self.api.require(operation)
        status, data = self.call(operation, body=self.api.reservation_body(body), allow_statuses=range(400, 600))
        ignored = ignored_fields(data.get("warnings"))
        if 200 <= status < 300 and not data.get("errors") and not ignored:
            return data
        outcome = "nothing was changed" if verb == "update" else "nothing was created"
        if verb == "create" and self._reservation_named(name, self.list_reservations()) is not None:
            # a field Slurm ignored (only warned about) does not stop the create: undo it
            self.call("reservation_delete", allow_statuses=range(400, 600), reservation_name=name)
            outcome = "the reservation Slurm created anyway was deleted again"
        raise error_from_answer(status, data.get("errors"), warnings=ignored, method=method, endpoint=path,
                                api_version=self.api.name,
                                message=f"Slurm did not {verb} reservation {name!r}{_slurm_says(data)}; {outcome}")

    @staticmethod
    def _reservation_named(name, records):
        """The record whose name equals ``name`` ignoring case (slurmrestd's own comparison,
        ``xstrcasecmp`` in reservations.c), or None."""
        for record in records:
            if str(record.get("name", "")).lower() == str(name).lower():
                return record
        return None

    @staticmethod
    def _by_name(records, name, kind):
        for record in records:
            if record.get("name") == name:
                return record
        names = ", ".join(sorted(str(r.get("name")) for r in records)) or "none"
        raise NotFound(f"Slurm {kind} {name!r} not found ({kind}s: {names})")


def _slurm_says(data):
    """`` (Slurm: <error>; <error>)`` from an answer's errors' ``error`` texts (slurmrestd puts
    the generic "Error creating reservation X" in ``description`` and the reason, e.g.
    "Requested nodes are busy", in ``error``), or ``""``."""
    texts = []
    for err in data.get("errors") or []:
        text = err.get("error") or err.get("description")
        if err.get("error_number") == -1 and "reservation" in str(err.get("description", "")):
            # 26.05.5 answers a reservation for a user unknown to slurmctld's host with HTTP 500,
            # error -1 "Unspecified error" and nothing else (tests/integration/test_slurm_2605.py)
            text = "no reason given (error -1); Slurm answers so when a user in users is unknown to the controller"
        if text and text not in texts:
            texts.append(str(text))
    return f" (Slurm: {'; '.join(texts)})" if texts else ""
