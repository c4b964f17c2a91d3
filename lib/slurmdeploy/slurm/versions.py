"""Per-version knowledge of the Slurm REST API (slurmrestd).

Each supported version is one class; everything that differs between versions
(paths, request bodies, response shapes) lives in that class, nowhere else.
Facts come from Slurm's OpenAPI documents and were checked against real
slurmrestd (Slurm 24.11: v0.0.40, v0.0.41, v0.0.42):

- v0.0.40+: the submit body is ``{"job": {"script", "environment": ["K=V"], ...}}``;
  numbers such as ``time_limit`` are ``{"set", "infinite", "number"}`` objects;
  ``job_state`` is a list, base state first, flags after.
- v0.0.40/41 wrap the submit answer in ``result``; v0.0.42 does not.
"""

from slurmdeploy.slurm.models import SlurmJob


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


def _comment(value):
    # v0.0.40+ job records carry "comment" as a string; some builds nest it as
    # {"job": ..., "administrator": ..., "system": ...} (job_info comment fields).
    if isinstance(value, dict):
        value = value.get("job")
    return value or None


class ApiVersion:
    """Base of the per-version adapters. Subclasses set :attr:`name` and override shapes."""

    name = ""

    @property
    def prefix(self):
        return f"/slurm/{self.name}"

    # ---- paths
    def ping_path(self):
        return f"{self.prefix}/ping"

    def diag_path(self):
        return f"{self.prefix}/diag"

    def jobs_path(self):
        return f"{self.prefix}/jobs"

    def job_path(self, job_id):
        return f"{self.prefix}/job/{int(job_id)}"

    def submit_path(self):
        return f"{self.prefix}/job/submit"

    # ---- shapes
    def submit_body(self, request):
        """Return the JSON body submitting a :class:`~slurmdeploy.slurm.models.JobRequest`."""
        raise NotImplementedError

    def submitted_job_id(self, answer):
        """Return the job id (int) from a submit answer, or None when absent."""
        raise NotImplementedError

    def parse_job(self, record):
        """Return a :class:`~slurmdeploy.slurm.models.SlurmJob` from one job record."""
        raise NotImplementedError

    def cancel_error_numbers(self, answer):
        """Slurm error numbers reported per job in a cancel (DELETE) answer, beyond ``errors``."""
        return []


class V0040(ApiVersion):
    """Slurm 23.11/24.x REST API v0.0.40."""

    name = "v0.0.40"
    _number_fields = ("time_limit", "memory_per_node", "tasks", "cpus_per_task")

    def submit_body(self, request):
        job = {
            "name": request.name,
            "script": request.script,
            "environment": [f"{k}={v}" for k, v in request.environment.items()],
            "current_working_directory": request.current_working_directory,
            "mcs_label": request.mcs_label,
        }
        for name, value in request.options().items():
            if name == "nodes":
                job["minimum_nodes"] = int(value)
                job["maximum_nodes"] = int(value)
            elif name in self._number_fields:
                job[name] = set_number(value)
            else:
                job[name] = value
        return {"job": job}

    def submitted_job_id(self, answer):
        job_id = answer.get("job_id")
        if job_id is None:
            job_id = (answer.get("result") or {}).get("job_id")
        return no_val_number(job_id)

    def parse_job(self, record):
        states = record.get("job_state") or []
        if isinstance(states, str):
            states = [states]
        base = states[0] if states else "UNKNOWN"
        exit_code = record.get("exit_code")
        code = signal = None
        if isinstance(exit_code, dict):
            code = no_val_number(exit_code.get("return_code"))
            signal = no_val_number((exit_code.get("signal") or {}).get("id"))
        elif isinstance(exit_code, int):  # raw wait status
            code, signal = (exit_code >> 8) & 0xFF, exit_code & 0x7F or None
        return SlurmJob(
            job_id=int(no_val_number(record.get("job_id"))),
            name=record.get("name") or "",
            job_state=base,
            state_flags=tuple(states[1:]),
            state_reason=record.get("state_reason"),
            state_description=record.get("state_description") or None,
            mcs_label=record.get("mcs_label") or "",
            exit_code=code,
            exit_signal=signal,
            submit_time=no_val_number(record.get("submit_time")),
            start_time=no_val_number(record.get("start_time")) or None,
            end_time=no_val_number(record.get("end_time")) or None,
            partition=record.get("partition") or None,
            user_name=record.get("user_name") or None,
            comment=_comment(record.get("comment")),
        )


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


#: version name -> adapter instance, oldest first
ADAPTERS = {cls.name: cls() for cls in (V0040, V0041, V0042)}


def adapter(name):
    """Return the adapter of a version name such as ``"v0.0.42"``.

    Raises:
        KeyError: naming the supported versions.
    """
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unsupported Slurm REST API version {name!r}; supported: {', '.join(ADAPTERS)}") from None
