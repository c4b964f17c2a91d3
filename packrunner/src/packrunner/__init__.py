"""packrunner: run a StackStorm pack locally, without StackStorm.

Loads a pack directory (pack.yaml, config.schema.yaml, actions, sensors,
rules), runs its sensors in threads, validates trigger payloads, matches
rules with StackStorm's operators, renders action parameters with Jinja and
runs python-script actions in a thread pool. State (datastore, trigger
instances, executions) lives in SQLite. See ``packrunner/README.md``.

Public API: :class:`Runner` (``start``, ``stop``, ``run_action``,
``dispatch``, ``wait_idle``, ``datastore``), CLI ``python -m packrunner``.
Every error it raises derives from :class:`PackrunnerError`.
"""

from .errors import ActionNotFound, ConfigError, PackrunnerError, ParameterError
from .config import load_config
from .pack import Pack, PackError
from .runner import Runner

__all__ = ["Runner", "Pack", "PackrunnerError", "PackError", "ConfigError", "ParameterError", "ActionNotFound",
           "load_config"]
__version__ = "0.2.0"
