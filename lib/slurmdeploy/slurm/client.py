"""The Slurm REST client (slurmrestd).

One :class:`SlurmClient` holds one ``requests.Session`` (keep-alive) and one token
source. Transport rules (``docs/design.md``, "Slurm REST transport"):

- connect/read timeouts on every request (seconds);
- urllib3 ``Retry`` with backoff for idempotent requests only (GET, DELETE) on
  connection errors and HTTP 502/503 (not 504: see :func:`build_session`); a submit (POST) is
  retried only when the
  connection could not be opened (nothing was sent), never blindly;
- on HTTP 401/403/511 - or, for GET and DELETE, 500 while the token is expired or about
  to be, or 500 whose only Slurm errors are -1/5005 (Slurm 22.05 answers an expired or
  invalid-signature token that way, see :data:`AUTH_500_ERRORS`) - the token source is
  invalidated and the request is sent exactly once more with a fresh token;
- a submit ends in a job id, :class:`~slurmdeploy.errors.SubmitRejected` (Slurm said no;
  may carry the id of a job Slurm created anyway) or
  :class:`~slurmdeploy.errors.SubmitOutcomeUnknown` (no usable answer: do not resubmit);
- an answer saying slurmctld did not answer slurmrestd in time (HTTP 504 or error 5004, or a
  5xx with only the errors a stalled slurmctld gives after :data:`CONTROLLER_SLOW_ANSWER`
  seconds or more) raises :class:`~slurmdeploy.errors.SlurmControllerUnavailable` and is
  never taken for a rejected token (Slurm 22.05 answers both with HTTP 500 and error -1;
  only the time tells them apart);
- every error is a :class:`~slurmdeploy.errors.SlurmAPIError` carrying HTTP status,
  method, endpoint, API version and Slurm's error numbers, never the token.

Version differences live in :mod:`slurmdeploy.slurm.versions`; this module only
moves requests and answers.
"""

import logging
import re
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_errors
from urllib3.util.retry import Retry

from slurmdeploy.errors import (AUTH_500_ERRORS, AUTH_STATUSES, CONTROLLER_SLOW_ANSWER,  # noqa: F401 - re-exported
                                STALLED_CONTROLLER_ERRORS, SUBMIT_UNKNOWN_STATUSES, SlurmAPIError, SlurmAuthError,
                                SlurmControllerUnavailable, controller_did_not_answer, error_from_answer,
                                slurm_error_numbers)
from slurmdeploy.slurm.endpoints import resolve
from slurmdeploy.slurm.versions import ADAPTERS, _version_key, adapter, no_val_number

LOG = logging.getLogger(__name__)

#: Slurm error number for "Invalid job id specified" (slurm_errno.h ESLURM_INVALID_JOB_ID).
ESLURM_INVALID_JOB_ID = 2017
#: Slurm error number for "Job/step already completing or completed" (slurm_errno.h
#: ESLURM_ALREADY_DONE): 24.11.5's v0.0.42 answers a cancel of a job that is already
#: CANCELLED or COMPLETING with HTTP 200 and this error per job in ``status``
#: (tests/fixtures/slurm/v0.0.42/cancel_cancelled.json)
ESLURM_ALREADY_DONE = 2021
#: :meth:`SlurmClient.cancel_job` answers
CANCEL_SENT, CANCEL_NOT_FOUND, CANCEL_ALREADY_ENDED = "cancelled", "not_found", "already_ended"
# AUTH_STATUSES, AUTH_500_ERRORS, STALLED_CONTROLLER_ERRORS, CONTROLLER_SLOW_ANSWER and
# SUBMIT_UNKNOWN_STATUSES live with the error tree (slurmdeploy.errors, error_from_answer)
#: how slurmrestd's openapi/slurmctld words a submit that slurmctld answered with a job id *and*
#: a non-zero error code (``resp_warn`` in ``_job_post_submit``, src/plugins/openapi/slurmctld/
#: jobs.c): the job exists but Slurm refused what it asked. Seen on Slurm 26.05.5 (every REST
#: version) for a job asking more CPUs than the partition has: HTTP 200, the job id, no
#: ``errors``, this warning with "Requested partition configuration not available now" (error
#: 2015 as text only), and the job stays PENDING (reason PartitionConfig) until cancelled.
SUBMIT_REFUSED_WARNING = "Job submission resulted in non-zero return code"
#: job ids per ``GET .../jobs/state/`` request (3,000 repeated ``job_id`` parameters were
#: answered fine by 24.11.5; chunks keep each URL well under common proxy limits of 8 KiB)
JOB_STATE_CHUNK = 500

#: a REST path's plugin and version, e.g. ``/slurm/v0.0.45/jobs/`` -> ``("slurm", "v0.0.45")``
#: (``slurm``: openapi/slurmctld; ``slurmdb``: openapi/slurmdbd, see slurm.endpoints)
_SLURM_PATH_VERSION = re.compile(r"^/(slurm|slurmdb)/(v\d+\.\d+\.\d+)/")

#: base URL -> REST API version detected in this process. Every StackStorm action runs in
#: a new process; the sensor and packrunner build many clients in one: probing once per
#: process and URL saves a request per action there. Dropped again when a request says
#: the version is gone (:meth:`SlurmClient.forget_api_version`).
_DETECTED_VERSIONS = {}


def build_session(retries=3, backoff_factor=0.2, verify=True):
    """Return a ``requests.Session`` with urllib3 retries for idempotent methods.

    Args:
        retries: total retries per request (connection errors and 502/503). Not 504:
            slurmrestd answers 504 (with Slurm error 5004) when slurmctld did not answer it
            within MessageTimeout (24.11.5, slurmctld stopped: ``GET /nodes`` took 10 s per
            try, 41 s with three retries); asking a stalled or overloaded slurmctld again at
            once only adds load, and the caller's next poll retries anyway.
        backoff_factor: urllib3 backoff factor (seconds; sleeps 0.2, 0.4, 0.8...).
        verify: True, False or a CA bundle path (``requests`` semantics).

    Returns:
        A session. ``trust_env`` is False so ``REQUESTS_CA_BUNDLE`` and proxy
        variables cannot silently override ``verify`` (``docs/design.md``, "Slurm REST transport").
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_factor,
        status_forcelist=(502, 503),
        allowed_methods=frozenset({"GET", "DELETE", "HEAD", "OPTIONS"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    adapter_ = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
    session.mount("http://", adapter_)
    session.mount("https://", adapter_)
    return session


def transport_problem(exc, timeout):
    """Say in words why a request got no answer (no URL, no headers: never the token).

    Args:
        exc: the ``requests.RequestException`` raised.
        timeout: the ``(connect, read)`` timeouts in seconds.

    Returns:
        e.g. ``"no answer within the read timeout (20 s)"``. requests reports a read
        timeout whose retries ran out as a ``ConnectionError`` wrapping urllib3's
        ``MaxRetryError``; its ``reason`` is the real cause.
    """
    reason = _cause(exc)
    if isinstance(reason, urllib3_errors.NewConnectionError):  # a ConnectTimeoutError subclass
        return "connection refused or host unreachable"
    if isinstance(reason, (requests.ConnectTimeout, urllib3_errors.ConnectTimeoutError)):
        return f"could not connect within the connect timeout ({timeout[0]} s)"
    if isinstance(reason, (requests.ReadTimeout, urllib3_errors.ReadTimeoutError)):
        return f"no answer within the read timeout ({timeout[1]} s)"
    if isinstance(reason, (requests.exceptions.SSLError, urllib3_errors.SSLError)):
        return "TLS verification failed (set ca_bundle to the CA that signed slurmrestd's certificate)"
    return type(reason).__name__


def _cause(exc):
    """The real cause of a ``requests`` exception (unwrapping urllib3's ``MaxRetryError``)."""
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, urllib3_errors.MaxRetryError) and inner.reason is not None:
        return inner.reason
    return exc


def request_not_sent(exc):
    """True when a ``requests`` exception proves nothing reached the server (the
    connection could not be opened: refused, unreachable, connect timeout)."""
    reason = _cause(exc)
    return isinstance(reason, (urllib3_errors.NewConnectionError, urllib3_errors.ConnectTimeoutError,
                               requests.ConnectTimeout))


class SlurmClient:
    """A client of slurmrestd for the operations the pack uses.

    Args:
        base_url: slurmrestd base URL, e.g. ``http://127.0.0.1:6820`` (no version path).
        token_source: a :class:`slurmdeploy.auth.TokenSource`.
        api_version: ``"auto"`` (probe the server, newest supported first) or one of
            :data:`slurmdeploy.slurm.versions.ADAPTERS`.
        verify: TLS verification: True, False or a CA bundle path.
        connect_timeout, read_timeout: seconds.
        retries: urllib3 retries for idempotent requests.
        session: an existing ``requests.Session`` to use instead of building one.
    """

    def __init__(
        self,
        base_url,
        token_source,
        api_version="auto",
        verify=True,
        connect_timeout=5.0,
        read_timeout=20.0,
        retries=3,
        session=None,
    ):
        self.base_url = base_url.rstrip("/")
        self.token_source = token_source
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or build_session(retries=retries, verify=verify)
        self._requested_version = api_version
        self._api = None if api_version == "auto" else adapter(api_version)
        #: requests sent and response bytes received by this client (for benchmarks and logs)
        self.stats = {"requests": 0, "bytes": 0}

    @classmethod
    def from_settings(cls, settings, token_source=None):
        """Build a client from :class:`slurmdeploy.settings.Settings`.

        Raises:
            ConfigurationError: ``slurm_url`` unset.
            MissingAuthEnvVar: no credentials configured.
        """
        from slurmdeploy.auth import token_source_from_settings

        return cls(
            settings.require_slurm_url(),
            token_source or token_source_from_settings(settings),
            api_version=settings.slurm_api_version,
            verify=settings.ca_bundle or settings.verify_tls,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )

    def __repr__(self):
        return f"SlurmClient({self.base_url!r}, api_version={self._requested_version!r}, auth={self.token_source.mode})"

    @property
    def user_name(self):
        """The Slurm user this client acts as, or None when unknown.

        It is the ``X-SLURM-USER-NAME`` every request carries (:mod:`slurmdeploy.auth`: the
        ``client_id`` setting, else the JWT's ``sun``/``username`` claim; with MSAL the
        token's ``sun``/``username`` claim, else ``client_id``, known for sure once a token
        was fetched). slurmctld accepts a request only when that name is the user the token
        authenticates (``auth_jwt.c``: another name is allowed only for SlurmUser/root
        tokens), and records it as the ``user_name``/``user_id`` of every job submitted with
        it. So a job whose ``user_name`` differs was not submitted by this client
        (README.md, "What the pack trusts").
        """
        return getattr(self.token_source, "user_name", None) or None

    # ------------------------------------------------------------------ version
    @property
    def api(self):
        """The version adapter in use (detected on first use when ``auto``, at most once per
        process and base URL)."""
        if self._api is None:
            name = _DETECTED_VERSIONS.get(self.base_url)
            if name is None:
                name = _DETECTED_VERSIONS[self.base_url] = self.detect_api_version()
            self._api = adapter(name)
        return self._api

    def forget_api_version(self):
        """Detect the version again on next use (``auto`` only): e.g. after slurmrestd was
        restarted with other plugins."""
        if self._requested_version == "auto":
            self._api = None
            _DETECTED_VERSIONS.pop(self.base_url, None)

    @property
    def api_version(self):
        """The REST API version name in use, e.g. ``"v0.0.42"``."""
        return self.api.name

    def detect_api_version(self):
        """Find the newest API version both the server and this library speak.

        Probes ``GET /slurm/<version>/ping`` newest first: slurmrestd answers 404 for a
        version whose plugin is not loaded, anything else means the version exists
        (``/ping`` answers even with a bad token on 24.11). One request when the
        server is current.

        Returns:
            A version name such as ``"v0.0.42"``.

        Raises:
            SlurmAPIError: no supported version answered, listing what was probed.
        """
        probed = []
        for name in reversed(list(ADAPTERS)):
            path = ADAPTERS[name].path("ping")
            try:
                self.stats["requests"] += 1
                answer = self.session.get(
                    self.base_url + path, headers=self.token_source.headers(), timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise error_from_answer(
                    None, message=f"cannot reach slurmrestd at {self.base_url}: {transport_problem(exc, self.timeout)}",
                    method="GET", endpoint=path, request_sent=not request_not_sent(exc)) from None
            probed.append(f"{name}: HTTP {answer.status_code}")
            if answer.status_code != 404:
                LOG.info("slurmrestd at %s speaks REST API %s", self.base_url, name)
                return name
        try:
            offered = ", ".join(self.offered_versions()) or "none"
        except SlurmAPIError:
            offered = "unknown (GET /openapi/v3 failed)"
        raise SlurmAPIError(
            f"slurmrestd at {self.base_url} speaks none of the supported REST API versions "
            f"({', '.join(ADAPTERS)}); it offers {offered} (probed {'; '.join(probed)}). Load a supported one "
            "(slurmrestd -s openapi/slurmctld with its data_parser plugin) or upgrade this pack"
        )

    # ---------------------------------------------------------------- transport
    #: the clock that times each answer (seconds); tests replaying recorded answers replace it
    clock = staticmethod(time.monotonic)

    def _send(self, method, path, body=None, params=None):
        """Send one request; returns the answer with ``answer.took`` (seconds, :attr:`clock`)."""
        headers = dict(self.token_source.headers())
        self.stats["requests"] += 1
        started = self.clock()
        answer = self.session.request(
            method, self.base_url + path, json=body, params=params, headers=headers, timeout=self.timeout
        )
        answer.took = self.clock() - started
        self.stats["bytes"] += len(answer.content)
        return answer

    def request(self, method, path, body=None, params=None, allow_statuses=()):
        """Send one request, refreshing the token once if slurmrestd rejects it.

        Args:
            method: HTTP method.
            path: path below the base URL, e.g. ``/slurm/v0.0.42/jobs``.
            body: JSON body or None.
            params: query parameters or None.
            allow_statuses: non-2xx statuses returned to the caller instead of raised.

        Returns:
            ``(status, decoded JSON body or {})``.

        Raises:
            SlurmControllerUnavailable: slurmctld did not answer slurmrestd in time
                (:func:`controller_did_not_answer`), whatever ``allow_statuses`` says.
            SlurmAuthError: the token was rejected twice (or could not be renewed).
            SlurmAPIError: connection failure, non-JSON answer, or an HTTP error status.
        """
        version = self._api.name if self._api else None
        where = dict(method=method, endpoint=path, api_version=version)
        try:
            answer = self._send(method, path, body, params)
            if self._auth_rejected(answer, method) and self.token_source.invalidate():
                LOG.info("slurmrestd rejected the %s token (HTTP %s); retrying once with a fresh one",
                         self.token_source.mode, answer.status_code)
                answer = self._send(method, path, body, params)
        except requests.RequestException as exc:
            raise error_from_answer(
                None, message=f"cannot reach slurmrestd at {self.base_url}: {transport_problem(exc, self.timeout)}",
                request_sent=not request_not_sent(exc), **where) from None
        try:
            data = answer.json() if answer.content else {}
        except ValueError:
            data = None
        if data is None or not isinstance(data, dict):
            if 200 <= answer.status_code < 300 or answer.status_code in allow_statuses:
                raise error_from_answer(None, message=f"slurmrestd answered HTTP {answer.status_code} with a body "
                                        "that is not a JSON object", **where)
            data = {}
        errors = data.get("errors") or []
        numbers = slurm_error_numbers(errors)
        if answer.status_code == 404 and not numbers:
            self._check_version_served(method, path, version)
        status = answer.status_code
        stalled = controller_did_not_answer(status, numbers, answer.took)
        rejected = not stalled and self._auth_rejected(answer, method)
        if stalled or rejected or not (200 <= status < 300 or status in allow_statuses):
            # a stalled controller and refused credentials are raised whatever allow_statuses says
            raise error_from_answer(status, errors, warnings=data.get("warnings"), took=answer.took,
                                    auth_rejected=rejected, credentials=self.token_source.mode, **where)
        return status, data

    def offered_versions(self, plugin="slurm"):
        """The REST API versions the server has loaded, read from ``GET /openapi/v3``
        (every path ``/<plugin>/<version>/...``; slurmrestd serves the document for the
        plugins it loaded, Slurm 22.05+).

        Args:
            plugin: ``"slurm"`` (slurmctld) or ``"slurmdb"`` (slurmdbd), as
                :attr:`slurmdeploy.slurm.endpoints.Endpoint.plugin`.

        Returns:
            Sorted version names, e.g. ``["v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45"]``
            (Slurm 26.05.5), possibly including versions this library does not speak.

        Raises:
            SlurmAPIError: the document could not be read.
        """
        _, data = self.request("GET", "/openapi/v3")
        found = set()
        for path in data.get("paths") or {}:
            match = _SLURM_PATH_VERSION.match(str(path))
            if match and match.group(1) == plugin:
                found.add(match.group(2))
        return sorted(found, key=_version_key)

    def _check_version_served(self, method, path, version):
        """After a 404 without Slurm error numbers (slurmrestd's plain-text "Unable to find
        requested URL endpoint"): raise when the path's REST version is not loaded by the
        server, naming the versions it offers; return when it is (the caller handles the 404).

        Raises:
            SlurmAPIError: e.g. "slurmrestd at URL does not serve Slurm REST API v0.0.45; it
                offers v0.0.40, v0.0.41, v0.0.42: set slurm_api_version to one of those or auto".
        """
        match = _SLURM_PATH_VERSION.match(path)
        if match is None:
            return
        plugin, wanted = match.groups()
        try:
            offered = self.offered_versions(plugin)
        except SlurmAPIError:
            offered = None
        if offered is not None and wanted in offered:
            return
        self.forget_api_version()
        spoken = [v for v in (offered or []) if v in ADAPTERS]
        server = {"slurm": "slurmctld", "slurmdb": "slurmdbd"}[plugin]
        offers = ", ".join(offered) if offered else f"no {server} REST API version (or GET /openapi/v3 failed)"
        raise error_from_answer(
            404, message=f"slurmrestd at {self.base_url} does not serve {'Slurm' if plugin == 'slurm' else 'slurmdbd'} REST API "
            f"{wanted} (its {'data_parser' if plugin == 'slurm' else 'openapi/slurmdbd'} plugin "
            f"is not loaded); it offers {offers}"
            + (f": set slurm_api_version to one of {', '.join(spoken)} or to auto" if spoken else
               f"; this library speaks {', '.join(ADAPTERS)}"),
            method=method, endpoint=path, api_version=version,
        )

    def _auth_rejected(self, answer, method):
        if answer.status_code in AUTH_STATUSES:
            return True
        # 22.05 answers an expired or unverifiable token with 500; a 500 to a submit may also
        # mean the job was accepted, so a POST is never sent again after a 500. A slow 500 is
        # a stalled slurmctld, not a rejected token (22.05 gives both the same body).
        if answer.status_code != 500 or method == "POST" or getattr(answer, "took", 0) >= CONTROLLER_SLOW_ANSWER:
            return False
        return self.token_source.expiring() or _only_auth_500_errors(answer)

    # --------------------------------------------------------------- operations
    def call(self, operation, body=None, params=None, allow_statuses=(), **path_params):
        """Send ``operation`` (a key of :data:`slurmdeploy.slurm.endpoints.ENDPOINTS`): its
        method and path come from that table, filled with the version in use and ``path_params``
        (URL-quoted).

        Args:
            operation: e.g. ``"job_get"``.
            body, params, allow_statuses: as :meth:`request`.
            path_params: the path's parameters, e.g. ``job_id=7``.

        Returns:
            ``(status, decoded JSON body or {})``.

        Raises:
            UnsupportedOperation: the REST version in use does not serve ``operation`` (nothing
                is sent).
            SlurmAPIError: as :meth:`request`.
        """
        method, path = self.endpoint(operation, **path_params)
        return self.request(method, path, body=body, params=params, allow_statuses=allow_statuses)

    def endpoint(self, operation, **path_params):
        """``(method, path)`` of ``operation`` in the REST version in use (see :meth:`call`)."""
        return resolve(operation, self.api.name, **path_params)

    def ping(self):
        """``GET /slurm/<v>/ping``. Returns the decoded answer (``pings`` list)."""
        return self.call("ping")[1]

    def diag(self):
        """``GET /slurm/<v>/diag``. Returns the decoded answer (``statistics``)."""
        return self.call("diag")[1]

    def submit_job(self, job_request):
        """Submit a batch job. Never retried once the request may have been sent.

        Args:
            job_request: a :class:`slurmdeploy.slurm.models.JobRequest`.

        Returns:
            The new job id (int).

        Raises:
            SlurmAuthError: the credentials were refused (HTTP 401/403/511): no job.
            SlurmAPIError: the connection could not be opened (nothing was sent): no job.
            SubmitRejected: Slurm answered and refused the job (errors attached, e.g. 2014
                node configuration not available, 2019 missing environment, 2099 bad
                mcs_label), or answered 2xx without a job id. ``job_id`` is set when Slurm
                created the job anyway (22.05: HTTP 200, a job id and error 2015; 26.05:
                HTTP 200, a job id and the warning ``SUBMIT_REFUSED_WARNING``): the
                caller must record and cancel that job.
            SubmitOutcomeUnknown: no usable answer (no answer, timeout, 408/429/502/503/504,
                a 5xx without a Slurm error or with only 22.05's -1/5005): the job may exist.
        """
        api = self.api
        method, path = self.endpoint("job_submit")
        where = dict(method=method, endpoint=path, api_version=api.name)
        try:
            status, data = self.request(method, path, body=api.submit_body(job_request),
                                        allow_statuses=range(300, 600))
        except SlurmAuthError:
            raise  # the credentials were refused: no job
        except SlurmControllerUnavailable as exc:  # slurmctld may still create the job
            raise error_from_answer(exc.status, exc.errors, took=exc.elapsed, submit=True,
                                    subject=f"job {job_request.name!r}", **where) from None
        except SlurmAPIError as exc:
            if not exc.request_sent or exc.status is not None:
                raise  # nothing was sent, or the REST version is not served (404): no job
            # no answer after sending, or a 2xx body that is not JSON
            raise error_from_answer(None, submit=True, message=str(exc), subject=f"job {job_request.name!r}",
                                    **where) from None
        job_id = api.submitted_job_id(data)
        errors, warnings = data.get("errors") or [], data.get("warnings")
        refused = [w for w in warnings or [] if str(w.get("description", "")).startswith(SUBMIT_REFUSED_WARNING)]
        if 200 <= status < 300 and job_id is not None and not errors and not refused:
            return job_id
        raise error_from_answer(status, errors, warnings=warnings, submit=True, job_id=job_id,
                                subject=f"job {job_request.name!r}", **where)

    def get_job(self, job_id):
        """Read one job by id (cost independent of the queue size).

        Returns:
            A :class:`slurmdeploy.slurm.models.SlurmJob`, or None when slurmctld does not
            know the id (see :meth:`job_record`).

        Raises:
            SlurmAPIError: any other failure.
        """
        record = self.job_record(job_id)
        return None if record is None else self.api.parse_job(record)

    def job_record(self, job_id):
        """One job's record as Slurm returns it (``GET /slurm/<v>/job/{job_id}``): the one place
        a job is read by id (:meth:`get_job`, ``SlurmOperations.get_job``).

        Returns:
            The record (a dict in the REST version's shape), or None when slurmctld does not
            know the id (error 2017: with 404 on 24.11, 500 on 22.05) - e.g. purged after
            ``MinJobAge``. A 404 without error 2017 raises.

        Raises:
            SlurmAPIError: any other failure.
        """
        api = self.api
        status, data = self.call("job_get", allow_statuses=(404, 500), job_id=int(job_id))
        if status in (404, 500) and ESLURM_INVALID_JOB_ID in slurm_error_numbers(data.get("errors")):
            return None
        if status in (404, 500):
            # a bare 404 is not "no such job" (e.g. the version's plugin is gone after a
            # slurmrestd restart): never let it read as a vanished job; detect the version again
            self.forget_api_version()
            raise error_from_answer(status, data.get("errors"), method="GET", job_id=int(job_id),
                                    endpoint=api.path("job_get", job_id=int(job_id)), api_version=api.name)
        for record in data.get("jobs") or []:
            if no_val_number(record.get("job_id")) == int(job_id):
                return record
        return None

    def job_states(self, job_ids):
        """The base states of the given jobs, at a cost independent of the queue size.

        v0.0.40+: ``GET .../jobs/state/?job_id=A&job_id=B...`` (ids and states only, about
        1.3 KiB and 2 ms per request on 24.11 whatever the queue holds), in chunks of
        :data:`JOB_STATE_CHUNK`; older versions have no such endpoint and read each job
        with ``GET .../job/{job_id}``.

        Args:
            job_ids: iterable of Slurm job ids.

        Returns:
            dict job_id (int) -> base job_state (str). Ids slurmctld does not know (never
            existed, or purged after ``MinJobAge``) are absent.

        Raises:
            SlurmAPIError: any failure.
        """
        ids = sorted({int(i) for i in job_ids})
        api = self.api
        out = {}
        if not api.supports("job_state_list"):
            for job_id in ids:
                job = self.get_job(job_id)
                if job is not None:
                    out[job.job_id] = job.job_state
            return out
        for start in range(0, len(ids), JOB_STATE_CHUNK):
            chunk = ids[start:start + JOB_STATE_CHUNK]
            # an empty query would list every job: never send one
            _, data = self.call("job_state_list", params=[("job_id", str(i)) for i in chunk])
            wanted = set(chunk)
            for record in data.get("jobs") or []:
                parsed = api.parse_job_state(record)
                if parsed is not None and parsed[0] in wanted:
                    out[parsed[0]] = parsed[1]
        return out

    def list_jobs(self):
        """List every job slurmctld holds (``GET /slurm/<v>/jobs``).

        Cost grows with the cluster's queue (~0.3 ms and ~7.7 KB per job on 24.11).

        Returns:
            A list of :class:`slurmdeploy.slurm.models.SlurmJob`.
        """
        api = self.api
        return [api.parse_job(record) for record in self.job_records()]

    def job_records(self):
        """Every job record slurmctld holds, as Slurm returns them (``GET /slurm/<v>/jobs``): the
        one place jobs are listed (:meth:`list_jobs`, ``SlurmOperations.list_jobs``)."""
        return self.call("job_list")[1].get("jobs") or []

    def find_jobs(self, mcs_label, name=None):
        """Jobs carrying ``mcs_label`` (and named ``name`` when given).

        Slurm does not filter listings by label, so this filters client-side.

        Returns:
            A list of :class:`slurmdeploy.slurm.models.SlurmJob`, oldest job id first.
        """
        jobs = [j for j in self.list_jobs() if j.mcs_label == mcs_label and (name is None or j.name == name)]
        return sorted(jobs, key=lambda j: j.job_id)

    def cancel_job(self, job_id, signal=None):
        """Cancel (or signal) a job: ``DELETE /slurm/<v>/job/{job_id}``.

        The caller must check the job's mcs_label and user first (see ``deployer.cancel``):
        on Slurm 24.11.5 a REST cancel that slurmctld refuses (another user's job) stalls
        slurmctld's job requests for every user (README.md, "What the pack trusts").

        Args:
            job_id: Slurm job id.
            signal: optional signal name such as ``"SIGTERM"`` (default: Slurm's SIGKILL).

        Returns:
            :data:`CANCEL_SENT` (``"cancelled"``) when Slurm accepted the request;
            :data:`CANCEL_NOT_FOUND` when it does not know the job (404, or error 2017 - per
            job in ``status`` on v0.0.42); :data:`CANCEL_ALREADY_ENDED` when Slurm answered
            error 2021 "Job/step already completing or completed" (v0.0.42 on 24.11.5, HTTP
            200: a second runner cancelling the same job) and a read-back of the job shows
            it ended or completing. v0.0.40/41 on 24.11 answer a bare 200 for an unknown id
            and for a job already cancelled (recorded), so there ``"cancelled"`` does not
            prove the job existed: read it first.

        Raises:
            SlurmAPIError: any other failure (also error 2021 when the read-back shows the
                job still running).
        """
        api = self.api
        params = {"signal": signal} if signal else None
        status, data = self.call("job_cancel", params=params, allow_statuses=(404, 500), job_id=int(job_id))
        numbers = slurm_error_numbers(data.get("errors")) + api.cancel_error_numbers(data)
        if ESLURM_INVALID_JOB_ID in numbers:
            return CANCEL_NOT_FOUND
        if ESLURM_ALREADY_DONE in numbers and set(numbers) <= {ESLURM_ALREADY_DONE}:
            job = self.get_job(job_id)  # Slurm's answer alone does not say the job ended: read it back
            if job is None:
                return CANCEL_NOT_FOUND
            if job.finished or job.job_state == "COMPLETING" or "COMPLETING" in job.state_flags:
                LOG.info("Slurm job %s was already %s when cancelled (error %s: %s)", job_id,
                         "/".join((job.job_state,) + tuple(job.state_flags)), ESLURM_ALREADY_DONE,
                         "Job/step already completing or completed")
                return CANCEL_ALREADY_ENDED
        if status in (404, 500) or numbers:
            raise error_from_answer(status, data.get("errors"), message=f"Slurm refused to cancel job {job_id}",
                                    method="DELETE", endpoint=api.path("job_cancel", job_id=int(job_id)),
                                    api_version=api.name, job_id=int(job_id))
        return CANCEL_SENT



def _only_auth_500_errors(answer):
    """True when an HTTP 500 answer's Slurm errors are all in :data:`AUTH_500_ERRORS`."""
    try:
        data = answer.json()
    except ValueError:
        return False
    numbers = set(slurm_error_numbers(data.get("errors") if isinstance(data, dict) else None))
    return bool(numbers) and numbers <= AUTH_500_ERRORS
