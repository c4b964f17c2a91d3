"""Deployment args -> a Slurm job request.

A ``slurm`` deployment's ``args`` (``/deploy/<key>`` -> ``args``) are validated with
:data:`ARGS_SCHEMA` (jsonschema) and turned into a
:class:`slurmdeploy.slurm.models.JobRequest`:

- name ``sdp-<key>``; ``mcs_label`` ``sdp_slurm_deployer_{release}_{namespace}``
  (a deployment cannot change it);
- ``comment`` carries the deployment marker (:func:`deployment_marker`) so the
  deployer can tell the job of this deployment from the job of an earlier deployment
  that had the same key;
- environment layered, later layers winning (``docs/design.md``, "Job environment"): defaults (``PATH``,
  ``LD_LIBRARY_PATH`` when set, ``SDP_CONFIG_HOST``, ``SDP_CONFIG_PORT``) ->
  every ``SDP_SLURM_ENV_<NAME>`` of the deployer's environment as ``<NAME>`` ->
  the pack config's ``job_environment`` -> the deployment's ``environment``.

Units: ``time_limit`` minutes, ``memory_per_node`` MiB (Slurm's job description).
"""


from slurmdeploy.errors import InvalidDeployment
from slurmdeploy.layout import deployment_marker, parse_marker  # noqa: F401 - callers import them from here
from slurmdeploy.settings import DEFAULT_JOB_PATH
from slurmdeploy.slurm.models import JobRequest

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

_POSITIVE_INT = {"type": "integer", "minimum": 1}

#: JSON schema of a ``slurm`` deployment's args.
ARGS_SCHEMA = {
    "type": "object",
    "required": ["script"],
    "additionalProperties": False,
    "properties": {
        "script": {"type": "string", "pattern": r"^#!", "description": "batch script, starting with #!"},
        "environment": {
            "type": "object",
            "propertyNames": {"pattern": ENV_NAME},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "current_working_directory": {"type": "string", "pattern": "^/"},
        "partition": {"type": "string", "minLength": 1},
        "account": {"type": "string", "minLength": 1},
        "qos": {"type": "string", "minLength": 1},
        "time_limit": dict(_POSITIVE_INT, description="minutes"),
        "nodes": _POSITIVE_INT,
        "tasks": _POSITIVE_INT,
        "cpus_per_task": _POSITIVE_INT,
        "memory_per_node": dict(_POSITIVE_INT, description="MiB"),
        "standard_output": {"type": "string", "minLength": 1},
        "standard_error": {"type": "string", "minLength": 1},
    },
}

_RESERVED = {
    "mcs_label": "the deployer labels every job with its own mcs_label ({label}); deployments cannot change it",
    "name": "the job name is always sdp-<key>",
    "comment": "the deployer keeps its deployment marker in the job comment",
}



def job_name(key):
    """The Slurm job name of a deployment: ``sdp-<key>``."""
    return f"sdp-{key}"


def key_from_job_name(name):
    """The deployment key of a job name ``sdp-<key>``, or None for other names."""
    return name[4:] if name.startswith("sdp-") and len(name) > 4 else None


def validate_args(key, args, mcs_label=""):
    """Check a deployment's args.

    Args:
        key: deployment key (for messages).
        args: the decoded ``args`` value.
        mcs_label: the deployer's label (for the message about ``mcs_label``).

    Raises:
        InvalidDeployment: naming every offending field and what is accepted.
    """
    if not isinstance(args, dict):
        raise InvalidDeployment(key, f"args must be an object with at least 'script', got {type(args).__name__}")
    problems = []
    for name, why in _RESERVED.items():
        if name in args:
            problems.append(f"args.{name} is not allowed: {why.format(label=mcs_label)}")
    rest = {k: v for k, v in args.items() if k not in _RESERVED}
    # imported here: ~50 ms that only a submit needs (every StackStorm action is a new process)
    import jsonschema

    validator = jsonschema.Draft7Validator(ARGS_SCHEMA)
    for error in sorted(validator.iter_errors(rest), key=lambda e: list(e.absolute_path)):
        problems.append(_describe(error))
    if problems:
        raise InvalidDeployment(key, "; ".join(problems))


def _describe(error):
    where = "args" + "".join(f".{p}" for p in error.absolute_path)
    if error.validator == "additionalProperties" and not error.absolute_path:
        allowed = ", ".join(sorted(ARGS_SCHEMA["properties"]))
        extra = sorted(set(error.instance) - set(ARGS_SCHEMA["properties"]))
        return f"unknown field(s) {', '.join('args.' + e for e in extra)}; accepted fields: {allowed}"
    if error.validator == "required":
        return "args.script is required: the batch script to run, starting with #! (e.g. '#!/bin/bash\\n...')"
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] == "script":
        return "args.script must start with #! (e.g. '#!/bin/bash')"
    if error.validator == "propertyNames" or "propertyNames" in error.schema_path:
        return f"{where}: environment variable name {error.instance!r} must match {ENV_NAME}"
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] == "current_working_directory":
        return f"{where} must be an absolute path"
    return f"{where}: {error.message}"


def job_environment(settings, args, environ):
    """Layer the job environment (see module docs).

    Args:
        settings: :class:`slurmdeploy.settings.Settings`.
        args: validated deployment args.
        environ: the deployer's environment (for ``PATH``/``LD_LIBRARY_PATH``).

    Returns:
        dict NAME -> str.
    """
    env = {"PATH": environ.get("PATH") or DEFAULT_JOB_PATH}
    if environ.get("LD_LIBRARY_PATH"):
        env["LD_LIBRARY_PATH"] = environ["LD_LIBRARY_PATH"]
    env["SDP_CONFIG_HOST"] = settings.config_host
    env["SDP_CONFIG_PORT"] = str(settings.config_port)
    env.update(settings.env_job_environment)
    env.update(settings.job_environment)
    for name, value in (args.get("environment") or {}).items():
        env[name] = _env_text(value)
    return env


def _env_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_job(settings, deployment, environ):
    """Build the job request of a ``slurm`` deployment.

    Args:
        settings: :class:`slurmdeploy.settings.Settings`.
        deployment: :class:`slurmdeploy.configdb.Deployment`.
        environ: the deployer's environment mapping.

    Returns:
        A :class:`slurmdeploy.slurm.models.JobRequest`.

    Raises:
        InvalidDeployment: the deployment is not ``slurm`` or its args are invalid.
    """
    if not deployment.valid:
        raise InvalidDeployment(deployment.key, deployment.problem)
    if deployment.kind != "slurm":
        raise InvalidDeployment(deployment.key, f"kind is {deployment.kind!r}; this deployer only runs 'slurm' deployments")
    args = deployment.args
    validate_args(deployment.key, args, settings.mcs_label)
    options = {name: args[name] for name in JobRequest.OPTION_FIELDS if name in args}
    if "partition" not in options and settings.job_partition:
        options["partition"] = settings.job_partition
    return JobRequest(
        name=job_name(deployment.key),
        script=args["script"],
        environment=job_environment(settings, args, environ),
        mcs_label=settings.mcs_label,
        current_working_directory=args.get("current_working_directory") or settings.job_working_directory,
        comment=deployment_marker(deployment.key, deployment.revision),
        **{k: v for k, v in options.items() if k != "comment"},
    )
