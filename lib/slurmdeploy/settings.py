"""Settings of the deployer: the pack config, with the original deployer's environment
variables as fallbacks.

Resolution order for every setting (design.md): an explicit pack-config value
(not None, not ``""``) wins; else the environment variable; else the default.
``config.schema.yaml`` therefore declares no ``default`` for env-backed settings
(StackStorm would fill it in and hide the environment variable).

Environment variable names and defaults are the SKA deployer's
(``SDP_SLURMDEPLOY_*``, ``SDP_LOG_LEVEL``) and ska-sdp-config's (``SDP_CONFIG_*``).
"""

import os
from dataclasses import dataclass, field, fields
from typing import Optional

from slurmdeploy.errors import ConfigurationError
from slurmdeploy.slurm.versions import ADAPTERS

#: Job environment variables of the deployer's process copied into every job,
#: with the prefix removed (``SDP_SLURM_ENV_FOO=1`` -> ``FOO=1``).
JOB_ENV_PREFIX = "SDP_SLURM_ENV_"

#: Slurm REST API versions this library speaks (an adapter each in slurm/versions.py), oldest first.
SUPPORTED_API_VERSIONS = tuple(ADAPTERS)

DEFAULT_JOB_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# (setting name, environment variable, default, kind). kind: str|int|float|bool|dict
_SPEC = (
    ("slurm_url", "SDP_SLURMDEPLOY_SLURM_URL", None, "str"),
    ("slurm_api_version", "SDP_SLURMDEPLOY_SLURM_API_VERSION", "auto", "str"),
    ("client_id", "SDP_SLURMDEPLOY_CLIENT_ID", None, "str"),
    ("slurm_jwt", "SDP_SLURMDEPLOY_SLURM_JWT", None, "str"),
    ("azure_url", "SDP_SLURMDEPLOY_AZURE_URL", None, "str"),
    ("client_secret", "SDP_SLURMDEPLOY_CLIENT_SECRET", None, "str"),
    ("token_scope", "SDP_SLURMDEPLOY_TOKEN_SCOPE", None, "str"),
    ("token_expiry_margin", "SDP_SLURMDEPLOY_TOKEN_EXPIRY_MARGIN", 30.0, "float"),
    ("release_name", "SDP_SLURMDEPLOY_RELEASE_NAME", "slurm-deployer", "str"),
    ("namespace", "SDP_SLURMDEPLOY_NAMESPACE", "sdp", "str"),
    ("loop_interval", "SDP_SLURMDEPLOY_LOOP_INTERVAL", 60, "int"),
    ("resync_interval", "SDP_SLURMDEPLOY_RESYNC_INTERVAL", 600, "int"),
    ("liveness_file", "SDP_SLURMDEPLOY_LIVENESS_FILE", "/tmp/alive", "str"),
    ("log_level", "SDP_LOG_LEVEL", "INFO", "str"),
    ("verify_tls", "SDP_SLURMDEPLOY_VERIFY_TLS", True, "bool"),
    ("ca_bundle", "SDP_SLURMDEPLOY_CA_BUNDLE", None, "str"),
    ("connect_timeout", "SDP_SLURMDEPLOY_CONNECT_TIMEOUT", 5.0, "float"),
    ("read_timeout", "SDP_SLURMDEPLOY_READ_TIMEOUT", 20.0, "float"),
    ("claim_ttl", "SDP_SLURMDEPLOY_CLAIM_TTL", 60, "int"),
    ("job_working_directory", "SDP_SLURMDEPLOY_JOB_WORKING_DIRECTORY", "/tmp", "str"),
    ("job_partition", "SDP_SLURMDEPLOY_JOB_PARTITION", None, "str"),
    ("job_environment", None, None, "dict"),
    ("config_backend", "SDP_CONFIG_BACKEND", "etcd3", "str"),
    ("config_host", "SDP_CONFIG_HOST", "127.0.0.1", "str"),
    ("config_port", "SDP_CONFIG_PORT", 2379, "int"),
    ("config_protocol", "SDP_CONFIG_PROTOCOL", "http", "str"),
    ("config_cert", "SDP_CONFIG_CERT", None, "str"),
    ("config_username", "SDP_CONFIG_USERNAME", None, "str"),
    ("config_password", "SDP_CONFIG_PASSWORD", None, "str"),
    ("config_prefix", "SDP_CONFIG_PREFIX", "", "str"),
)

#: Settings that are credentials: never logged, never in payloads or results.
SECRET_SETTINGS = frozenset({"slurm_jwt", "client_secret", "config_password"})

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name, env_name, value, kind):
    source = f"setting {name!r}" + (f" (env {env_name})" if env_name else "")
    if kind == "str":
        return str(value)
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise ConfigurationError(f"{source} must be a number, got a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{source} must be a number, got {value!r}") from None
        if kind == "int":
            if number != int(number):
                raise ConfigurationError(f"{source} must be a whole number, got {value!r}")
            return int(number)
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigurationError(f"{source} must be true or false, got {value!r}")
    if kind == "dict":
        if not isinstance(value, dict):
            raise ConfigurationError(f"{source} must be a mapping of NAME: value")
        return {str(k): str(v) for k, v in value.items()}
    raise AssertionError(kind)


@dataclass(frozen=True)
class Settings:
    """Resolved deployer settings. Build with :meth:`from_config`.

    Times are in seconds. ``repr()`` masks every secret setting.
    """

    slurm_url: Optional[str] = None
    slurm_api_version: str = "auto"
    client_id: Optional[str] = None
    slurm_jwt: Optional[str] = field(default=None, repr=False)
    azure_url: Optional[str] = None
    client_secret: Optional[str] = field(default=None, repr=False)
    token_scope: Optional[str] = None
    token_expiry_margin: float = 30.0
    release_name: str = "slurm-deployer"
    namespace: str = "sdp"
    loop_interval: int = 60
    #: seconds between two full listings of Slurm's jobs by the sensor (orphans, duplicates)
    resync_interval: int = 600
    liveness_file: str = "/tmp/alive"
    log_level: str = "INFO"
    verify_tls: bool = True
    ca_bundle: Optional[str] = None
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    claim_ttl: int = 60
    job_working_directory: str = "/tmp"
    job_partition: Optional[str] = None
    job_environment: dict = field(default_factory=dict)
    config_backend: str = "etcd3"
    config_host: str = "127.0.0.1"
    config_port: int = 2379
    config_protocol: str = "http"
    config_cert: Optional[str] = None
    config_username: Optional[str] = None
    config_password: Optional[str] = field(default=None, repr=False)
    config_prefix: str = ""
    #: ``SDP_SLURM_ENV_<NAME>`` variables of the deployer's environment, prefix removed.
    env_job_environment: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config=None, environ=None):
        """Resolve settings from a pack config and the environment.

        Args:
            config: the pack config dict (StackStorm ``self.config``); may be None.
                Unknown keys are ignored (StackStorm validated them already).
            environ: the environment mapping (default ``os.environ``).

        Returns:
            A :class:`Settings`.

        Raises:
            ConfigurationError: a value has the wrong type, or ``config_backend``
                is not ``etcd3``, naming the setting and its environment variable.
        """
        config = dict(config or {})
        environ = os.environ if environ is None else environ
        values = {}
        for name, env_name, default, kind in _SPEC:
            value = config.get(name)
            if value is None or value == "":
                value = environ.get(env_name) if env_name else None
                if value == "":
                    value = None
            values[name] = default if value is None else _coerce(name, env_name, value, kind)
        values["env_job_environment"] = {
            k[len(JOB_ENV_PREFIX):]: v
            for k, v in sorted(environ.items())
            if k.startswith(JOB_ENV_PREFIX) and len(k) > len(JOB_ENV_PREFIX)
        }
        if values["job_environment"] is None:
            values["job_environment"] = {}
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self):
        """Check values that do not depend on which action runs.

        Raises:
            ConfigurationError: naming the setting and the accepted values.
        """
        if self.config_backend != "etcd3":
            raise ConfigurationError(
                f"config_backend (env SDP_CONFIG_BACKEND) must be 'etcd3', got {self.config_backend!r}; "
                "the pack talks to the Configuration Database in etcd"
            )
        if self.config_protocol not in ("http", "https"):
            raise ConfigurationError(
                f"config_protocol (env SDP_CONFIG_PROTOCOL) must be http or https, got {self.config_protocol!r}"
            )
        if self.slurm_api_version != "auto" and self.slurm_api_version not in SUPPORTED_API_VERSIONS:
            raise ConfigurationError(
                f"slurm_api_version (env SDP_SLURMDEPLOY_SLURM_API_VERSION) must be 'auto' or one of "
                f"{', '.join(SUPPORTED_API_VERSIONS)}, got {self.slurm_api_version!r}"
            )
        if self.token_expiry_margin < 0:
            raise ConfigurationError(
                f"token_expiry_margin (env SDP_SLURMDEPLOY_TOKEN_EXPIRY_MARGIN) must be 0 or more seconds, "
                f"got {self.token_expiry_margin:g}"
            )
        for name in ("loop_interval", "claim_ttl", "resync_interval"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1 second, got {getattr(self, name)}")
        if self.claim_ttl <= self.connect_timeout + self.read_timeout:
            raise ConfigurationError(
                f"claim_ttl ({self.claim_ttl} s) must be longer than connect_timeout + read_timeout "
                f"({self.connect_timeout + self.read_timeout:g} s): a submission claim must outlive a submit request"
            )

    @property
    def mcs_label(self):
        """The label on every job of this deployer: ``sdp_slurm_deployer_{release_name}_{namespace}``."""
        return f"sdp_slurm_deployer_{self.release_name}_{self.namespace}"

    def require_slurm_url(self):
        """Return ``slurm_url`` without a trailing slash.

        Raises:
            ConfigurationError: when it is not set, naming both ways to set it.
        """
        if not self.slurm_url:
            raise ConfigurationError(
                "slurm_url is not set: put the slurmrestd base URL (e.g. http://slurm-rest:6820) in the "
                "pack config or in SDP_SLURMDEPLOY_SLURM_URL"
            )
        return self.slurm_url.rstrip("/")

    def public_dict(self):
        """All settings as a dict with secrets replaced by ``"********"`` (for logs and results)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "********" if (f.name in SECRET_SETTINGS and value) else value
        return out
