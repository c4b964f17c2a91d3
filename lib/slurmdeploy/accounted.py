"""The ``job_accounted`` trigger: one report per deployer job once its accounting record is complete.

The Jobbergate agent reports each job's final state and resource use back to its service; this
is the pack's equivalent. The deployment sensor notes every ``job_state_changed`` event whose
status is terminal (FINISHED, CANCELLED, FAILED: the job is one of the deployer's own, proven by
:func:`slurmdeploy.decisions.belongs` before the event exists), then asks slurmdbd for the job's
record (``GET /slurmdb/<v>/job/{job_id}``, :class:`slurmdeploy.slurm.accounting.Accounting`) until
it is complete, and dispatches ``job_accounted`` once.

The decision is a pure function (:func:`accounted_decision`, tested row by row in
``tests/unit/test_accounted.py``); :class:`AccountedJobs` is the small I/O shell the sensor calls.

Why wait: slurmctld sends job and step records to slurmdbd asynchronously (``AccountingStorage``
agent queue), so right after a job ends its accounting record may be missing, still RUNNING, or
lack the end of its batch step. Complete means: the record's job_state is terminal, its end time
is set, and every step has ended. A record still incomplete :data:`MAX_WAIT` seconds after the
job was noted is reported anyway with ``complete: false`` (an event is never lost for it).
"""

import json
import logging
import time

from slurmdeploy import states
from slurmdeploy.decisions import JOB_STATE_CHANGED, Event
from slurmdeploy.errors import NotFound, SlurmDeployError
from slurmdeploy.slurm.accounting import TERMINAL_JOB_STATES

LOG = logging.getLogger(__name__)

TRIGGER = "job_accounted"
#: seconds after which an incomplete record is reported anyway (``complete: false``)
MAX_WAIT = 600
#: seconds between two accounting checks of the pending jobs
CHECK_INTERVAL = 10
#: job ids remembered as already reported (against a late duplicate job_state_changed)
REMEMBERED = 1000
#: the sensor datastore key holding pending and reported job ids (JSON), so a restart keeps them
DATASTORE_KEY = "accounted_jobs"

WAIT, EMIT, DROP = "wait", "emit", "drop"


def record_complete(record):
    """True when an accounting record (:func:`slurmdeploy.slurm.accounting.parse_job`) will not
    change any more: terminal job_state, end time set, every step ended (terminal state and end
    time). A job cancelled before it started has no steps and is complete."""
    if record["job_state"] not in TERMINAL_JOB_STATES or not record.get("end_time"):
        return False
    for step in record.get("steps") or []:
        if step["job_state"] not in TERMINAL_JOB_STATES or not step.get("end_time"):
            return False
    return True


def accounted_payload(key, record, complete):
    """The ``job_accounted`` payload (schema in ``sensors/deployment_sensor.yaml``).

    Returns:
        ``{"key", "job_id", "job_name", "user_name", "account", "partition", "cluster",
        "job_state", "state_reason", "exit_code", "exit_signal", "submit_time",
        "start_time", "end_time" (epoch s or None), "elapsed" (s), "cpu_time" (s),
        "max_rss" (bytes), "energy" (J), "tres_requested", "tres_allocated" (TRES name ->
        count, memory in MB), "steps" (count), "complete"}``. No secret is in a record.
    """
    return {
        "key": key,
        "job_id": record["job_id"],
        "job_name": record["name"],
        "user_name": record["user_name"],
        "account": record["account"],
        "partition": record["partition"],
        "cluster": record["cluster"],
        "job_state": record["job_state"],
        "state_reason": record["state_reason"],
        "exit_code": record["exit_code"],
        "exit_signal": record["exit_signal"],
        "submit_time": record["submit_time"],
        "start_time": record["start_time"],
        "end_time": record["end_time"],
        "elapsed": record["elapsed"],
        "cpu_time": record["cpu_time"],
        "max_rss": record["max_rss"],
        "energy": record["energy"],
        "tres_requested": record["tres_requested"],
        "tres_allocated": record["tres_allocated"],
        "steps": len(record.get("steps") or []),
        "complete": bool(complete),
    }


def accounted_decision(key, job_id, record, noted_at, now, slurm_user, max_wait=MAX_WAIT):
    """What to do about one pending job.

    Args:
        key: the deployment key whose terminal job_state_changed noted the job.
        job_id: its Slurm job id.
        record: its accounting record, or None when slurmdbd has none yet.
        noted_at, now: epoch seconds (when the job was noted; the current time).
        slurm_user: the pack's Slurm user (the job must be its: the same proof as
            :func:`slurmdeploy.decisions.own_job`).
        max_wait: seconds after which an incomplete record is reported anyway.

    Returns:
        ``(WAIT, None)``, ``(EMIT, payload)`` or ``(DROP, reason)`` - DROP for a record of
        another user (never reported) or no record at all after ``max_wait``.
    """
    late = now - noted_at >= max_wait
    if record is None:
        return (DROP, f"slurmdbd has no accounting record of Slurm job {job_id} of deployment {key!r} after "
                      f"{max_wait} s") if late else (WAIT, None)
    if not slurm_user or record["user_name"] != slurm_user:
        return DROP, (f"the accounting record of Slurm job {job_id} (deployment {key!r}) is user "
                      f"{record['user_name']!r}'s, not the pack's Slurm user {slurm_user!r}: not reported")
    complete = record_complete(record)
    if complete or late:
        return EMIT, accounted_payload(key, record, complete)
    return WAIT, None


def terminal_job(event):
    """``(key, job_id, trace_tag)`` of a ``job_state_changed`` event whose status is terminal and
    names a job, else None."""
    payload = event.payload
    if event.trigger != JOB_STATE_CHANGED or payload.get("status") not in states.TERMINAL_STATUSES:
        return None
    if payload.get("job_id") is None or payload.get("state_reason") == states.VANISHED_REASON:
        return None
    return payload["key"], int(payload["job_id"]), event.trace_tag


class AccountedJobs:
    """The sensor's hook: :meth:`note` the events it dispatched, :meth:`check` for the
    ``job_accounted`` events to dispatch.

    Args:
        accounting: a :class:`slurmdeploy.slurm.accounting.Accounting`.
        slurm_user: the pack's Slurm user.
        load, save: callables reading and writing the persisted state (a JSON string or None),
            e.g. the sensor datastore's ``get_value``/``set_value`` of :data:`DATASTORE_KEY`.
        clock: epoch seconds.
    """

    def __init__(self, accounting, slurm_user, load=None, save=None, clock=time.time, check_interval=CHECK_INTERVAL,
                 max_wait=MAX_WAIT):
        self.accounting = accounting
        self.slurm_user = slurm_user
        self._save = save
        self.clock = clock
        self.check_interval = check_interval
        self.max_wait = max_wait
        self._last_check = 0.0
        self.pending = {}  # job_id -> {"key", "noted_at", "trace_tag"}
        self.reported = []  # job ids already reported, oldest first
        raw = load() if load else None
        if raw:
            try:
                data = json.loads(raw)
                self.pending = {int(k): v for k, v in (data.get("pending") or {}).items()}
                self.reported = [int(j) for j in data.get("reported") or []]
            except (ValueError, TypeError, AttributeError):
                LOG.warning("ignoring unreadable %s in the sensor datastore", DATASTORE_KEY)

    def _persist(self):
        if self._save:
            self._save(json.dumps({"pending": {str(k): v for k, v in self.pending.items()},
                                   "reported": self.reported[-REMEMBERED:]}))

    def note(self, events):
        """Remember the jobs of the terminal ``job_state_changed`` events among ``events``."""
        changed = False
        for event in events:
            found = terminal_job(event)
            if found is None:
                continue
            key, job_id, tag = found
            if job_id in self.pending or job_id in self.reported:
                continue
            self.pending[job_id] = {"key": key, "noted_at": self.clock(), "trace_tag": tag}
            LOG.info("deployment %r: Slurm job %s ended; waiting for its accounting record", key, job_id)
            changed = True
        if changed:
            self._persist()

    def check(self, force=False):
        """Ask slurmdbd about the pending jobs (at most every ``check_interval`` seconds).

        Returns:
            A list of :class:`slurmdeploy.decisions.Event` (``job_accounted``) to dispatch.
            Failures (slurmdbd down) are logged; the jobs stay pending.
        """
        now = self.clock()
        if not self.pending or (not force and now - self._last_check < self.check_interval):
            return []
        self._last_check = now
        events, changed = [], False
        for job_id, entry in sorted(self.pending.items()):
            try:
                record = self.accounting.job(job_id)
            except NotFound:
                record = None
            except (SlurmDeployError, ValueError, KeyError, TypeError) as exc:
                # never let the sensor's step fail here (its own events of the step go out first
                # in the same dispatch): slurmdbd down, or a record this library cannot read
                LOG.warning("accounting record of Slurm job %s (deployment %r) not readable now: %s: %s", job_id,
                            entry["key"], type(exc).__name__, exc)
                break
            verdict, value = accounted_decision(entry["key"], job_id, record, entry["noted_at"], now,
                                                self.slurm_user, self.max_wait)
            if verdict == WAIT:
                continue
            changed = True
            del self.pending[job_id]
            self.reported.append(job_id)
            if verdict == DROP:
                LOG.warning("%s", value)
            else:
                LOG.info("deployment %r: Slurm job %s accounted (%s, complete: %s)", entry["key"], job_id,
                         value["job_state"], value["complete"])
                events.append(Event(TRIGGER, value, entry.get("trace_tag")))
        if changed:
            self.reported = self.reported[-REMEMBERED:]
            self._persist()
        return events


def sensor_hook(deployer, sensor_service):
    """The :class:`AccountedJobs` of the deployment sensor, or None when ``accounted_trigger`` is
    off. Its state lives in the sensor's local datastore key :data:`DATASTORE_KEY` (JSON: the real
    datastore stores strings), so a restarted sensor still reports the jobs it had noted."""
    if not deployer.settings.accounted_trigger:
        return None
    from slurmdeploy.slurm.accounting import Accounting

    return AccountedJobs(Accounting(deployer.slurm), deployer.slurm_user,
                         load=lambda: sensor_service.get_value(DATASTORE_KEY),
                         save=lambda value: sensor_service.set_value(DATASTORE_KEY, value))


def deployment_usage(configdb, accounting, slurm_user, key, start_time="now-30d", end_time=None):
    """The accounting records of a deployment's own jobs: what each deployment cost.

    Which jobs: the job the deployment's state records (``/deploy/<key>/state``), and the jobs
    named ``sdp-<key>`` of the pack's Slurm user found in accounting over ``start_time`` ..
    ``end_time`` (earlier incarnations, or all of them once the deployment is deleted). Each must
    pass the pack's ownership proof (:func:`slurmdeploy.decisions.own_job`: the pack's Slurm
    user) and carry the name ``sdp-<key>``; when slurmdbd stores job comments
    (``AccountingStoreFlags=job_comment``) a comment must be this key's marker
    (``sdp-deployment:<key>@<revision>``). Another user's lookalike is never returned.

    Returns:
        ``{"key", "deployment_exists", "status" (SDP status or UNSET), "job_id" (recorded, or
        None), "current" (the recorded job's record or None), "jobs" (records, newest first),
        "refused" ([{"job_id", "reason"}]: the recorded job failed the proof), "totals":
        {"jobs", "elapsed", "cpu_time", "tres_seconds"}}``.

    Raises:
        BadRequest: a key ska-sdp-config would reject, or a bad window.
        NotFound: neither a deployment nor any job of it in accounting.
        AccountingUnavailable: slurmdbd cannot be read.
    """
    from slurmdeploy.configdb import KEY_PATTERN
    from slurmdeploy.errors import BadRequest
    from slurmdeploy.jobs import job_name, parse_marker

    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise BadRequest(f"deployment key {key!r} does not match {KEY_PATTERN.pattern} (ska-sdp-config's rule)")
    dep, state, _, _ = configdb.read_deployment(key)
    name = job_name(key)
    refused = []

    def proof(record):
        if not slurm_user or record["user_name"] != slurm_user:
            return f"user {record['user_name']!r}, not the pack's Slurm user {slurm_user!r}"
        if record["name"] != name:
            return f"job name {record['name']!r}, not {name!r}"
        marker = parse_marker(record.get("comment"))
        if record.get("comment") and (marker is None or marker[0] != key):
            return f"comment {record['comment']!r} is not a marker of deployment {key!r}"
        return None

    current = None
    if state.job_id:
        try:
            record = accounting.job(state.job_id)
        except NotFound:
            record = None
        if record is not None:
            reason = proof(record)
            if reason:
                refused.append({"job_id": state.job_id, "reason": reason})
                LOG.warning("deployment %r: Slurm job %s in accounting is not the deployer's (%s): not reported",
                            key, state.job_id, reason)
            else:
                current = record
    found = {}
    users = [slurm_user] if slurm_user else None
    for record, _ in accounting.iter_jobs(start_time, end_time, users=users, job_names=[name], steps=True):
        if proof(record) is None:
            found[record["job_id"]] = record
    if current is not None:
        found[current["job_id"]] = current
    jobs = sorted(found.values(), key=lambda r: (r["submit_time"] or 0, r["job_id"]), reverse=True)
    if dep is None and not jobs:
        raise NotFound(f"deployment {key!r} does not exist and accounting has no job {name!r} of the pack's Slurm "
                       f"user {slurm_user!r} in the window; widen start_time")
    totals = {"jobs": len(jobs), "elapsed": sum(r["elapsed"] for r in jobs),
              "cpu_time": round(sum(r["cpu_time"] or 0 for r in jobs), 6), "tres_seconds": {}}
    for record in jobs:
        for tres, count in record["tres_allocated"].items():
            totals["tres_seconds"][tres] = totals["tres_seconds"].get(tres, 0) + count * record["elapsed"]
    return {"key": key, "deployment_exists": dep is not None, "status": state.status, "job_id": state.job_id,
            "current": current, "jobs": jobs, "refused": refused, "totals": totals}
