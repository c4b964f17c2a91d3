"""Per-version knowledge of the Slurm REST API (slurmrestd).

Each supported version is one class; everything that differs between versions
(paths, request bodies, response shapes) lives in that class, nowhere else. The
shared algorithm (:meth:`ApiVersion.submit_body`, :meth:`ApiVersion.parse_job`)
is written once in the base class and asks the version's hooks for the pieces
that differ:

==========================  =====================  =======================  ========================
hook                        v0.0.38 (22.05)        v0.0.39 (23.02/23.11)    v0.0.40/41/42 (23.11+)
==========================  =====================  =======================  ========================
``wrap_submit``             ``{"script", "job"}``  ``{"job": {"script"}}``  as v0.0.39
``environment``             dict ``{K: V}``        list ``["K=V"]``         as v0.0.39
``NO_VAL_FIELDS`` (the      none (plain ints)      ``time_limit``           ``time_limit``,
rest of time_limit, tasks,                                                  ``memory_per_node``
cpus_per_task,
memory_per_node: ints)
``nodes``                   ``"n-n"`` (string)     ``minimum_nodes``,       as v0.0.39
                                                   ``maximum_nodes``
``job_states`` (read)       one string; a flag     as v0.0.38               list: base state, flags
                            (``COMPLETING``)
                            hides the base state
``exit_status`` (read)      raw wait status        raw wait status, plain   ``{"status",
                                                   or ``{"set", "number"}``  "return_code", "signal"}``
``submitted_job_id``        ``job_id``             ``job_id`` (+``result``)  as v0.0.39 (42: no
                                                                            ``result``)
==========================  =====================  =======================  ========================

Which operations (endpoints) each version serves, and their paths, is the one table
:data:`slurmdeploy.slurm.endpoints.ENDPOINTS` (operation -> method, path template, REST
versions serving it) read through :meth:`ApiVersion.supports`, :meth:`ApiVersion.require`
and :meth:`ApiVersion.path`; this module spells no path.

Times are epoch seconds in every version (plain ints up to v0.0.39, ``{"set",
"infinite", "number"}`` after); :func:`no_val_number` reads both.

v0.0.43, v0.0.44 and v0.0.45 (Slurm 25.05, 25.11, 26.05) have v0.0.42's shapes for
every job field used here; they add reservation writes (:meth:`V0043.reservation_body`).

Sources: Slurm's OpenAPI documents (v0.0.38 complete; v0.0.39 a template) and
the data_parser definitions in Slurm's source; v0.0.38, v0.0.40-42 and v0.0.42-45 were
checked against real slurmrestd (Slurm 22.05.8, 24.11.5 and 26.05.5, recordings in
``tests/fixtures/slurm/``). v0.0.39 (Slurm 23.02/23.11) could not be run here: see
:class:`V0039` for how it was built and verified.
"""

from slurmdeploy.slurm.endpoints import ALSO_SERVED_FROM, ENDPOINTS, SLURM_RELEASE, resolve, version_key
from slurmdeploy.slurm.models import BASE_JOB_STATES, SlurmJob

__all__ = ["ADAPTERS", "ALSO_SERVED_FROM", "ENDPOINTS", "SLURM_RELEASE", "ApiVersion", "adapter", "no_val_number"]


def no_val_number(value):
    """Read a Slurm ``*_NO_VAL`` number: an int, or ``{"set", "infinite", "number"}``.

    Returns:
        The int, or None when unset or infinite.
    """
    if isinstance(value, dict):
        if not value.get("set", False) or value.get("infinite", False):
            return None
        value = value.get("number")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def set_number(value):
    """Write a number in the ``{"set": true, "infinite": false, "number": N}`` form."""
    return {"set": True, "infinite": False, "number": int(value)}


def epoch(value):
    """Read a time field as epoch seconds; 0, unset and infinite read as None."""
    return no_val_number(value) or None


def wait_status(status):
    """Split a raw wait(2) status (v0.0.38's ``exit_code``) into ``(return_code, signal)``.

    ``exit 3`` is 768 (3 << 8); a job killed by SIGTERM is 15. Returns ``(None, None)``
    when ``status`` is not an int.
    """
    if isinstance(status, bool) or not isinstance(status, int):
        return None, None
    signal = status & 0x7F
    return (status >> 8) & 0xFF, (signal or None)


def flag_or_base_state(value):
    """Read a one-string ``job_state`` (v0.0.38, v0.0.39) as ``(job_state, state_flags)``.

    Those versions print ``job_state_string()`` (``src/common/slurm_protocol_defs.c``),
    which returns a flag such as ``COMPLETING`` *instead of* the base state while the
    flag is set: the flag is then both ``job_state`` and the only flag
    (``SlurmJob.base_state_known`` is False).
    """
    if value in BASE_JOB_STATES:
        return value, ()
    return (value or "UNKNOWN"), ((value,) if value else ())


def _comment(value):
    # v0.0.40+ job records carry "comment" as a string; some builds nest it as
    # {"job": ..., "administrator": ..., "system": ...} (job_info comment fields).
    if isinstance(value, dict):
        value = value.get("job")
    return value or None


_version_key = version_key  # the name client.py and older callers import


class ApiVersion:
    """Base of the per-version adapters.

    Subclasses set :attr:`name` and :attr:`NO_VAL_FIELDS` and implement the hooks
    (``wrap_submit``, ``environment``, ``nodes``, ``job_states``, ``exit_status``,
    ``submitted_job_id``); the shared algorithms below use them.
    """

    name = ""
    #: JobRequest option fields that are integers (minutes, counts, MiB)
    INT_FIELDS = ("time_limit", "tasks", "cpus_per_task", "memory_per_node")
    #: those of them this version writes as ``{"set", "infinite", "number"}``
    NO_VAL_FIELDS = ()

    # ---- which operations this version serves, and their paths (table endpoints.ENDPOINTS)
    def supports(self, operation):
        """True when this version serves ``operation`` (a key of :data:`ENDPOINTS`)."""
        return ENDPOINTS[operation].served_by(self.name)

    def require(self, operation):
        """Return ``(method, path template)`` of ``operation`` in this version, e.g.
        ``("POST", "/slurm/v0.0.42/job/{job_id}")``.

        Raises:
            UnsupportedOperation: e.g. "node_update (POST /node/{node_name}) is not
                supported by Slurm REST v0.0.38, needs Slurm >= 23.02 (REST v0.0.39)".
        """
        return resolve(operation, self.name)

    def path(self, operation, **params):
        """The concrete path of ``operation`` in this version (:func:`endpoints.resolve`), e.g.
        ``path("job_get", job_id=7)`` -> ``"/slurm/v0.0.42/job/7"``.

        Raises:
            UnsupportedOperation: this version does not serve it.
        """
        return resolve(operation, self.name, **params)[1]

    # shorthands kept for tests, bench/ and tests/testbed.py; each reads the table
    def ping_path(self):
        return self.path("ping")

    def diag_path(self):
        return self.path("diag")

    def jobs_path(self):
        return self.path("job_list")

    def job_path(self, job_id):
        return self.path("job_get", job_id=int(job_id))

    def submit_path(self):
        return self.path("job_submit")

    def jobs_state_path(self):
        """``GET .../jobs/state/`` (job ids and states only, filtered by ``job_id``), or None
        when this version has no such endpoint (added in v0.0.40, Slurm 23.11)."""
        return self.path("job_state_list") if self.supports("job_state_list") else None

    def parse_job_state(self, record):
        """Read one ``jobs/state`` record as ``(job_id, job_state)``; None when unusable."""
        return None

    # ---- request hooks
    def wrap_submit(self, job, script):
        """Return the submit body holding ``job`` (a dict of job fields) and ``script``."""
        raise NotImplementedError

    def environment(self, env):
        """Return the job environment field for ``env`` (dict NAME -> str)."""
        raise NotImplementedError

    def nodes(self, count):
        """Return the job fields asking for exactly ``count`` nodes."""
        raise NotImplementedError

    # ---- response hooks
    def job_states(self, value):
        """Split a record's ``job_state`` into ``(job_state, state_flags tuple)``."""
        raise NotImplementedError

    def exit_status(self, value):
        """Read a record's ``exit_code`` as ``(return_code, signal)`` (ints or None)."""
        raise NotImplementedError

    def submitted_job_id(self, answer):
        """Return the job id (int) from a submit answer, or None when absent."""
        return no_val_number(answer.get("job_id"))

    def cancel_error_numbers(self, answer):
        """Slurm error numbers reported per job in a cancel (DELETE) answer, beyond ``errors``."""
        return []

    #: job fields a job update (``POST /job/{id}``) writes as ``{"set", "infinite", "number"}``
    JOB_UPDATE_NO_VAL_FIELDS = ()

    def job_update_body(self, fields):
        """Return the ``POST /job/{id}`` body setting ``fields`` (Slurm job field names;
        numbers of :attr:`JOB_UPDATE_NO_VAL_FIELDS` as plain ints, wrapped here)."""
        return {k: (set_number(v) if k in self.JOB_UPDATE_NO_VAL_FIELDS and isinstance(v, int)
                    and not isinstance(v, bool) else v) for k, v in fields.items()}

    def node_states(self, record):
        """Return a node record's state as a list: base state first, then flags
        (``["IDLE", "DRAIN"]``), upper case in every version."""
        raise NotImplementedError

    # ---- shared algorithms
    def submit_body(self, request):
        """Return the JSON body submitting a :class:`~slurmdeploy.slurm.models.JobRequest`."""
        job = {
            "name": request.name,
            "environment": self.environment(request.environment),
            "current_working_directory": request.current_working_directory,
            "mcs_label": request.mcs_label,
        }
        for field, value in request.options().items():
            if field == "nodes":
                job.update(self.nodes(value))
            elif field in self.NO_VAL_FIELDS:
                job[field] = set_number(value)
            elif field in self.INT_FIELDS:
                job[field] = int(value)
            else:
                job[field] = value
        return self.wrap_submit(job, request.script)

    def parse_job(self, record):
        """Return a :class:`~slurmdeploy.slurm.models.SlurmJob` from one job record.

        Raises:
            ValueError: the record has no job id.
        """
        job_id = no_val_number(record.get("job_id"))
        if job_id is None:
            raise ValueError(f"Slurm job record without a job_id (REST API {self.name})")
        job_state, flags = self.job_states(record.get("job_state"))
        exit_code, signal = self.exit_status(record.get("exit_code"))
        return SlurmJob(
            job_id=job_id,
            name=record.get("name") or "",
            job_state=job_state,
            state_flags=flags,
            state_reason=record.get("state_reason"),
            state_description=record.get("state_description") or None,
            mcs_label=record.get("mcs_label") or "",
            exit_code=exit_code,
            exit_signal=signal,
            submit_time=epoch(record.get("submit_time")),
            start_time=epoch(record.get("start_time")),
            end_time=epoch(record.get("end_time")),
            time_limit=no_val_number(record.get("time_limit")),
            partition=record.get("partition") or None,
            user_name=record.get("user_name") or None,
            comment=_comment(record.get("comment")),
        )


class V0038(ApiVersion):
    """Slurm 22.05 REST API v0.0.38 (Debian 12's Slurm).

    From ``v0.0.38.json`` (``v0.0.38_job_submission``, ``v0.0.38_job_properties``,
    ``v0.0.38_job_response_properties``), checked on Slurm 22.05.8: the script is a
    top-level ``script``; ``environment`` is a dict; numbers are plain ints;
    ``nodes`` is the string ``"min-max"`` (the spec's ``[min, max]`` array is accepted
    with HTTP 200 and silently ignored: a job asking ``[2, 2]`` got ``node_count`` 1,
    while ``"2"``, ``"2-2"`` give 2 - read back by ``tests/integration/test_slurm_client.py``); ``job_state`` is one string made by
    ``job_state_string()`` (``src/common/slurm_protocol_defs.c``), which returns a
    flag such as ``COMPLETING`` or ``CONFIGURING`` *instead of* the base state while
    the flag is set; ``exit_code`` is the raw wait status (exit 3 -> 768).
    """

    name = "v0.0.38"

    def wrap_submit(self, job, script):
        return {"script": script, "job": job}

    def environment(self, env):
        return dict(env)

    def nodes(self, count):
        return {"nodes": f"{int(count)}-{int(count)}"}

    job_states = staticmethod(flag_or_base_state)

    def exit_status(self, value):
        return wait_status(value)

    def node_states(self, record):
        # 22.05.8 (recorded): "state": "idle" (lower case), "state_flags": ["DRAIN"]
        base = str(record.get("state") or "UNKNOWN").upper()
        return [base] + [str(f).upper() for f in record.get("state_flags") or []]


class V0039(ApiVersion):
    """Slurm 23.02/23.11 REST API v0.0.39 - built from Slurm's source, not run here.

    No Slurm 23.x is packaged for Debian, so this adapter follows Slurm's own
    definitions (``src/plugins/data_parser/v0.0.39/parsers.c``: ``JOB_DESC_MSG``,
    ``JOB_INFO``, ``JOB_SUBMIT_RESPONSE_MSG``; ``src/plugins/openapi/v0.0.39/jobs.c``:
    ``_job_post``) and is tested against Slurm's v0.0.39 OpenAPI template
    (``tests/unit/test_slurm_v0039.py``, see README "Support matrix"; the wire reference
    with the source lines it rests on is ``docs/slurm-rest-v0.0.39.md``):

    - the script goes inside ``job`` (``add_parse(STRING, script, "script")``; a top-level
      ``script`` is "backwards compatibility only"); ``environment`` a ``K=V`` list
      (required from 23.02.4);
    - ``time_limit`` is ``UINT32_NO_VAL`` (``{"set", "infinite", "number"}``, minutes);
      ``memory_per_node`` a plain int in MB (the object form is refused before 23.02.4);
      ``tasks``, ``cpus_per_task``, ``minimum_nodes``/``maximum_nodes`` plain ints;
    - ``job_state`` is one string from ``job_state_string()``, as in v0.0.38;
    - ``exit_code`` is the raw wait status: a plain int before 23.02.4 (4294967295 =
      NO_VAL while pending), ``{"set", "infinite", "number": <wait status>}`` after;
    - the submit answer has ``job_id`` at the top level (and in ``result``).
    """

    name = "v0.0.39"
    NO_VAL_FIELDS = ("time_limit",)
    # parsers.c JOB_DESC_MSG: time_limit and priority are UINT32_NO_VAL (24.11 records the same)
    JOB_UPDATE_NO_VAL_FIELDS = ("time_limit", "time_minimum", "priority")
    #: slurm.h NO_VAL: a uint32 that is not set
    NO_VAL = 0xFFFFFFFE

    def wrap_submit(self, job, script):
        return {"job": dict(job, script=script)}

    def environment(self, env):
        return [f"{k}={v}" for k, v in env.items()]

    def nodes(self, count):
        return {"minimum_nodes": int(count), "maximum_nodes": int(count)}

    job_states = staticmethod(flag_or_base_state)

    def exit_status(self, value):
        status = no_val_number(value)
        if status is None or status >= self.NO_VAL:
            return None, None
        return wait_status(status)

    def node_states(self, record):
        # NODE_STATES flags: a list, base state first (24.11.5 recorded: ["IDLE", "DRAIN"])
        value = record.get("state")
        states = [value] if isinstance(value, str) else list(value or [])
        return [str(x).upper() for x in states] or ["UNKNOWN"]

    def submitted_job_id(self, answer):
        job_id = answer.get("job_id")
        if job_id is None:
            job_id = (answer.get("result") or {}).get("job_id")
        return no_val_number(job_id)


class V0040(V0039):
    """Slurm 23.11/24.x REST API v0.0.40 (checked on Slurm 24.11.5).

    As v0.0.39 for requests, except ``memory_per_node`` is ``{"set", "infinite",
    "number"}`` too; ``job_state`` is a list, base state first, flags after;
    ``exit_code`` is ``{"status", "return_code", "signal"}``; the submit answer
    repeats ``job_id`` inside ``result``.
    """

    name = "v0.0.40"
    # tasks and cpus_per_task are plain int32 here: a {"set", ...} object makes 24.11
    # answer 200 with no job id and a warning "Expected OpenAPI type=integer" (seen)
    NO_VAL_FIELDS = ("time_limit", "memory_per_node")

    def job_states(self, value):
        states = list(value or [])
        return (states[0] if states else "UNKNOWN"), tuple(states[1:])

    def exit_status(self, value):
        value = value if isinstance(value, dict) else {}
        return no_val_number(value.get("return_code")), no_val_number((value.get("signal") or {}).get("id"))

    def parse_job_state(self, record):
        # recorded on 24.11.5: {"job_id": "1", "state": ["PENDING"]} (job_id a string)
        job_id = no_val_number(record.get("job_id"))
        if job_id is None:
            return None
        job_state, _ = self.job_states(record.get("state"))
        return job_id, job_state


class V0041(V0040):
    """Slurm 24.05/24.11 REST API v0.0.41 (same shapes as v0.0.40 for what we use)."""

    name = "v0.0.41"


class V0042(V0041):
    """Slurm 24.11+ REST API v0.0.42: the submit answer has no ``result`` wrapper; a
    cancel answer reports per-job errors in ``status`` (recorded: DELETE of an unknown
    id answers 200 with ``status: [{"error": {"code": 2017, ...}, ...}]``)."""

    name = "v0.0.42"

    def cancel_error_numbers(self, answer):
        out = []
        for item in answer.get("status") or []:
            code = (item.get("error") or {}).get("code")
            if isinstance(code, int) and code != 0:
                out.append(code)
        return out


class V0043(V0042):
    """Slurm 25.05+ REST API v0.0.43 (checked on Slurm 26.05.5).

    Job requests and records have v0.0.42's shapes for every field this library reads or
    writes (``src/plugins/data_parser/v0.0.43/parsers.c``: ``JOB_DESC_MSG``, ``JOB_INFO``,
    ``OPENAPI_JOB_SUBMIT_RESPONSE``, ``JOB_STATE_RESP_JOB``, ``KILL_JOBS_RESP_JOB`` declare
    the same names and types as v0.0.42; the recordings of ``tests/fixtures/slurm/v0.0.43``
    replay through the same tests). New: reservations are written through REST
    (``RESERVATION_DESC_MSG``), see :meth:`reservation_body`.
    """

    name = "v0.0.43"
    #: reservation_desc_msg fields Slurm parses as ``UINT32_NO_VAL`` (minutes, counts) or
    #: ``TIMESTAMP_NO_VAL`` (epoch seconds): written as ``{"set", "infinite", "number"}``
    RESERVATION_NO_VAL_FIELDS = ("duration", "node_count", "core_count", "start_time", "end_time",
                                 "max_start_delay")

    def reservation_body(self, fields):
        """Return the ``POST /reservation`` body (a ``reservation_desc_msg``) for ``fields``.

        Args:
            fields: reservation_desc_msg field names -> values: ``name`` (str), ``node_list``
                (str or list of node names / hostlist expressions), ``node_count`` (int),
                ``start_time``/``end_time`` (epoch seconds), ``duration`` (minutes),
                ``users``/``accounts`` (list of names; Slurm's ``CSV_STRING`` takes a list
                or a comma-separated string), ``flags`` (list such as ``["MAINT"]``) and any
                other field of the version's ``reservation_desc_msg`` as Slurm spells it.

        Returns:
            A dict; numbers of :attr:`RESERVATION_NO_VAL_FIELDS` wrapped as ``{"set", ...}``.
        """
        return {k: (set_number(v) if k in self.RESERVATION_NO_VAL_FIELDS and isinstance(v, int)
                    and not isinstance(v, bool) else v) for k, v in fields.items()}


class V0044(V0043):
    """Slurm 25.11+ REST API v0.0.44: the shapes of v0.0.43 for what this library uses
    (``src/plugins/data_parser/v0.0.44/parsers.c``; checked on Slurm 26.05.5)."""

    name = "v0.0.44"


class V0045(V0044):
    """Slurm 26.05+ REST API v0.0.45: the shapes of v0.0.43 for what this library uses
    (``src/plugins/data_parser/v0.0.45/parsers.c``; ``environment`` is documented as
    required for a submit, which this library always sends; checked on Slurm 26.05.5)."""

    name = "v0.0.45"


#: version name -> adapter instance, oldest first
ADAPTERS = {cls.name: cls() for cls in (V0038, V0039, V0040, V0041, V0042, V0043, V0044, V0045)}


def adapter(name):
    """Return the adapter of a version name such as ``"v0.0.42"``.

    Raises:
        KeyError: naming the supported versions.
    """
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unsupported Slurm REST API version {name!r}; supported: {', '.join(ADAPTERS)}") from None
