"""packrunner: run a StackStorm pack locally, without StackStorm.

Loads a pack directory (pack.yaml, config.schema.yaml, actions, sensors,
rules), runs its sensors in threads, validates trigger payloads, matches
rules with StackStorm's operators, renders action parameters with Jinja and
runs python-script actions in a thread pool. State (datastore, trigger
instances, executions) lives in SQLite. See ``packrunner/README.md``.

Public API: :class:`Runner` (``start``, ``stop``, ``run_action``,
``dispatch``, ``wait_idle``, ``datastore``), CLI ``python -m packrunner``.
"""

from .runner import ActionNotFound, ConfigError, ParameterError, Runner, load_config
from .pack import Pack, PackError

__all__ = ["Runner", "Pack", "PackError", "ConfigError", "ParameterError", "ActionNotFound", "load_config"]
__version__ = "0.1.0"
