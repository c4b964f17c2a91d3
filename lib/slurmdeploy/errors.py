"""Errors raised by the slurmdeploy library.

Every message names what was wrong and how to fix it. No message ever contains a
token, client secret or password: constructors take only non-secret facts.
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
    """

    def __init__(self, message, status=None, method=None, endpoint=None, api_version=None, errors=None,
                 warnings=None):
        self.status = status
        self.method = method
        self.endpoint = endpoint
        self.api_version = api_version
        self.errors = list(errors or [])
        self.warnings = list(warnings or [])
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


class SlurmAuthError(SlurmAPIError):
    """slurmrestd rejected the credentials (HTTP 401/403/511; on Slurm 22.05 an HTTP 500 for an
    expired token, or with error -1 or 5005 for a token it cannot verify, see ``slurm.client``)."""


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
    host's load). A submit answered this way is reported as
    :class:`SubmitOutcomeUnknown` instead (the job may exist).
    """

    def __init__(self, message, elapsed=None, **kwargs):
        self.elapsed = elapsed
        super().__init__(message, **kwargs)


class SubmitOutcomeUnknown(SlurmAPIError):
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
        self.job_id = job_id
        if job_id is not None:
            message = f"{message} (Slurm created it anyway as job {job_id})"
        super().__init__(message, **kwargs)


class UnsupportedOperation(SlurmDeployError):
    """The Slurm REST API version in use does not serve an operation.

    Attributes:
        operation: the operation name (a key of ``slurm.versions.ENDPOINTS``).
        api_version: the version in use; needs_slurm, needs_api: what serves it.
    """

    def __init__(self, operation, endpoint, api_version, needs_slurm, needs_api, spoken=True):
        self.operation = operation
        self.api_version = api_version
        self.needs_slurm = needs_slurm
        self.needs_api = needs_api
        msg = (f"{operation} ({endpoint}) is not supported by Slurm REST {api_version}, "
               f"needs Slurm >= {needs_slurm} (REST {needs_api})")
        if not spoken:
            msg += f"; this pack does not speak REST {needs_api} yet, so no configured version can do it"
        super().__init__(msg)


class NotFound(SlurmDeployError):
    """slurmctld does not know the named job, node, partition or reservation."""


class BadRequest(SlurmDeployError):
    """An operation was given arguments it cannot use (the message says which and how to fix them)."""
