"""Errors raised by the slurmdeploy library, and how actions report them.

Every message names what was wrong and how to fix it. No message ever contains a
token, client secret or password: constructors take only non-secret facts.

The tree (README.md, "Errors")::

    SlurmDeployError
    ├── ConfigurationError ── MissingAuthEnvVar
    ├── InvalidDeployment
    ├── ConfigDBError
    └── SlurmAPIError                    slurmrestd failed, refused, or could not be reached
        ├── BadRequest                   invalid input (checked here, or HTTP 400/422)
        ├── NotFound                     no such job/node/partition/reservation (error 2017...)
        ├── SlurmAuthError               credentials refused (401/403/511, error 1007...)
        ├── SlurmControllerUnavailable   slurmctld busy/stalled/down (504, error 5004, slow 5xx)
        ├── WriteOutcomeUnknown          a write got no usable answer: read back before retrying
        │   └── SubmitOutcomeUnknown     ... a job submission: never submit again blindly
        ├── SubmitRejected               Slurm answered a submission and said no
        └── UnsupportedOperation         the REST version in use does not serve the operation

Every :class:`SlurmAPIError` made from an answer of slurmrestd (or its absence) is made by
:func:`error_from_answer`, the one place that reads HTTP status and Slurm's error numbers (in
the model of hvac's ``VaultError.from_status`` and ``hvac.utils.raise_for_error``, which map
Vault's HTTP statuses to exception classes). :func:`action_error` turns any of them into the
result every action of the pack fails with.
"""


class SlurmDeployError(Exception):
    """Base class of every error raised by this library."""


class ConfigurationError(SlurmDeployError):
    """A setting is missing or invalid (pack config or environment variable)."""


class MissingAuthEnvVar(ConfigurationError):
    """Neither a static JWT nor MSAL client credentials are configured.

    Name kept from the original SKA deployer (``MissingAuthEnvVar``).
    """

    def __init__(self, detail=""):
        msg = (
            "no Slurm REST credentials configured: for a static JWT set client_id (env "
            "SDP_SLURMDEPLOY_CLIENT_ID) and either slurm_jwt_key (the StackStorm datastore key holding the "
            "JWT, recommended) or slurm_jwt (env SDP_SLURMDEPLOY_SLURM_JWT); for MSAL client credentials "
            "(JWKS) set azure_url, client_id and either client_secret_key or client_secret (env "
            "SDP_SLURMDEPLOY_AZURE_URL, SDP_SLURMDEPLOY_CLIENT_ID, SDP_SLURMDEPLOY_CLIENT_SECRET)"
        )
        super().__init__(msg + (f" ({detail})" if detail else ""))


class InvalidDeployment(SlurmDeployError):
    """A deployment's args cannot be turned into a Slurm job.

    The message is written to the deployment's ``error_state``; it names the
    deployment key and the offending field.
    """

    def __init__(self, key, problem):
        self.key = key
        self.problem = problem
        super().__init__(f"deployment {key!r}: {problem}")


class ConfigDBError(SlurmDeployError):
    """The Configuration Database (etcd) could not be read or written."""


def _error_number(err):
    """One Slurm error's number: ``error_number``, ``error_code`` (some versions) or ``errno``
    (Slurm 22.05's ``GET /slurm/v0.0.38/nodes`` answers ``{"error": "Unspecified error",
    "errno": -1}``, recorded in tests/fixtures/slurm/v0.0.38/nodes_bad_signature.json)."""
    for key in ("error_number", "error_code", "errno"):
        if key in err:
            return err[key]
    return None


def slurm_error_numbers(errors):
    """The ints among the error numbers (``error_number``, ``error_code`` or ``errno``) of
    Slurm's ``errors`` list (a list of dicts, or None)."""
    out = []
    for err in errors or []:
        number = _error_number(err) if isinstance(err, dict) else None
        if isinstance(number, int):
            out.append(number)
    return out


class SlurmAPIError(SlurmDeployError):
    """slurmrestd answered with an error, or could not be reached.

    Attributes:
        status: HTTP status code (int) or None when no answer was received.
        method, endpoint: the request, e.g. ``"POST"``, ``"/slurm/v0.0.42/job/submit"``.
        api_version: the REST API version used, e.g. ``"v0.0.42"``.
        errors: Slurm's ``errors`` list (dicts with ``error_number``/``error_code``,
            ``error``, ``description``, ``source``), possibly empty.
        warnings: Slurm's ``warnings`` list (dicts with ``description``, ``source``):
            24.11 explains a body it could not parse there, with HTTP 200 and no job id.
        request_sent: False only when nothing reached slurmrestd (the connection could not be
            opened, or the error was found before sending: bad input, unsupported operation),
            so the request may be sent again safely; True otherwise.
        job_id: the Slurm job id concerned, or None.
    """

    def __init__(self, message, status=None, method=None, endpoint=None, api_version=None, errors=None,
                 warnings=None, request_sent=True, job_id=None):
        self.status = status
        self.method = method
        self.endpoint = endpoint
        self.api_version = api_version
        self.errors = list(errors or [])
        self.warnings = list(warnings or [])
        self.request_sent = request_sent
        self.job_id = job_id
        parts = [message]
        if method and endpoint:
            parts.append(f"request {method} {endpoint}")
        if status is not None:
            parts.append(f"HTTP {status}")
        for err in self.errors:
            number = _error_number(err)
            text = err.get("description") or err.get("error") or ""
            parts.append(f"slurm error {number}: {text}".strip())
        for warning in self.warnings:
            where = f" at {warning['source']}" if warning.get("source") else ""
            parts.append(f"slurm warning{where}: {warning.get('description') or warning}")
        super().__init__("; ".join(parts))

    @property
    def error_numbers(self):
        """Slurm error numbers (ints) reported in ``errors``."""
        return slurm_error_numbers(self.errors)

    def details(self):
        """The non-secret facts of this error for an action result (see :func:`action_error`):
        ``{"http_status", "slurm_errors" (numbers), "method", "endpoint", "api_version",
        "request_sent", "job_id"}``, None values left out."""
        facts = {"http_status": self.status, "slurm_errors": self.error_numbers or None, "method": self.method,
                 "endpoint": self.endpoint, "api_version": self.api_version, "request_sent": self.request_sent,
                 "job_id": self.job_id}
        return {k: v for k, v in facts.items() if v is not None}


class BadRequest(SlurmAPIError):
    """The request cannot be right: this library found it wrong before sending anything
    (``request_sent`` False; the message says which argument and how to fix it), or slurmrestd
    answered HTTP 400/422 (Slurm's own words attached: e.g. 22.05's 400 + 2127 "environment must
    be set", 26.05's 422 + 2053 "Start time cannot be after end time", 422 + 2058 "overlaps with
    another reservation"), or accepted the request while ignoring a field it does not know
    (24.11: HTTP 200 and a warning "Ignoring unknown field").

    What to do: fix the input; sending it again unchanged fails again.
    """

    def __init__(self, message, request_sent=False, **kwargs):
        super().__init__(message, request_sent=request_sent, **kwargs)


class NotFound(SlurmAPIError):
    """slurmctld does not know the named job, node, partition or reservation: Slurm error 2017
    "Invalid job id specified" (HTTP 404 on 24.11+, 500 on 22.05; finished jobs are forgotten
    after MinJobAge) or 2000 "Invalid partition name specified", or a listing without that name
    (nodes, partitions and reservations are matched by name: slurmrestd answers some unknown
    names with other records, see :mod:`slurmdeploy.slurm.operations`).

    What to do: check the name or id (``squeue -j``, ``sinfo``, ``scontrol show res``).
    """

    def __init__(self, message, request_sent=True, **kwargs):
        super().__init__(message, request_sent=request_sent, **kwargs)


class SlurmAuthError(SlurmAPIError):
    """slurmrestd rejected the credentials (HTTP 401/403/511 or error 1007 "Protocol
    authentication error"; on Slurm 22.05 an HTTP 500 for an expired token, or with error -1 or
    5005 within milliseconds for a token it cannot verify, see ``slurm.client``). Raised after the
    token was renewed once and refused again.

    What to do: check the token (``slurm_jwt_key``, client credentials) and the Slurm user name.
    """


class SlurmControllerUnavailable(SlurmAPIError):
    """slurmrestd answered, but slurmctld did not answer slurmrestd in time: slurmctld is busy,
    stalled or down (not a credentials problem: the token may be fine).

    Seen in the testbed with slurmctld stopped by SIGSTOP (tests/integration/test_operations.py,
    recorded in tests/fixtures/slurm/*/stalled_*.json): after slurmctld's ``MessageTimeout``
    (10 s by default) slurmrestd answers HTTP 500 with error -1 "Unspecified error" (GET, both
    22.05 and 24.11: on 22.05 the very answer it gives a bad token at once), 1000 "Unexpected
    message received" (POST), 5004 "Socket timed out on send/recv operation" (22.05 DELETE), 1
    "Operation not permitted" (24.11 DELETE), or HTTP 504 with error 5004 (24.11 GET /jobs,
    /nodes, /diag). ``elapsed`` says how long slurmrestd took (seconds).

    What to do: retry later; if it lasts, check slurmctld (``scontrol ping``, its log, the
    host's load). A write answered so may still be applied when slurmctld wakes up: read it
    back. A submit answered this way is reported as :class:`SubmitOutcomeUnknown` instead (the
    job may exist).
    """

    def __init__(self, message, elapsed=None, **kwargs):
        self.elapsed = elapsed
        super().__init__(message, **kwargs)

    def details(self):
        return dict(super().details(), elapsed=self.elapsed) if self.elapsed is not None else super().details()


class WriteOutcomeUnknown(SlurmAPIError):
    """A write (POST, DELETE) was sent but no usable answer came back (timeout, connection
    reset after sending, a body that is not JSON): Slurm may or may not have applied it.

    What to do: read the object back before writing again.
    """


class SubmitOutcomeUnknown(WriteOutcomeUnknown):
    """A job submission whose outcome is unknown: no answer (timeout, connection reset),
    a gateway/overload status (408, 429, 502, 503, 504), a 5xx without a Slurm error, or
    Slurm 22.05's HTTP 500 with error -1/5005 (what it answers when slurmctld dropped the
    request, e.g. for a token it could not verify).

    Slurm may have created the job: never submit again blindly. The deployer keeps its
    claim on the deployment until the claim's lease expires, so the next attempt finds the
    job (by its deployment marker) and adopts it, or submits when there is none.
    """


class SubmitRejected(SlurmAPIError):
    """Slurm answered a job submission and said no (its ``errors`` attached).

    Attributes:
        job_id: the job id Slurm returned anyway, or None. Slurm 22.05 answers e.g. a job
            that asks for more CPUs than the partition has with HTTP 200, a job id and error
            2015 (``Requested partition configuration not available now``): that job exists
            and stays PENDING until cancelled, so the caller must record and cancel it.
    """

    def __init__(self, message, job_id=None, **kwargs):
        if job_id is not None:
            message = f"{message} (Slurm created it anyway as job {job_id})"
        super().__init__(message, job_id=job_id, **kwargs)


class UnsupportedOperation(SlurmAPIError):
    """The Slurm REST API version in use does not serve an operation (found before sending).

    Attributes:
        operation: the operation name (a key of ``slurm.endpoints.ENDPOINTS``).
        api_version: the version in use; needs_slurm, needs_api: what serves it.
    """

    def __init__(self, operation, endpoint, api_version, needs_slurm, needs_api, spoken=True):
        self.operation = operation
        self.needs_slurm = needs_slurm
        self.needs_api = needs_api
        msg = (f"{operation} ({endpoint}) is not supported by Slurm REST {api_version}, "
               f"needs Slurm >= {needs_slurm} (REST {needs_api})")
        if not spoken:
            msg += f"; this pack does not speak REST {needs_api} yet, so no configured version can do it"
        super().__init__(msg, api_version=api_version, request_sent=False)


# ------------------------------------------------------------------ from an answer

#: HTTP statuses that mean "the credentials were rejected" (24.11 answers 511, 25.11 401).
AUTH_STATUSES = frozenset({401, 403, 511})
#: Slurm error "Protocol authentication error" (slurm_errno.h SLURM_PROTOCOL_AUTHENTICATION_ERROR):
#: 24.11+ answers a token slurmctld cannot verify with it (and HTTP 511).
ESLURM_AUTH_ERROR = 1007
#: Slurm error numbers that say the named object does not exist (slurm_errno.h): 2017
#: ESLURM_INVALID_JOB_ID (recorded: job_unknown.json, delete_unknown.json), 2000
#: ESLURM_INVALID_PARTITION_NAME (22.05.8, an unknown partition; README "Operations").
NOT_FOUND_ERRORS = frozenset({2017, 2000})
#: HTTP statuses slurmrestd gives a request it found invalid (22.05: 400 + 2127/9001 for a
#: submit without environment; 26.05: 422 + 2127, 2053, 2058 - recorded)
INVALID_STATUSES = frozenset({400, 422})
#: HTTP statuses of a submit after which Slurm may or may not have created the job.
SUBMIT_UNKNOWN_STATUSES = frozenset({408, 429, 502, 503, 504})
#: Slurm error numbers of an HTTP 500 from Slurm 22.05 (v0.0.38) whose request slurmctld
#: dropped (checked on 22.05.8 with an invalid signature, a wrong user name and an expired
#: token): -1 "Unspecified error" (GET), 5005 "Zero Bytes were transmitted or received"
#: (DELETE, POST). 24.11 answers 511 with 1007.
AUTH_500_ERRORS = frozenset({-1, 5005})
#: Slurm error number "Socket timed out on send/recv operation" (slurm_errno.h
#: SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT): slurmctld did not answer slurmrestd in time.
ESLURM_SOCKET_TIMEOUT = 5004
#: Slurm error numbers of a 5xx answer slurmrestd gives when slurmctld did not answer it
#: within slurmctld's MessageTimeout (seen with slurmctld stopped by SIGSTOP, 22.05.8 and
#: 24.11.5, tests/fixtures/slurm/*/stalled_*.json): -1 (GET), 1000 "Unexpected message
#: received" (POST), 5004 (22.05 DELETE, 24.11 GET /jobs /nodes /diag), 1 "Operation not
#: permitted" (24.11 DELETE).
STALLED_CONTROLLER_ERRORS = frozenset({-1, 1, 1000, ESLURM_SOCKET_TIMEOUT, 5005})
#: seconds: a 5xx with only :data:`STALLED_CONTROLLER_ERRORS` that took at least this long
#: means slurmctld did not answer in time. slurmrestd reports a token slurmctld rejects within
#: milliseconds (22.05.8: 13-24 ms for GET /ping, /job/1, /diag, POST /job/1 in the testbed)
#: but a stalled slurmctld only after MessageTimeout (10 s by default, 20 s for GET /job/{id}).
CONTROLLER_SLOW_ANSWER = 2.0
#: how slurmrestd 24.11 words a field it ignored (HTTP 200): "Ignoring unknown field ..."
IGNORED_FIELD_WARNING = "unknown field"
#: methods that change something in Slurm
WRITE_METHODS = frozenset({"POST", "DELETE"})


def controller_did_not_answer(status, numbers, took):
    """Whether an answer of slurmrestd says slurmctld did not answer it in time.

    Args:
        status: HTTP status.
        numbers: the answer's Slurm error numbers (:func:`slurm_error_numbers`).
        took: seconds between sending the request and the answer (None: unknown).

    Returns:
        True for HTTP 504 or error 5004 (unless error 1007 says the credentials were
        rejected), and for a 5xx whose errors are all in :data:`STALLED_CONTROLLER_ERRORS`
        (or none) that took :data:`CONTROLLER_SLOW_ANSWER` seconds or more. Any other answer
        (e.g. 500 + 2017 "Invalid job id" from a slow but working slurmctld) is Slurm's own.
    """
    if status is None or ESLURM_AUTH_ERROR in numbers or status < 500:
        return False
    if status == 504 or ESLURM_SOCKET_TIMEOUT in numbers:
        return True
    return (took or 0) >= CONTROLLER_SLOW_ANSWER and set(numbers) <= STALLED_CONTROLLER_ERRORS


def ignored_fields(warnings):
    """The warnings of an answer that say slurmrestd ignored a field it does not know."""
    return [w for w in warnings or [] if IGNORED_FIELD_WARNING in str(w.get("description", "")).lower()]


def error_from_answer(status, errors=None, *, method=None, endpoint=None, api_version=None, warnings=None,
                      took=None, request_sent=True, auth_rejected=False, submit=False, job_id=None, message=None,
                      subject=None, credentials=None):
    """The one place that turns an answer of slurmrestd (or its absence) into an error.

    In order (the first rule that matches decides):

    ===============================================  =============================================
    answer                                           error
    ===============================================  =============================================
    none, nothing sent                               :class:`SlurmAPIError` (``request_sent`` False)
    none after sending (timeout, reset, not JSON)    a submit :class:`SubmitOutcomeUnknown`, another
                                                     write :class:`WriteOutcomeUnknown`, a read
                                                     :class:`SlurmAPIError`
    504, 5004, or a slow 5xx of stall errors         a submit :class:`SubmitOutcomeUnknown` (unless
    (:func:`controller_did_not_answer`)              Slurm gave a job id), else
                                                     :class:`SlurmControllerUnavailable`
    401/403/511, error 1007, or ``auth_rejected``    :class:`SlurmAuthError`
    a submit without job id: 408/429/502/503/504,    :class:`SubmitOutcomeUnknown`
    or 5xx with no error or only -1/5005
    any other submit answer                          :class:`SubmitRejected` (with Slurm's job id)
    error 2017 or 2000                               :class:`NotFound`
    400/422, or a warning "unknown field"            :class:`BadRequest`
    anything else                                    :class:`SlurmAPIError`
    ===============================================  =============================================

    Args:
        status: HTTP status, or None when no answer came.
        errors, warnings: Slurm's ``errors`` and ``warnings`` lists of the answer.
        method, endpoint, api_version: the request (never a URL with credentials).
        took: seconds slurmrestd took to answer.
        request_sent: False when the connection could not be opened (nothing was sent).
        auth_rejected: the caller's verdict that the token was refused where only the token's
            state tells (22.05's quick HTTP 500, ``slurm.client``).
        submit: the request was a job submission (``job_submit``).
        job_id: the job id concerned (for a submit: the id Slurm returned despite refusing).
        message: the first words of the message (default: what the type says).
        subject: what was submitted, e.g. ``"job 'sdp-x'"``, for a submit's default messages.
        credentials: the kind of credentials sent (``"jwt"``, ``"msal"``), for the auth message.

    Returns:
        The error (not raised), all of it under :class:`SlurmAPIError`.
    """
    numbers = slurm_error_numbers(errors)
    where = dict(status=status, method=method, endpoint=endpoint, api_version=api_version, errors=errors,
                 warnings=warnings, request_sent=request_sent)
    write = method in WRITE_METHODS
    subject = subject or "the job"
    what = f"submitting {subject}" if submit else f"the request {method} {endpoint}" if method else "the request"
    if status is None:
        if not request_sent:
            return SlurmAPIError(message or "cannot reach slurmrestd (nothing was sent)", job_id=job_id, **where)
        if submit:
            return SubmitOutcomeUnknown(f"{message or 'no usable answer'}: the outcome of {what} is unknown; "
                                        "the job may exist (never submit again blindly)", **where)
        if write:
            return WriteOutcomeUnknown(f"{message or 'no usable answer'}: Slurm may or may not have applied "
                                       f"{what}; read it back before writing again", job_id=job_id, **where)
        return SlurmAPIError(message or "no usable answer from slurmrestd", job_id=job_id, **where)
    if controller_did_not_answer(status, numbers, took) and not (submit and job_id is not None):
        text = (f"slurmctld did not answer slurmrestd in time (slurmrestd answered after {took or 0:.1f} s): "
                "slurmctld is busy, stalled or down, the credentials were not checked; retry later, and if it "
                "lasts check slurmctld (scontrol ping, its log)")
        if submit:
            return SubmitOutcomeUnknown(f"{text}; the outcome of {what} is unknown (the job may exist)", **where)
        return SlurmControllerUnavailable(message or text, elapsed=round(took or 0, 3), job_id=job_id, **where)
    if status in AUTH_STATUSES or ESLURM_AUTH_ERROR in numbers or auth_rejected:
        return SlurmAuthError(message or f"slurmrestd rejected the {credentials or 'REST'} credentials; check the token "
                              "(slurm_jwt_key / SDP_SLURMDEPLOY_SLURM_JWT or the client credentials) and the Slurm "
                              "user name", job_id=job_id, **where)
    if submit:
        if job_id is None and (status in SUBMIT_UNKNOWN_STATUSES
                               or (status >= 500 and (not numbers or set(numbers) <= AUTH_500_ERRORS))):
            return SubmitOutcomeUnknown(message or f"the outcome of {what} is unknown", **where)
        return SubmitRejected(message or f"Slurm did not accept {subject}", job_id=job_id, **where)
    if set(numbers) & NOT_FOUND_ERRORS:
        return NotFound(message or "Slurm does not know it", job_id=job_id, **where)
    if status in INVALID_STATUSES or ignored_fields(warnings):
        return BadRequest(message or "Slurm refused the request as invalid", job_id=job_id, **where)
    return SlurmAPIError(message or "slurmrestd returned an error", job_id=job_id, **where)


# ------------------------------------------------------------------ action results

def action_error(exc):
    """The result every action of the pack fails with: ``(False, action_error(exc))``.

    StackStorm's python runner keeps the result of a returned ``(False, result)`` and marks
    the execution failed; a raised exception leaves only a traceback on stderr and the result
    ``None`` (``contrib/runners/python_runner/python_runner/python_runner.py``,
    ``_get_output_values``), which no rule or workflow can branch on.

    Args:
        exc: a :class:`SlurmDeployError`.

    Returns:
        ``{"error": message, "error_type": class name (e.g. "SlurmControllerUnavailable"),
        "error_types": its classes up to SlurmDeployError, most specific first}`` plus, for a
        :class:`SlurmAPIError`, :meth:`SlurmAPIError.details`; for :class:`InvalidDeployment`
        the deployment ``key``. Never a secret (messages carry none).
    """
    types = [c.__name__ for c in type(exc).__mro__ if issubclass(c, SlurmDeployError)]
    out = {"error": str(exc), "error_type": type(exc).__name__, "error_types": types}
    if isinstance(exc, SlurmAPIError):
        out.update(exc.details())
    if getattr(exc, "key", None) is not None:
        out["key"] = exc.key
    return out


def reports_errors(run):
    """Decorate an action's ``run`` so that a :class:`SlurmDeployError` fails the execution
    with :func:`action_error`'s result instead of a traceback; any other exception (a bug)
    still raises. Applied once by the pack's action bases (``actions/lib``)."""
    import functools

    @functools.wraps(run)
    def wrapper(self, *args, **kwargs):
        try:
            return run(self, *args, **kwargs)
        except SlurmDeployError as exc:
            logger = getattr(self, "logger", None)
            if logger is not None:
                logger.error("%s: %s", type(exc).__name__, exc)
            return False, action_error(exc)

    wrapper.reports_errors = True
    return wrapper


class ReportsErrors:
    """Mixin of the pack's action bases (``actions/lib``): the ``run`` of every subclass is
    wrapped by :func:`reports_errors`, so all actions report errors the same way without a
    line in each action."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not getattr(run, "reports_errors", False):
            cls.run = reports_errors(run)
