"""Settings of the deployer: the pack config, with the original deployer's environment
variables as fallbacks.

Resolution order for every setting: an explicit pack-config value (not None, not ``""``)
wins; for a secret, then the StackStorm datastore key its ``*_key`` setting names; else the
environment variable; else the default.
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

#: Python logging levels accepted by ``log_level`` / ``SDP_LOG_LEVEL``.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Setting kind -> the ``type`` config.schema.yaml declares for it.
SCHEMA_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object"}


def setting(env=None, default=None, kind="str", minimum=None, choices=None, secret=False, datastore_key=None):
    """Declare one setting: the single place its environment variable, default, kind and bounds live.

    ``tests/unit/test_settings_declaration.py`` checks that config.schema.yaml and the README's
    configuration table agree with these declarations.

    Args:
        env: the environment variable read when the pack config leaves the setting unset
            (None: no environment fallback).
        default: the value when neither the config nor the environment sets it (seconds for times).
        kind: ``str``, ``int``, ``float``, ``bool`` or ``dict`` (config.schema.yaml: see :data:`SCHEMA_TYPES`).
        minimum: the smallest accepted number (inclusive), or None.
        choices: the accepted values, or None.
        secret: a credential: ``secret: true`` in config.schema.yaml, masked in ``repr`` and
            :meth:`Settings.public_dict`.
        datastore_key: for a secret, the setting naming a StackStorm datastore key to read it from
            at run time instead (see :meth:`Settings.from_config`).

    Returns:
        a :func:`dataclasses.field` carrying the declaration in its ``metadata``.
    """
    meta = {"env": env, "kind": kind, "minimum": minimum, "choices": tuple(choices) if choices else None,
            "secret": secret, "datastore_key": datastore_key}
    if kind == "dict":
        return field(default_factory=dict, metadata=meta)
    return field(default=default, repr=not secret, metadata=meta)


def declarations():
    """``{setting name: metadata}`` of every declared setting, in declaration order (each metadata
    dict has ``env``, ``kind``, ``minimum``, ``choices``, ``secret``, ``datastore_key`` and
    ``default``; ``default`` is ``{}`` for ``job_environment``)."""
    out = {}
    for f in fields(Settings):
        if "kind" in f.metadata:
            out[f.name] = dict(f.metadata, default={} if f.metadata["kind"] == "dict" else f.default)
    return out


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


def _unset(value):
    return value is None or value == ""


@dataclass(frozen=True)
class Settings:
    """Resolved deployer settings. Build with :meth:`from_config`.

    Each field is declared once with :func:`setting` (environment variable, default, kind, bounds).
    Times are in seconds. ``repr()`` masks every secret setting.
    """

    slurm_url: Optional[str] = setting("SDP_SLURMDEPLOY_SLURM_URL")
    slurm_api_version: str = setting("SDP_SLURMDEPLOY_SLURM_API_VERSION", "auto",
                                     choices=("auto",) + SUPPORTED_API_VERSIONS)
    client_id: Optional[str] = setting("SDP_SLURMDEPLOY_CLIENT_ID")
    slurm_jwt: Optional[str] = setting("SDP_SLURMDEPLOY_SLURM_JWT", secret=True, datastore_key="slurm_jwt_key")
    slurm_jwt_key: Optional[str] = setting()
    azure_url: Optional[str] = setting("SDP_SLURMDEPLOY_AZURE_URL")
    client_secret: Optional[str] = setting("SDP_SLURMDEPLOY_CLIENT_SECRET", secret=True,
                                           datastore_key="client_secret_key")
    client_secret_key: Optional[str] = setting()
    token_scope: Optional[str] = setting("SDP_SLURMDEPLOY_TOKEN_SCOPE")
    token_expiry_margin: float = setting("SDP_SLURMDEPLOY_TOKEN_EXPIRY_MARGIN", 30.0, "float", minimum=0)
    release_name: str = setting("SDP_SLURMDEPLOY_RELEASE_NAME", "slurm-deployer")
    namespace: str = setting("SDP_SLURMDEPLOY_NAMESPACE", "sdp")
    loop_interval: int = setting("SDP_SLURMDEPLOY_LOOP_INTERVAL", 60, "int", minimum=1)
    #: seconds between polls of the node-state sensor; 0 turns it off
    node_poll_interval: int = setting("SDP_SLURMDEPLOY_NODE_POLL_INTERVAL", 60, "int", minimum=0)
    #: seconds between two listings of the whole cluster by the deployment sensor (orphans,
    #: duplicates); between them it asks Slurm only about the jobs it tracks
    resync_interval: int = setting("SDP_SLURMDEPLOY_RESYNC_INTERVAL", 600, "int", minimum=1)
    #: the deployment sensor dispatches job_accounted once a deployer job's accounting record is
    #: complete (needs slurmdbd and slurmrestd's slurmdbd plugin; slurmdeploy.accounted)
    accounted_trigger: bool = setting("SDP_SLURMDEPLOY_ACCOUNTED_TRIGGER", False, "bool")
    liveness_file: str = setting("SDP_SLURMDEPLOY_LIVENESS_FILE", "/tmp/alive")
    log_level: str = setting("SDP_LOG_LEVEL", "INFO", choices=LOG_LEVELS)
    verify_tls: bool = setting("SDP_SLURMDEPLOY_VERIFY_TLS", True, "bool")
    ca_bundle: Optional[str] = setting("SDP_SLURMDEPLOY_CA_BUNDLE")
    connect_timeout: float = setting("SDP_SLURMDEPLOY_CONNECT_TIMEOUT", 5.0, "float", minimum=0.1)
    read_timeout: float = setting("SDP_SLURMDEPLOY_READ_TIMEOUT", 20.0, "float", minimum=0.1)
    claim_ttl: int = setting("SDP_SLURMDEPLOY_CLAIM_TTL", 60, "int", minimum=1)
    job_working_directory: str = setting("SDP_SLURMDEPLOY_JOB_WORKING_DIRECTORY", "/tmp")
    job_partition: Optional[str] = setting("SDP_SLURMDEPLOY_JOB_PARTITION")
    job_environment: dict = setting(kind="dict")
    config_backend: str = setting("SDP_CONFIG_BACKEND", "etcd3", choices=("etcd3",))
    config_host: str = setting("SDP_CONFIG_HOST", "127.0.0.1")
    config_port: int = setting("SDP_CONFIG_PORT", 2379, "int", minimum=1)
    config_protocol: str = setting("SDP_CONFIG_PROTOCOL", "http", choices=("http", "https"))
    config_cert: Optional[str] = setting("SDP_CONFIG_CERT")
    config_username: Optional[str] = setting("SDP_CONFIG_USERNAME")
    config_password: Optional[str] = setting("SDP_CONFIG_PASSWORD", secret=True, datastore_key="config_password_key")
    config_password_key: Optional[str] = setting()
    config_prefix: str = setting("SDP_CONFIG_PREFIX", "")
    #: ``SDP_SLURM_ENV_<NAME>`` variables of the deployer's environment, prefix removed.
    env_job_environment: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config=None, environ=None, get_secret=None):
        """Resolve settings from a pack config, the StackStorm datastore and the environment.

        Each setting: the pack config value if given (not None, not ``""``); for a secret
        (``slurm_jwt``, ``client_secret``, ``config_password``) then the datastore key its
        ``*_key`` setting names, read with ``get_secret``; then its environment variable; then
        its default.

        Args:
            config: the pack config dict (StackStorm ``self.config``); may be None.
                Unknown keys are ignored (StackStorm validated them already).
            environ: the environment mapping (default ``os.environ``).
            get_secret: ``name -> str or None``, reading a datastore key (StackStorm actions:
                ``action_service.get_value(name, local=False, decrypt=True)``; the sensor:
                ``sensor_service.get_value(...)``). None: a ``*_key`` setting is an error.

        Returns:
            A :class:`Settings`.

        Raises:
            ConfigurationError: a value has the wrong type or is out of bounds, a secret is set
                both directly and by datastore key, or a datastore key is missing or empty,
                naming the setting and its environment variable (never a secret's value).
        """
        config = dict(config or {})
        environ = os.environ if environ is None else environ
        decl = declarations()
        values = {}
        for name, d in decl.items():
            value = config.get(name)
            key_setting = d["datastore_key"]
            datastore_key = config.get(key_setting) if key_setting else None
            if not _unset(datastore_key):
                if not _unset(value):
                    raise ConfigurationError(
                        f"set either {name} or {key_setting} (the datastore key holding it) in the pack config, "
                        "not both")
                value = cls._read_datastore(name, key_setting, str(datastore_key), get_secret)
            if _unset(value):
                value = environ.get(d["env"]) if d["env"] else None
            if _unset(value):
                values[name] = d["default"]
                continue
            values[name] = _coerce(name, d["env"], value, d["kind"])
        values["env_job_environment"] = {
            k[len(JOB_ENV_PREFIX):]: v
            for k, v in sorted(environ.items())
            if k.startswith(JOB_ENV_PREFIX) and len(k) > len(JOB_ENV_PREFIX)
        }
        settings = cls(**values)
        settings.validate()
        return settings

    @staticmethod
    def _read_datastore(name, key_setting, datastore_key, get_secret):
        where = f"{key_setting} names datastore key {datastore_key!r} for {name}"
        if get_secret is None:
            raise ConfigurationError(f"{where}, but no datastore is available here; set {name} instead")
        value = get_secret(datastore_key)
        if _unset(value):
            raise ConfigurationError(
                f"{where}, but that key is missing or empty: store it with "
                f"`st2 key set {datastore_key} <value> --encrypt` (system scope)")
        return value

    def validate(self):
        """Check the declared bounds and choices, and values that depend on each other.

        Raises:
            ConfigurationError: naming the setting, its environment variable and the accepted values.
        """
        for name, d in declarations().items():
            value = getattr(self, name)
            where = name + (f" (env {d['env']})" if d["env"] else "")
            if d["choices"] and value not in d["choices"]:
                raise ConfigurationError(f"{where} must be one of {', '.join(d['choices'])}, got {value!r}")
            if d["minimum"] is not None and value < d["minimum"]:
                raise ConfigurationError(f"{where} must be at least {d['minimum']:g}, got {value:g}")
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


#: Settings that are credentials: never logged, never in payloads or results.
SECRET_SETTINGS = frozenset(name for name, d in declarations().items() if d["secret"])
