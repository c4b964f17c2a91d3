"""Token sources for slurmrestd.

A token source gives the HTTP headers that authenticate one request and can be
told that its token was rejected. Two exist, tried in this order (the original
deployer's order, see ``docs/auth.md`` of the project's shared facts):

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
import json
import threading
import time

from slurmdeploy.errors import ConfigurationError, MissingAuthEnvVar, SlurmAuthError

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

    def headers(self):
        """Return the auth headers for one request (dict of str -> str)."""
        raise NotImplementedError

    def invalidate(self):
        """Forget the current token after slurmrestd rejected it.

        Returns:
            True when a different token can be obtained (a retry makes sense).
        """
        return False

    def expiring(self, margin=EXPIRY_MARGIN):
        """True when the current token's ``exp`` is less than ``margin`` seconds away."""
        return False


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

    def expiring(self, margin=EXPIRY_MARGIN):
        return self.expires_at is not None and self.expires_at - time.time() < margin

    def __repr__(self):
        return f"StaticJWT(user_name={self.user_name!r}, token=********)"


class MsalClientCredentials(TokenSource):
    """JWTs from MSAL's client-credentials flow (``acquire_token_for_client``).

    One ``msal.ConfidentialClientApplication`` is kept for the life of this object,
    so MSAL's token cache is reused; a token is fetched again when less than
    :data:`EXPIRY_MARGIN` seconds are left or after :meth:`invalidate`.

    Args:
        authority: ``SDP_SLURMDEPLOY_AZURE_URL``, e.g.
            ``https://login.microsoftonline.com/<tenant>`` or any https OIDC
            authority (instance discovery is switched off for non-Azure hosts).
        client_id: the application (client) id; also the Slurm user name
            (Entra tokens carry no ``sun``; such clusters use ``userclaimfield=azp``).
        client_secret: the client secret (secret; never logged).
        scope: e.g. ``api://<app>/.default`` (default ``api://<client_id>/.default``).
        verify: True, False or a CA bundle path for TLS to the authority.

    Raises:
        ConfigurationError: when msal is not installed.
    """

    mode = "jwks"

    def __init__(self, authority, client_id, client_secret, scope=None, verify=True):
        try:
            import msal
            import requests
        except ImportError as exc:  # pragma: no cover - msal is in requirements.txt
            raise ConfigurationError(f"MSAL auth needs the 'msal' package: {exc}") from None
        self.user_name = client_id
        self.scopes = [scope or f"api://{client_id}/.default"]
        # requests lets REQUESTS_CA_BUNDLE override Session.verify: trust_env=False keeps ours.
        http = requests.Session()
        http.trust_env = False
        http.verify = verify
        azure = "login.microsoftonline.com" in authority or "login.microsoft.com" in authority
        self._app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=client_secret,
            authority=authority.rstrip("/"),
            instance_discovery=azure,
            http_client=http,
        )
        self._lock = threading.Lock()
        self._token = None
        self.expires_at = None

    def _acquire(self):
        result = self._app.acquire_token_for_client(scopes=self.scopes)
        if "access_token" not in result:
            raise SlurmAuthError(
                "MSAL could not obtain a token for the Slurm REST API: "
                f"{result.get('error', 'unknown error')}: {result.get('error_description', '')}".strip()
            )
        self._token = result["access_token"]
        exp = jwt_claims(self._token).get("exp")
        self.expires_at = exp if isinstance(exp, (int, float)) else time.time() + float(result.get("expires_in", 300))

    def headers(self):
        with self._lock:
            if self._token is None or self.expiring():
                self._drop_cached_tokens()
                self._acquire()
            return {"X-SLURM-USER-NAME": self.user_name, "X-SLURM-USER-TOKEN": self._token}

    def _drop_cached_tokens(self):
        # msal's force_refresh raises for client credentials; removing cached access
        # tokens is the documented way to make acquire_token_for_client fetch anew.
        cache = self._app.token_cache
        for item in list(cache.find(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(item)
        self._token = None

    def invalidate(self):
        with self._lock:
            self._drop_cached_tokens()
        return True

    def expiring(self, margin=EXPIRY_MARGIN):
        return self.expires_at is not None and self.expires_at - time.time() < margin

    def __repr__(self):
        return f"MsalClientCredentials(client_id={self.user_name!r}, scopes={self.scopes!r})"


def token_source_from_settings(settings):
    """Pick the token source the settings configure: static JWT first, then MSAL.

    Args:
        settings: a :class:`slurmdeploy.settings.Settings`.

    Returns:
        A :class:`TokenSource`.

    Raises:
        MissingAuthEnvVar: when neither mode is fully configured (names the settings).
    """
    if settings.slurm_jwt:
        return StaticJWT(settings.slurm_jwt, settings.client_id)
    if settings.azure_url and settings.client_id and settings.client_secret:
        verify = settings.ca_bundle or settings.verify_tls
        return MsalClientCredentials(
            settings.azure_url, settings.client_id, settings.client_secret, settings.token_scope, verify
        )
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
