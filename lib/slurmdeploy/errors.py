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


def slurm_error_numbers(errors):
    """The ints among the ``error_number`` (``error_code`` in some versions) fields of
    Slurm's ``errors`` list (a list of dicts, or None)."""
    out = []
    for err in errors or []:
        number = err.get("error_number", err.get("error_code"))
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
            number = err.get("error_number", err.get("error_code"))
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
