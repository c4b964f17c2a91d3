"""Token sources for slurmrestd.

A token source gives the HTTP headers that authenticate one request and can be
told that its token was rejected. Two exist, tried in this order (the original
deployer's order, see ``docs/design.md``, "Authentication"):

1. :class:`StaticJWT` - ``slurm_jwt`` (+ ``client_id`` as the Slurm user name);
   e.g. minted by ``scontrol token``.
2. :class:`MsalClientCredentials` - a JWT from Azure Entra (or any OIDC authority)
   obtained with MSAL's client-credentials flow; slurmctld checks it against the
   tenant's JWKS.

Headers: ``X-SLURM-USER-NAME`` + ``X-SLURM-USER-TOKEN``. Slurm 22.05 needs both
(401 otherwise) and does not accept ``Authorization: Bearer``; 23.02+ accept the
token alone, so sending both works everywhere.
"""

import base64
import hashlib
import json
import logging
import threading
import time
from urllib.parse import urlsplit

from slurmdeploy.errors import ConfigurationError, MissingAuthEnvVar, SlurmAuthError

LOG = logging.getLogger(__name__)

#: A token this close to its ``exp`` (seconds) counts as expiring.
EXPIRY_MARGIN = 30.0


def jwt_claims(token):
    """Decode a JWT's claims without verifying it (only slurmctld can verify).

    Args:
        token: a compact JWS string ``header.payload.signature``.

    Returns:
        The claims dict, or ``{}`` when the token is not a decodable JWT.
    """
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError, UnicodeError):
        return {}


class TokenSource:
    """Interface of a token source (see module docs)."""

    #: "jwt" or "jwks": shown in logs and results instead of the token.
    mode = "none"
    #: Seconds before ``exp`` from which the token counts as expiring (:meth:`expiring`).
    expiry_margin = EXPIRY_MARGIN
    #: The token's ``exp`` (Unix time, seconds), None when unknown.
    expires_at = None

    def headers(self):
        """Return the auth headers for one request (dict of str -> str)."""
        raise NotImplementedError

    def invalidate(self):
        """Forget the current token after slurmrestd rejected it.

        Returns:
            True when a different token can be obtained (a retry makes sense).
        """
        return False

    def expiring(self, margin=None):
        """True when the current token's ``exp`` is less than ``margin`` seconds away.

        Args:
            margin: seconds; default :attr:`expiry_margin`.

        Returns:
            False when the expiry is unknown.
        """
        margin = self.expiry_margin if margin is None else margin
        return self.expires_at is not None and self.expires_at - time.time() < margin


class StaticJWT(TokenSource):
    """A fixed JWT (``SDP_SLURMDEPLOY_SLURM_JWT``) for a Slurm user.

    Args:
        token: the JWT (secret; never logged; ``repr`` hides it).
        user_name: the Slurm user (``SDP_SLURMDEPLOY_CLIENT_ID``); when None, the
            token's ``sun`` claim (set by ``scontrol token``) is used.

    Raises:
        ConfigurationError: when no user name is given and the token has no ``sun``.
    """

    mode = "jwt"

    def __init__(self, token, user_name=None):
        self._token = token.strip()
        claims = jwt_claims(self._token)
        self.user_name = user_name or claims.get("sun") or claims.get("username")
        if not self.user_name:
            raise ConfigurationError(
                "client_id (env SDP_SLURMDEPLOY_CLIENT_ID) must name the Slurm user of slurm_jwt: "
                "the token carries no 'sun' claim"
            )
        self.expires_at = claims.get("exp") if isinstance(claims.get("exp"), (int, float)) else None

    def headers(self):
        return {"X-SLURM-USER-NAME": self.user_name, "X-SLURM-USER-TOKEN": self._token}

    def __repr__(self):
        return f"StaticJWT(user_name={self.user_name!r}, token=********)"


class MsalClientCredentials(TokenSource):
    """JWTs from MSAL's client-credentials flow (``acquire_token_for_client``).

    One ``msal.ConfidentialClientApplication`` is kept for the life of this object
    (created on first use, so an unreachable authority fails a request, not the set-up);
    a token is fetched again when less than ``expiry_margin`` seconds are left or after
    :meth:`invalidate`. MSAL's own cache does not help here: it never caches tokens living
    300 s or less and renews cached ones 300 s before expiry (msal >= 1.23, ``docs/design.md``), so
    cached tokens are removed before each fetch.

    Slurm user name (``X-SLURM-USER-NAME``): slurmctld maps a JWT to the user in its
    ``sun`` claim, else ``username``, else the ``AuthAltParameters`` ``userclaimfield``
    claim (auth_jwt.c), and with 24.11 refuses a request whose header names another user
    ("attempt to authenticate as alternate user"). So the header carries the token's
    ``sun`` (else ``username``) claim, and ``client_id`` when the token has neither - the
    Entra case: Entra tokens carry no ``sun`` and such clusters set ``userclaimfield=azp``
    (v2 tokens) or ``appid`` (v1), both of which hold the client id.

    Args:
        authority: ``SDP_SLURMDEPLOY_AZURE_URL``, e.g.
            ``https://login.microsoftonline.com/<tenant>`` or any https OIDC authority
            serving ``<authority>/v2.0/.well-known/openid-configuration`` (instance
            discovery is switched off for hosts other than Azure's login hosts).
        client_id: the application (client) id.
        client_secret: the client secret (secret; never logged, never in errors or ``repr``).
        scope: e.g. ``api://<app>/.default`` (default ``api://<client_id>/.default``).
        verify: True, False or a CA bundle path for TLS to the authority; applied through
            a ``requests.Session`` with ``trust_env=False`` because ``REQUESTS_CA_BUNDLE``
            would otherwise override it (``docs/design.md``).
        expiry_margin: seconds before ``exp`` at which the token is renewed before use
            (default :data:`EXPIRY_MARGIN`). A negative value keeps using a token past its
            ``exp`` (what a client whose clock lags behind slurmctld's does), which leaves
            renewal to the retry after slurmctld rejects it.

    Raises:
        ConfigurationError: when msal is not installed.
    """

    mode = "jwks"

    def __init__(self, authority, client_id, client_secret, scope=None, verify=True, expiry_margin=EXPIRY_MARGIN):
        try:
            import msal  # noqa: F401
            import requests  # noqa: F401
        except ImportError as exc:  # pragma: no cover - msal is in requirements.txt
            raise ConfigurationError(f"MSAL auth needs the 'msal' package: {exc}") from None
        self.authority = authority.rstrip("/")
        self.client_id = client_id
        self.user_name = client_id
        self.scopes = [scope or f"api://{client_id}/.default"]
        self.verify = verify
        self.expiry_margin = float(expiry_margin)
        self._client_secret = client_secret
        self._app = None
        self._lock = threading.Lock()
        self._token = None
        self.expires_at = None
        #: Tokens obtained from the authority so far, and tokens dropped after slurmrestd
        #: rejected them (:meth:`invalidate`): counts for logs and tests, never the tokens.
        self.tokens_fetched = 0
        self.invalidations = 0

    def _application(self):
        if self._app is None:
            import msal
            import requests

            host = urlsplit(self.authority).hostname or ""
            azure = host in ("login.microsoftonline.com", "login.microsoft.com") or host.endswith(".microsoftonline.com")
            http = requests.Session()
            http.trust_env = False  # REQUESTS_CA_BUNDLE would override Session.verify (docs/design.md)
            http.verify = self.verify
            # the constructor already reads the authority's discovery document
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._client_secret,
                authority=self.authority,
                instance_discovery=azure,
                http_client=http,
            )
        return self._app

    def _acquire(self):
        import requests

        try:
            result = self._application().acquire_token_for_client(scopes=self.scopes)
        except (requests.RequestException, ValueError) as exc:
            # unreachable authority, TLS failure, or no discovery document (msal raises ValueError)
            raise SlurmAuthError(
                f"MSAL could not reach the authority {self.authority} for a Slurm REST API token: "
                f"{type(exc).__name__}: {_first_line(exc)}", request_sent=False  # nothing reached slurmrestd
            ) from None
        if "access_token" not in result:
            raise SlurmAuthError(
                f"MSAL could not obtain a token for the Slurm REST API from {self.authority} "
                f"(client_id {self.client_id}, scope {' '.join(self.scopes)}): "
                f"{result.get('error', 'unknown error')}: {_first_line(result.get('error_description', ''))}",
                request_sent=False,  # nothing reached slurmrestd
            )
        self.tokens_fetched += 1
        self._token = result["access_token"]
        claims = jwt_claims(self._token)
        self.user_name = claims.get("sun") or claims.get("username") or self.client_id
        exp = claims.get("exp")
        self.expires_at = exp if isinstance(exp, (int, float)) else time.time() + float(result.get("expires_in", 300))
        LOG.debug("MSAL token for Slurm user %s from %s, expires in %.0f s",
                  self.user_name, self.authority, self.expires_at - time.time())

    def headers(self):
        """Headers with a token valid for at least ``expiry_margin`` more seconds.

        Returns:
            ``{"X-SLURM-USER-NAME": <sun/username claim or client_id>, "X-SLURM-USER-TOKEN": <JWT>}``.

        Raises:
            SlurmAuthError: MSAL could not get a token (wrong secret, unknown scope,
                authority unreachable or untrusted); the message never holds the secret.
        """
        with self._lock:
            if self._token is None or self.expiring():
                self._drop_cached_tokens()
                self._acquire()
            return {"X-SLURM-USER-NAME": self.user_name, "X-SLURM-USER-TOKEN": self._token}

    def _drop_cached_tokens(self):
        # msal's force_refresh raises for client credentials; removing cached access
        # tokens is the documented way to make acquire_token_for_client fetch anew.
        if self._app is not None:
            cache = self._app.token_cache
            search = getattr(cache, "search", None) or cache.find  # older msal has only find (now deprecated)
            for item in list(search(cache.CredentialType.ACCESS_TOKEN)):
                cache.remove_at(item)
        self._token = None

    def invalidate(self):
        """Forget the current token; the next :meth:`headers` fetches a new one. Returns True."""
        with self._lock:
            self._drop_cached_tokens()
            self.invalidations += 1
        return True

    def __repr__(self):
        return f"MsalClientCredentials(authority={self.authority!r}, client_id={self.client_id!r}, scopes={self.scopes!r})"


def _first_line(value):
    text = str(value or "").strip()
    return text.splitlines()[0] if text else ""


#: MSAL token sources of this process, shared by every Deployer built from the same settings
#: (the sensor and the actions of one runner process): one MSAL application and one token.
_MSAL_SOURCES = {}
_MSAL_SOURCES_LOCK = threading.Lock()


def token_source_from_settings(settings):
    """Pick the token source the settings configure: static JWT first, then MSAL.

    MSAL sources are shared within the process: settings with the same authority, client id,
    secret, scope, TLS verification and expiry margin get the same
    :class:`MsalClientCredentials` (one MSAL application, one token, refreshed before expiry)
    however many deployers are built - e.g. one per action execution in a local runner.

    Args:
        settings: a :class:`slurmdeploy.settings.Settings`.

    Returns:
        A :class:`TokenSource`.

    Raises:
        MissingAuthEnvVar: when neither mode is fully configured (names the settings).
        ConfigurationError: the static JWT names no user (see :class:`StaticJWT`).
    """
    if settings.slurm_jwt:
        return StaticJWT(settings.slurm_jwt, settings.client_id)
    if settings.azure_url and settings.client_id and settings.client_secret:
        verify = settings.ca_bundle or settings.verify_tls
        key = (settings.azure_url.rstrip("/"), settings.client_id,
               hashlib.sha256(settings.client_secret.encode()).hexdigest(),
               settings.token_scope, verify, settings.token_expiry_margin)
        with _MSAL_SOURCES_LOCK:
            source = _MSAL_SOURCES.get(key)
            if source is None:
                source = _MSAL_SOURCES[key] = MsalClientCredentials(
                    settings.azure_url, settings.client_id, settings.client_secret, settings.token_scope, verify,
                    expiry_margin=settings.token_expiry_margin,
                )
        return source
    missing = [
        name
        for name, value in (
            ("azure_url", settings.azure_url),
            ("client_id", settings.client_id),
            ("client_secret", settings.client_secret),
        )
        if not value
    ]
    raise MissingAuthEnvVar("missing: slurm_jwt, or " + ", ".join(missing))
