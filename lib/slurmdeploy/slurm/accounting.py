"""Job accounting through slurmrestd's slurmdbd API (``/slurmdb/<version>/...``).

What ``sacct`` shows, as plain dicts with Slurm's names: finished and running jobs with their
steps, exit codes, elapsed time and TRES requested, allocated and used
(:meth:`Accounting.iter_jobs`, :meth:`Accounting.job_history`, :meth:`Accounting.job_steps`),
usage per account and user over a period in TRES-minutes (:meth:`Accounting.usage_report`),
and the accounting record of a deployment's own job (:func:`deployment_records`).

Where each fact comes from (Slurm source at the tags of the testbed's releases; the REST
answers were also recorded from the testbed, ``tests/fixtures/slurm/``):

- **Endpoints** (the ``db_*`` rows of :data:`slurmdeploy.slurm.endpoints.ENDPOINTS`): ``GET /slurmdb/<v>/jobs`` (query = ``sacct``'s options)
  and ``GET /slurmdb/<v>/job/{job_id}`` (one job, all its steps), served by
  ``openapi/dbv0.0.38`` on 22.05 (``src/plugins/openapi/dbv0.0.38/jobs.c``) and
  ``openapi/slurmdbd`` on 23.11+ (``src/slurmrestd/plugins/openapi/slurmdbd/jobs.c``) under
  the same version names as slurmctld's API. slurmdbd has no ``limit``/``offset``: the time
  window is the only way to bound an answer, so :meth:`Accounting.iter_jobs` splits it into
  chunks (see there).
- **Which jobs a window returns** (``as_mysql_jobacct_process.c``, ``setup_job_cond_limits``):
  a window ``[start, end]`` returns the jobs eligible before ``end`` that had not ended before
  ``start`` (``time_eligible < end && (time_end >= start || time_end = 0)``): a job running
  across chunks is returned by each, and is emitted here only by the chunk holding
  ``max(eligible, start)``. With a ``state`` filter the meaning is sacct's ``-s``: a job that
  *ended in* the window in that state (RUNNING/PENDING: was in that state in the window).
- **Query differences**: 22.05's v0.0.38 has no ``users`` filter ("Unknown Query field", the
  job condition list in ``dbv0.0.38/jobs.c``): users are filtered here after reading. Flags are
  boolean query keys of their own (``skip_steps=true``; v0.0.40+ answer ``flags=skip_steps``
  with HTTP 200, the steps, and the warning 'Ignoring unknown field "flags"'), and on v0.0.40+
  any flag *replaces* the default flags ``DUP|NO_TRUNC`` (``op_handler_jobs``: ``if
  (!job_cond->flags)``): ``skip_steps=true`` alone returns start and end truncated to the window
  (24.11.5, recorded), so this module always sends ``disable_truncate_usage_time=true`` with it:
  truncated times would make the usage of a job spanning chunks wrong.
- **Record shapes** (``parsers.c`` ``PARSER_ARRAY(JOB)``/``(STEP)``, ``dbv0.0.38/parse.c``):
  ``state.current`` a string (v0.0.38) or a list (v0.0.40+); ``exit_code`` ``{"status",
  "return_code", "signal"}`` with plain ints (v0.0.38) or ``{"set", "infinite", "number"}``
  (v0.0.40+); step ids ``"batch"``/``0`` (v0.0.38) or ``"<job>.batch"`` (v0.0.40+); TRES lists
  ``[{"type", "name", "id", "count"}]`` in every version (memory in MB; a step's usage in
  bytes). A step's ``tres.requested.max`` is sacct's ``TRESUsageInMax`` (``mem`` = MaxRSS),
  ``tres.consumed`` its ``TRESUsageOut*``.

Nothing here returns or logs a token.
"""

import base64
import csv
import io
import json
import logging
import re
import time
from datetime import datetime, timezone

from slurmdeploy.errors import BadRequest, NotFound, SlurmAPIError, error_from_answer, slurm_error_numbers
from slurmdeploy.slurm.versions import no_val_number

LOG = logging.getLogger(__name__)

#: this module's operations: keys of the one endpoint table
#: (:data:`slurmdeploy.slurm.endpoints.ENDPOINTS`, ``db_*``: ``/slurmdb/<version>/...``)
OPERATIONS = ("db_job_list", "db_job_get", "db_account_get", "db_user_get", "db_cluster_get")

#: seconds: the first chunk of a time window (:meth:`Accounting.iter_jobs`), then adapted
DEFAULT_CHUNK = 6 * 3600
#: seconds: chunks never get shorter or longer than these
MIN_CHUNK, MAX_CHUNK = 60, 31 * 86400
#: records per chunk above which the next chunk is halved (and below a quarter of which it is doubled)
CHUNK_RECORDS = 2000
#: records :meth:`Accounting.job_history` returns at most per call unless told otherwise
DEFAULT_LIMIT = 1000
#: the longest window accepted (seconds): ten years; a longer one is almost surely a typo
MAX_WINDOW = 10 * 366 * 86400
#: Slurm's NO_VAL64 (slurm.h): "not set" in a uint64 (e.g. energy without an energy plugin)
NO_VAL64 = 0xFFFFFFFFFFFFFFFE
#: job states as ``sacct -s`` takes them (job_state_codes in slurm.h; no flags)
JOB_STATES = ("PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
              "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REQUEUED")
#: job states after which a job's accounting record changes no more (slurm.h base states)
TERMINAL_JOB_STATES = frozenset(JOB_STATES) - {"PENDING", "RUNNING", "SUSPENDED", "REQUEUED"}

_RELATIVE = re.compile(r"^now(?:\s*-\s*(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?|d|days?|w|weeks?))?$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


#: REST versions whose job query refuses epoch numbers as times (:meth:`Accounting._query_time`)
EPOCH_REFUSED = frozenset({"v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41"})
#: slurmdbd connection failures as slurmrestd reports them (slurm_errno.h ESLURM_DB_CONNECTION,
#: ESLURM_DB_CONNECTION_INVALID). With slurmdbd stopped, 22.05.8 answers ``GET /slurmdb/v0.0.38/jobs``
#: with **HTTP 200**, an empty ``jobs`` list and error 7000 "Failed connecting to slurmdbd" (the
#: account query with HTTP 500 and 7000): a client that reads only the status sees "no jobs".
DBD_DOWN_ERRORS = frozenset({7000, 7001})
#: "Nothing found with query" (ESLURM_REST_EMPTY_RESULT): 22.05.8 answers an unknown account, user,
#: cluster (HTTP 500) or job id (HTTP 200) of the slurmdbd API with it
NOTHING_FOUND = 9003


class AccountingUnavailable(SlurmAPIError):
    """slurmrestd answered, but the accounting data could not be read: slurmdbd is down or
    unreachable from slurmrestd (slurmctld may be fine), or slurmrestd does not load the
    slurmdbd plugin. The message says which and what to do."""


# ------------------------------------------------------------------ time windows
def parse_time(value, now, what):
    """Read a time as epoch seconds (int).

    Args:
        value: an int/float (epoch seconds), a digit string, ``"now"``, ``"now-<N><unit>"``
            (units s, m, h, d, w: ``now-7d``, ``now-30days``) or ISO 8601
            (``2026-12-01``, ``2026-12-01T10:00:00``; UTC unless it carries an offset).
        now: the current epoch time (int).
        what: the parameter's name, for the message.

    Raises:
        BadRequest: the value is none of these.
    """
    if isinstance(value, bool):
        raise BadRequest(f"{what}: expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    match = _RELATIVE.match(text.lower())
    if match:
        if not match.group(1):
            return int(now)
        return int(now) - int(match.group(1)) * _UNIT[match.group(2)[0]]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{what}: cannot read {value!r} as a time; use epoch seconds, ISO 8601 "
                         "(2026-12-01 or 2026-12-01T10:00:00, UTC unless an offset is given), 'now' or "
                         "'now-7d'") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def time_window(start, end, now):
    """Check a time window and return it as ``(start, end)`` epoch seconds.

    Args:
        start: required (an unbounded window would read the whole accounting database).
        end: None means ``now``.
        now: the current epoch time.

    Raises:
        BadRequest: start missing, start not before end, or longer than :data:`MAX_WINDOW`.
    """
    if start is None or start == "":
        raise BadRequest("start_time is required: an unbounded time window would read every accounting record "
                         "at once; give e.g. start_time=now-7d (and end_time, default now)")
    begin = parse_time(start, now, "start_time")
    finish = int(now) if end is None or end == "" else parse_time(end, now, "end_time")
    if begin >= finish:
        raise BadRequest(f"the time window is empty or reversed: start_time {_iso(begin)} is not before "
                         f"end_time {_iso(finish)}; swap them or widen the window")
    if finish - begin > MAX_WINDOW:
        raise BadRequest(f"the time window {_iso(begin)} .. {_iso(finish)} is longer than ten years; narrow it")
    return begin, finish


#: named periods of :func:`named_period` (UTC calendar)
PERIODS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year", "last_year")


def named_period(name, now):
    """A calendar period (UTC) as ``(start, end)`` epoch seconds, end exclusive: ``last_month`` on
    2026-12-04 is 2026-11-01T00:00Z .. 2026-12-01T00:00Z. Weeks start on Monday. For rules on
    ``core.st2.CronTimer`` (e.g. the 1st of each month: ``period: last_month``).

    Raises:
        BadRequest: an unknown name (the message lists :data:`PERIODS`).
    """
    day = datetime.fromtimestamp(int(now), timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if name in ("today", "yesterday"):
        start = day if name == "today" else day.fromtimestamp(day.timestamp() - 86400, timezone.utc)
        return int(start.timestamp()), int(start.timestamp()) + 86400
    if name in ("this_week", "last_week"):
        monday = int(day.timestamp()) - day.weekday() * 86400
        start = monday if name == "this_week" else monday - 7 * 86400
        return start, start + 7 * 86400
    if name in ("this_month", "last_month"):
        first = day.replace(day=1)
        if name == "last_month":
            first = (first.replace(year=first.year - 1, month=12) if first.month == 1
                     else first.replace(month=first.month - 1))
        following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                     else first.replace(month=first.month + 1))
        return int(first.timestamp()), int(following.timestamp())
    if name in ("this_year", "last_year"):
        first = day.replace(month=1, day=1)
        if name == "last_year":
            first = first.replace(year=first.year - 1)
        return int(first.timestamp()), int(first.replace(year=first.year + 1).timestamp())
    raise BadRequest(f"unknown period {name!r}; use one of {', '.join(PERIODS)} or start_time and end_time")


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(value, what):
    """A filter given as a list or a comma-separated string -> a list of non-empty names."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        raise BadRequest(f"{what}: expected a name or a list of names, got {type(value).__name__}")
    bad = [v for v in items if not v or "," in v]
    if bad:
        raise BadRequest(f"{what}: empty name in {value!r}")
    return items


# ------------------------------------------------------------------ record parsing
def tres_dict(tres_list):
    """A TRES list (``[{"type": "cpu", "name": "", "count": 2}, {"type": "gres", "name": "gpu",
    "count": 1}]``) as sacct names it: ``{"cpu": 2, "gres/gpu": 1}``. Counts are ints (memory
    in MB for requested/allocated, bytes for step usage); entries without a count are left out."""
    out = {}
    for item in tres_list or []:
        if not isinstance(item, dict) or not item.get("type"):
            continue
        name = item["type"] + (f"/{item['name']}" if item.get("name") else "")
        count = no_val_number(item.get("count"))
        # NO_VAL64 counts read as negative INT64 (24.11.5: energy -2 where no energy is gathered);
        # sacct leaves such entries out
        if count is not None and count >= 0:
            out[name] = count
    return out


def _state(value):
    """``state.current`` (v0.0.38 string, v0.0.40+ list) -> (base state, flags tuple)."""
    if isinstance(value, list):
        items = [str(v) for v in value]
        return (items[0] if items else "UNKNOWN"), tuple(items[1:])
    return (str(value) if value else "UNKNOWN"), ()


def _exit(value, job_state=None, version=None):
    """``exit_code`` -> ``(return_code, signal)``. v0.0.40+: ``{"status": [...], "return_code":
    {number}, "signal": {"id": {number}, "name"}}``; v0.0.38: ``{"status", "return_code",
    "signal": {"signal_id", "name"}}`` - where 22.05.8 reports any normal exit as ``SUCCESS``
    with return code 0 (``_dump_job_exit_code`` in ``dbv0.0.38/parse.c`` tests ``WIFEXITED``
    first), so a job that exited 3 reads 0 there while sacct says 3:0 (seen in the testbed;
    README "Accounting"). On v0.0.38 a ``SUCCESS`` of a job or step that did not end
    ``COMPLETED`` therefore reads as unknown (None), never as 0."""
    if not isinstance(value, dict):
        return None, None
    status = value.get("status")
    status = status[0] if isinstance(status, list) and status else status
    if status == "PENDING":
        return None, None
    if version == "v0.0.38" and status == "SUCCESS" and job_state not in ("COMPLETED", "RUNNING"):
        return None, None
    signal = value.get("signal") or {}
    sig = no_val_number(signal.get("id", signal.get("signal_id"))) if isinstance(signal, dict) else None
    return no_val_number(value.get("return_code")), (sig or None)


def _seconds(value):
    """``{"seconds", "microseconds"}`` -> float seconds (None when absent)."""
    if not isinstance(value, dict):
        return None
    sec, usec = no_val_number(value.get("seconds")), no_val_number(value.get("microseconds"))
    if sec is None and usec is None:
        return None
    return round((sec or 0) + (usec or 0) / 1e6, 6)


def _epoch(value):
    number = no_val_number(value)
    return number or None


def _energy(value):
    number = no_val_number(value)
    return None if number is None or number >= NO_VAL64 else number


def _step_id(step, job_id):
    """v0.0.38 ``{"job_id": 5, "id": "batch"}`` (or an int), v0.0.40+ ``{"id": "5.batch"}`` -> "batch"."""
    raw = step.get("id")
    text = str(raw) if raw is not None else ""
    prefix = f"{job_id}."
    return text[len(prefix):] if text.startswith(prefix) else text


def parse_step(record, job_id, version=None):
    """One step record -> a dict (sacct's names in comments).

    Returns:
        ``{"job_id", "step_id" ("batch", "extern", "0"...), "name", "job_state", "exit_code",
        "exit_signal", "start_time", "end_time" (epoch s or None), "elapsed" (s), "nodes",
        "tasks", "cpu_time" (TotalCPU, s), "max_rss" (MaxRSS, bytes, None without
        jobacct_gather), "tres_allocated", "tres_usage_in_max", "tres_usage_in_total",
        "tres_usage_out_total" (TRES dicts), "energy" (ConsumedEnergyRaw, J, or None)}``.
    """
    step = record.get("step") or {}
    state, _ = _state(record.get("state"))
    code, signal = _exit(record.get("exit_code"), state, version)
    t = record.get("time") or {}
    tres = record.get("tres") or {}
    usage_in = tres.get("requested") or {}
    usage_out = tres.get("consumed") or {}
    in_max = tres_dict(usage_in.get("max"))
    nodes = record.get("nodes") or {}
    energy = _energy(((record.get("statistics") or {}).get("energy") or {}).get("consumed"))
    return {
        "job_id": job_id,
        "step_id": _step_id(step, job_id),
        "name": step.get("name") or "",
        "job_state": state,
        "exit_code": code,
        "exit_signal": signal,
        "start_time": _epoch(t.get("start")),
        "end_time": _epoch(t.get("end")),
        "elapsed": no_val_number(t.get("elapsed")) or 0,
        "nodes": nodes.get("range") or None,
        "tasks": no_val_number((record.get("tasks") or {}).get("count")),
        "cpu_time": _seconds(t.get("total")),
        "max_rss": in_max.get("mem"),
        "tres_allocated": tres_dict(tres.get("allocated")),
        "tres_usage_in_max": in_max,
        "tres_usage_in_total": tres_dict(usage_in.get("total")),
        "tres_usage_out_total": tres_dict(usage_out.get("total")),
        "energy": energy,
    }


def parse_job(record, version=None):
    """One ``/slurmdb/<v>/jobs`` record -> a plain dict with Slurm's names.

    Args:
        record: the decoded record.
        version: the REST version that answered (``"v0.0.38"`` changes how exit codes are read,
            see :func:`_exit`).

    Returns:
        ``{"job_id", "name", "user_name", "account", "partition", "qos", "cluster",
        "job_state", "state_flags", "state_reason", "exit_code", "exit_signal",
        "derived_exit_code", "submit_time", "eligible_time", "start_time", "end_time" (epoch s
        or None), "elapsed" (s), "time_limit" (min or None), "nodes", "mcs_label", "comment",
        "array_job_id", "array_task_id", "tres_requested", "tres_allocated" (TRES dicts: cpu,
        mem (MB), node, billing, gres/gpu...), "cpu_time" (TotalCPU, s), "max_rss" (largest
        step MaxRSS, bytes), "energy" (sum of the steps' consumed energy, J), "steps"}``.
        ``max_rss``/``energy``/``cpu_time`` are None (or 0) where the cluster gathers no usage
        (``JobAcctGatherType=jobacct_gather/none``, no ``AcctGatherEnergyType``).

    Raises:
        ValueError: the record has no job id.
    """
    job_id = no_val_number(record.get("job_id"))
    if job_id is None:
        raise ValueError("accounting record without a job_id")
    state_rec = record.get("state") or {}
    state, flags = _state(state_rec.get("current"))
    code, signal = _exit(record.get("exit_code"), state, version)
    derived, _ = _exit(record.get("derived_exit_code"), state, version)
    t = record.get("time") or {}
    tres = record.get("tres") or {}
    steps = [parse_step(s, job_id, version) for s in record.get("steps") or [] if isinstance(s, dict)]
    # the job's own TotalCPU is 0 in slurmdbd's record (22.05.8, 24.11.5): sacct prints the sum
    # of its steps' for the job line, and so does this
    cpu = _seconds(t.get("total"))
    step_cpu = [s["cpu_time"] for s in steps if s["cpu_time"] is not None]
    if step_cpu and not cpu:
        cpu = round(sum(step_cpu), 6)
    rss = [s["max_rss"] for s in steps if s["max_rss"] is not None]
    energy = [s["energy"] for s in steps if s["energy"] is not None]
    comment = record.get("comment")
    array = record.get("array") or {}
    array_job = no_val_number(array.get("job_id"))
    return {
        "job_id": job_id,
        "name": record.get("name") or "",
        "user_name": record.get("user") or None,
        "account": record.get("account") or None,
        "partition": record.get("partition") or None,
        "qos": record.get("qos") or None,
        "cluster": record.get("cluster") or None,
        "job_state": state,
        "state_flags": list(flags),
        "state_reason": state_rec.get("reason") or None,
        "exit_code": code,
        "exit_signal": signal,
        "derived_exit_code": derived,
        "submit_time": _epoch(t.get("submission")),
        "eligible_time": _epoch(t.get("eligible")),
        "start_time": _epoch(t.get("start")),
        "end_time": _epoch(t.get("end")),
        "elapsed": no_val_number(t.get("elapsed")) or 0,
        "time_limit": no_val_number(t.get("limit")),
        "nodes": record.get("nodes") if record.get("nodes") not in ("", "None assigned") else None,
        "mcs_label": (record.get("mcs") or {}).get("label") or "",
        "comment": (comment.get("job") if isinstance(comment, dict) else comment) or None,
        "array_job_id": array_job or None,
        "array_task_id": no_val_number(array.get("task_id")) if array_job else None,
        "tres_requested": tres_dict(tres.get("requested")),
        "tres_allocated": tres_dict(tres.get("allocated")),
        "cpu_time": cpu,
        "max_rss": max(rss) if rss else None,
        "energy": sum(energy) if energy else None,
        "steps": steps,
    }


def _steps_cut(job, start, end):
    """True when the chunk ``[start, end]`` may have cut ``job``'s steps: it started before the
    chunk, or has not ended, or ended after it (a job that never started has no steps)."""
    began, ended = job.get("start_time"), job.get("end_time")
    return bool(began) and (began < start or not ended or ended > end)


def usage_seconds(job, start, end, now):
    """Seconds of ``job``'s allocation inside ``[start, end)`` (0 when it never ran there).

    A running job (no end time) counts up to ``min(end, now)``. This is how ``sacct -T``
    truncates Elapsed to a window (``as_mysql_jobacct_process.c``, ``job->start``/``job->end``
    clamped to ``usage_start``/``usage_end``).
    """
    began = job.get("start_time")
    if not began:
        return 0
    finished = job.get("end_time") or min(end, now)
    return max(0, min(finished, end) - max(began, start))


# ------------------------------------------------------------------ continuation tokens
def encode_token(chunk_start, chunk_length, after_job_id):
    """An opaque continuation token: where :meth:`Accounting.job_history` stopped."""
    raw = json.dumps([int(chunk_start), int(chunk_length), int(after_job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token):
    """Inverse of :func:`encode_token`.

    Raises:
        BadRequest: not a token this module made.
    """
    try:
        padded = token + "=" * (-len(token) % 4)
        chunk_start, length, after = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(chunk_start), int(length), int(after)
    except (ValueError, TypeError, AttributeError):
        raise BadRequest(f"continuation token {token!r} is not one job_history returned; pass the 'next' value "
                         "of the previous result unchanged, with the same filters") from None


# ------------------------------------------------------------------ the API
class Accounting:
    """Accounting queries over a :class:`~slurmdeploy.slurm.client.SlurmClient`.

    Args:
        client: the client (its transport, token refresh and REST version detection).
        clock: a callable returning epoch seconds (tests pass a fixed one).

    Every method raises :class:`~slurmdeploy.errors.BadRequest` for bad arguments (before any
    request), :class:`~slurmdeploy.errors.NotFound` for an unknown account, user or cluster,
    :class:`AccountingUnavailable` when slurmdbd cannot be reached through slurmrestd or the
    slurmdbd plugin is not loaded, and :class:`~slurmdeploy.errors.SlurmAPIError` otherwise.
    """

    def __init__(self, client, clock=time.time):
        self.client = client
        self.clock = clock

    @classmethod
    def from_settings(cls, settings):
        """Build from :class:`slurmdeploy.settings.Settings` (``slurm_url`` and credentials)."""
        from slurmdeploy.slurm.client import SlurmClient

        return cls(SlurmClient.from_settings(settings))

    # ---------------------------------------------------------------- plumbing
    @property
    def version(self):
        """The REST version name in use (slurmdbd's API has the same names as slurmctld's)."""
        return self.client.api.name

    def call(self, operation, params=None, **names):
        """Send one slurmdbd request (``operation``: a ``db_*`` key of the endpoint table);
        returns the decoded answer.

        Raises:
            AccountingUnavailable: HTTP 404 without a Slurm error (the slurmdbd plugin is not
                loaded), or an answer with error 7000/7001 (slurmdbd unreachable: 22.05.8 says so
                with HTTP 200 and an empty list, :data:`DBD_DOWN_ERRORS`).
            NotFound: Slurm error 9003 "Nothing found" (:data:`NOTHING_FOUND`) or 2017.
            SlurmAPIError: any other failure (:func:`slurmdeploy.errors.error_from_answer`).
        """
        method, path = self.client.endpoint(operation, **names)
        try:
            # 404 stays an exception: slurmrestd answers an unknown URL in plain text
            status, data = self.client.request(method, path, params=params,
                                               allow_statuses=[s for s in range(400, 600) if s != 404])
        except SlurmAPIError as exc:
            if exc.status != 404 or exc.error_numbers:
                raise
            status, data = 404, {}
        errors = data.get("errors") or []
        if 200 <= status < 300 and not errors:
            return data
        numbers = set(slurm_error_numbers(errors))
        where = dict(status=status, method=method, endpoint=path, api_version=self.version, errors=errors)
        if status == 404 and not numbers:
            raise AccountingUnavailable(
                "slurmrestd does not serve Slurm's accounting API (/slurmdb/...): start it with the slurmdbd plugin "
                "(22.05: -s openapi/dbv0.0.38,...; 23.11+: -s openapi/slurmctld,openapi/slurmdbd) and configure "
                "AccountingStorageType=accounting_storage/slurmdbd", **where)
        if numbers & DBD_DOWN_ERRORS:
            raise AccountingUnavailable(
                "slurmdbd did not answer slurmrestd (slurmctld may be fine): accounting data cannot be read now; "
                "check slurmdbd (`sacctmgr ping`, its log, its database) and retry", **where)
        if NOTHING_FOUND in numbers:
            if operation == "db_job_list":
                return {"jobs": []}  # 22.05.8: a window without jobs is HTTP 200 + 9003, not an error
            raise NotFound("slurmdbd found nothing for this query", **where)
        raise error_from_answer(status, errors, method=method, endpoint=path, api_version=self.version,
                                message="slurmrestd returned an error for an accounting query")

    # ------------------------------------------------------------- existence
    def check_names(self, accounts=(), users=(), clusters=()):
        """Refuse names slurmdbd does not know (a filter on an unknown name would quietly return
        nothing, as ``sacct`` does).

        Raises:
            NotFound: e.g. "unknown account 'nosuch': sacctmgr show account lists ..."
        """
        for kind, names, op, key, field in (("account", accounts, "db_account_get", "account_name", "accounts"),
                                            ("user", users, "db_user_get", "user_name", "users"),
                                            ("cluster", clusters, "db_cluster_get", "cluster_name", "clusters")):
            for name in names:
                try:
                    data = self.call(op, **{key: name})
                except NotFound:
                    raise NotFound(f"unknown {kind} {name!r}: slurmdbd has no such {kind} (sacctmgr show {kind} "
                                   "lists them)") from None
                found = [r for r in data.get(field) or [] if isinstance(r, dict) and r.get("name") == name]
                if not found:
                    raise NotFound(f"unknown {kind} {name!r}: slurmdbd has no such {kind} (sacctmgr show {kind} "
                                   "lists them)")

    # ---------------------------------------------------------------- jobs
    def _query_time(self, epoch):
        """A time as the version's query takes it: v0.0.42+ epoch seconds (``TIMESTAMP``
        parser); v0.0.38 answers an epoch number with HTTP 500, error 9000 "Unable to parse time
        format" (22.05.8), v0.0.40/41 with HTTP 422, error 9202 "Parsing of <n> for timestamp
        failed" (24.11.5; recorded, ``accounting_jobs_epoch_time.json``), so those get
        ``YYYY-MM-DDTHH:MM:SS`` in the local time zone, which slurmrestd reads in its own: run
        both in the same zone (UTC in the testbed)."""
        if self.version in EPOCH_REFUSED:
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))
        return str(int(epoch))

    def _query(self, start, end, accounts, partitions, states, job_names, users, clusters, steps):
        params = [("start_time", self._query_time(start)), ("end_time", self._query_time(end))]
        for key, names in (("account", accounts), ("partition", partitions), ("state", states),
                           ("job_name", job_names), ("cluster", clusters)):
            if names:
                params.append((key, ",".join(names)))
        if self.version == "v0.0.38":
            if not steps:
                params.append(("skip_steps", "true"))
        else:
            if users:
                params.append(("users", ",".join(users)))
            if not steps:
                # each flag is a query key of its own (a "flags" list is ignored with a warning), and
                # any flag replaces the default DUP|NO_TRUNC (op_handler_jobs): skip_steps alone
                # truncates start and end to the window (seen on 24.11.5), so NO_TRUNC is sent too
                params += [("skip_steps", "true"), ("disable_truncate_usage_time", "true")]
        return params

    def _check_filters(self, users, accounts, partitions, states, job_names, clusters):
        users = _names(users, "user")
        accounts = _names(accounts, "account")
        partitions = _names(partitions, "partition")
        job_names = _names(job_names, "job_name")
        clusters = _names(clusters, "cluster")
        states = [s.upper() for s in _names(states, "state")]
        unknown = [s for s in states if s not in JOB_STATES]
        if unknown:
            raise BadRequest(f"unknown job state(s) {', '.join(unknown)}; Slurm's job states are "
                             f"{', '.join(JOB_STATES)}")
        self.check_names(accounts=accounts, users=users, clusters=clusters)
        return users, accounts, partitions, states, job_names, clusters

    def iter_jobs(self, start_time, end_time=None, users=None, accounts=None, partitions=None, states=None,
                  job_names=None, clusters=None, steps=True, chunk=DEFAULT_CHUNK, resume=None):
        """Yield the accounting records of a time window, chunk by chunk (constant memory: one
        chunk's answer at a time).

        Args:
            start_time, end_time: the window (:func:`time_window`; end defaults to now).
            users, accounts, partitions, states, job_names, clusters: filters (lists or
                comma-separated strings; ``states`` as ``sacct -s``: a job that ended in the
                window in that state).
            steps: include each job's steps.
            chunk: first chunk length (seconds); halved after a chunk of more than
                :data:`CHUNK_RECORDS` records, doubled after one of less than a quarter of it.
            resume: ``(chunk_start, chunk_length, after_job_id)`` from a continuation token.

        Yields:
            ``(record dict (:func:`parse_job`), (chunk_start, chunk_length))``, records of one
            chunk in job id order.
        """
        now = int(self.clock())
        start, end = time_window(start_time, end_time, now)
        users, accounts, partitions, states, job_names, clusters = self._check_filters(
            users, accounts, partitions, states, job_names, clusters)
        length = max(MIN_CHUNK, min(MAX_CHUNK, int(chunk)))
        cursor, after = start, 0
        if resume is not None:
            cursor, length, after = resume
            if not start <= cursor < end:
                raise BadRequest("the continuation token does not belong to this time window: pass the same "
                                 "start_time and end_time as the call that returned it")
        wanted_users = set(users)
        previous = set()  # job ids the previous chunk returned: a job spanning chunks is emitted once
        while cursor < end:
            stop = min(end, cursor + length)
            LOG.info("reading accounting records %s .. %s (%s s)", _iso(cursor), _iso(stop), stop - cursor)
            data = self.call("db_job_list", params=self._query(cursor, stop, accounts, partitions, states,
                                                                   job_names, users, clusters, steps))
            raw = data.get("jobs") or []
            count = len(raw)
            records, seen = [], set()
            for item in raw:
                job = parse_job(item, self.version)
                seen.add(job["job_id"])
                # a job spanning chunks belongs to the chunk holding max(eligible, window start)
                if job["job_id"] in previous or (cursor != start and not states
                                                 and (job["eligible_time"] or 0) < cursor):
                    continue
                if wanted_users and job["user_name"] not in wanted_users:
                    continue  # v0.0.38 cannot filter by user
                if job["job_id"] <= after:
                    continue
                records.append(job)
            del raw, data
            previous = seen
            records.sort(key=lambda j: j["job_id"])
            for job in records:
                if steps and _steps_cut(job, cursor, stop):
                    # slurmdbd returns only the steps that ran inside the query window
                    # (as_mysql_jobacct_process.c: "t1.time_start <= end && (!t1.time_end ||
                    # t1.time_end >= start)"): a job running beyond this chunk is read again
                    # whole (GET .../job/{id}, every step)
                    job = self.job(job["job_id"])
                yield job, (cursor, length)
            after = 0
            cursor = stop
            if count > CHUNK_RECORDS and length > MIN_CHUNK:
                length = max(MIN_CHUNK, length // 2)
            elif count < CHUNK_RECORDS // 4 and length < MAX_CHUNK:
                length = min(MAX_CHUNK, length * 2)

    def job_history(self, start_time, end_time=None, users=None, accounts=None, partitions=None, states=None,
                    job_names=None, clusters=None, steps=True, limit=DEFAULT_LIMIT, next_token=None,
                    chunk=DEFAULT_CHUNK):
        """Finished and running jobs of a window, at most ``limit`` per call.

        Returns:
            ``{"jobs": [record...], "count": int, "next": token or None, "window":
            {"start_time", "end_time"}}``: pass ``next`` back (same filters) for the following
            records; None when the window is exhausted.

        Raises:
            BadRequest: bad window, filter, limit or token; NotFound: unknown account, user or
            cluster; AccountingUnavailable: slurmdbd unreachable.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100000:
            raise BadRequest(f"limit must be an integer 1..100000, got {limit!r}")
        resume = decode_token(next_token) if next_token else None
        now = int(self.clock())
        start, end = time_window(start_time, end_time, now)
        jobs, token = [], None
        for job, (chunk_start, length) in self.iter_jobs(start, end, users, accounts, partitions, states, job_names,
                                                          clusters, steps, chunk, resume):
            if len(jobs) == limit:
                last = jobs[-1]
                # resume in the chunk of the last record returned, after its job id
                token = encode_token(last_chunk[0], last_chunk[1], last["job_id"])
                break
            jobs.append(job)
            last_chunk = (chunk_start, length)
        return {"jobs": jobs, "count": len(jobs), "next": token,
                "window": {"start_time": start, "end_time": end}}

    def job_steps(self, job_ids):
        """The steps of one or more jobs (``GET /slurmdb/<v>/job/{job_id}``; slurmctld's API has
        no steps), as the StackStorm Exchange ``slurm`` pack's ``job.step.get`` gives them.

        Args:
            job_ids: a job id or a list of them (ints 1..4294967293).

        Returns:
            ``{"jobs": [{"job_id", "job_state", "user_name", "steps": [step dicts
            (:func:`parse_step`)]}]}`` in the order asked.

        Raises:
            BadRequest: no or a bad job id; NotFound: slurmdbd has no record of a job id.
        """
        ids = job_ids if isinstance(job_ids, (list, tuple)) else [job_ids]
        if not ids:
            raise BadRequest("job_ids: give at least one Slurm job id")
        checked = []
        for job_id in ids:
            if isinstance(job_id, str) and job_id.strip().isdigit():
                job_id = int(job_id.strip())  # st2 run job_ids=101,102 casts to strings (casts.py _cast_array)
            if isinstance(job_id, bool) or not isinstance(job_id, int) or not 1 <= job_id <= 0xFFFFFFFD:
                raise BadRequest(f"job_ids: {job_id!r} is not a Slurm job id (an integer 1..4294967293)")
            checked.append(job_id)
        out = []
        for job_id in checked:
            record = self.job(job_id)
            out.append({"job_id": job_id, "job_state": record["job_state"], "user_name": record["user_name"],
                        "steps": record["steps"]})
        return {"jobs": out}

    def job(self, job_id):
        """One job's accounting record with its steps (:func:`parse_job`).

        Raises:
            NotFound: slurmdbd has no record of ``job_id`` (never submitted, or not yet
                written: slurmctld sends records to slurmdbd asynchronously).
        """
        try:
            data = self.call("db_job_get", job_id=int(job_id))
        except NotFound:
            raise NotFound(f"slurmdbd has no accounting record of Slurm job {job_id}", job_id=int(job_id)) from None
        records = [parse_job(r, self.version) for r in data.get("jobs") or []]
        # several records: a requeued job (DUP); the last one is the current run
        mine = [r for r in records if r["job_id"] == int(job_id)]
        if not mine:
            raise NotFound(f"slurmdbd has no accounting record of Slurm job {job_id}")
        return max(mine, key=lambda r: (r["submit_time"] or 0, r["start_time"] or 0))

    # ------------------------------------------------------------ usage report
    def usage_report(self, start_time=None, end_time=None, group_by="account", accounts=None, users=None,
                     partitions=None, clusters=None, output="json", chunk=DEFAULT_CHUNK, period=None):
        """Usage per account and/or user over a period, in TRES-minutes and job counts.

        The numbers are ``sacct -X -T``'s for the same period and filters: each job's
        allocated TRES (``AllocTRES``: cpu, mem in MB, node, billing, gres/gpu...) times the
        seconds of its allocation inside the period (``usage_seconds``), summed per group.
        ``cpu`` TRES-seconds are sacct's ``CPUTimeRAW`` with ``-T``; sreport's
        ``cluster AccountUtilizationByUser -t minutes`` gives the same minutes once slurmdbd's
        hourly rollup covered the period.

        Args:
            start_time, end_time: the period (both required unless ``period`` is given).
            period: instead of start/end, a calendar period (:func:`named_period`: ``last_month``...).
            group_by: ``"account"``, ``"user"`` or ``"account,user"``.
            output: ``"json"`` or ``"csv"``.

        Returns:
            ``{"period": {"start_time", "end_time"}, "group_by": [...], "tres": [names],
            "rows": [{"account"?, "user"?, "jobs", "jobs_ran", "tres_seconds": {...},
            "tres_minutes": {...}}], "totals": {...}}``; with ``output="csv"`` also
            ``"csv"``: one line per row (``account,user,jobs,jobs_ran,<tres>_minutes...``).

        Raises:
            BadRequest: end_time missing, bad window, group_by or output; NotFound: unknown
            account, user or cluster; AccountingUnavailable: slurmdbd unreachable.
        """
        if period:
            if start_time or end_time:
                raise BadRequest("give either period or start_time and end_time, not both")
            start_time, end_time = named_period(period, self.clock())
        if end_time is None or end_time == "":
            raise BadRequest("end_time is required for a usage report (e.g. end_time=now): a period has two ends")
        keys = _names(group_by, "group_by")
        if not keys or any(k not in ("account", "user") for k in keys) or len(set(keys)) != len(keys):
            raise BadRequest(f"group_by must be 'account', 'user' or 'account,user', got {group_by!r}")
        if output not in ("json", "csv"):
            raise BadRequest(f"output must be 'json' or 'csv', got {output!r}")
        now = int(self.clock())
        start, end = time_window(start_time, end_time, now)
        groups = {}
        totals = {"jobs": 0, "jobs_ran": 0, "tres_seconds": {}}
        for job, _ in self.iter_jobs(start, end, users=users, accounts=accounts, partitions=partitions,
                                     clusters=clusters, steps=False, chunk=chunk):
            group = tuple(job["account"] if k == "account" else job["user_name"] for k in keys)
            row = groups.setdefault(group, {"jobs": 0, "jobs_ran": 0, "tres_seconds": {}})
            seconds = usage_seconds(job, start, end, now)
            for target in (row, totals):
                target["jobs"] += 1
                if seconds:
                    target["jobs_ran"] += 1
                for name, count in job["tres_allocated"].items():
                    target["tres_seconds"][name] = target["tres_seconds"].get(name, 0) + count * seconds
        tres = sorted(totals["tres_seconds"], key=_tres_order)
        rows = []
        for group in sorted(groups, key=lambda g: tuple(x or "" for x in g)):
            row = groups[group]
            out = dict(zip(keys, group))
            out.update(jobs=row["jobs"], jobs_ran=row["jobs_ran"], tres_seconds=row["tres_seconds"],
                       tres_minutes={k: round(v / 60, 3) for k, v in row["tres_seconds"].items()})
            rows.append(out)
        totals["tres_minutes"] = {k: round(v / 60, 3) for k, v in totals["tres_seconds"].items()}
        report = {"period": {"start_time": start, "end_time": end, "name": period or None}, "group_by": keys, "tres": tres, "rows": rows,
                  "totals": totals}
        if output == "csv":
            report["csv"] = report_csv(report)
        return report




def _mentions_connection(errors):
    text = " ".join(str(e.get("description") or e.get("error") or "") for e in errors if isinstance(e, dict))
    return "slurmdbd" in text.lower() or "connection" in text.lower() and "database" in text.lower()


def _tres_order(name):
    order = {"cpu": 0, "mem": 1, "node": 2, "billing": 3, "energy": 4}
    return (order.get(name, 5), name)


def report_csv(report):
    """The usage report's rows as CSV text: the group columns, ``jobs``, ``jobs_ran`` and one
    ``<tres>_minutes`` column per TRES (``cpu_minutes``, ``mem_minutes`` (MB-minutes),
    ``gres/gpu_minutes``...)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(report["group_by"]) + ["jobs", "jobs_ran"] + [f"{t}_minutes" for t in report["tres"]])
    for row in report["rows"]:
        writer.writerow([row.get(k) or "" for k in report["group_by"]] + [row["jobs"], row["jobs_ran"]]
                        + [row["tres_minutes"].get(t, 0) for t in report["tres"]])
    return buffer.getvalue()
