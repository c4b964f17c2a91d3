"""The one root of packrunner's errors, and the errors the runner's parts share.

Every exception packrunner raises on purpose derives from :class:`PackrunnerError`, so a caller
can catch them all in one ``except``; most also derive from the builtin a caller would expect
(``ValueError`` for bad input, ``KeyError`` for a missing action). The module-specific errors
stay where they are raised (``pack.PackError``, ``schema.ValidationFailed``, ``params.ParamException``,
``rules.RuleError``, ``templating.TemplateRenderError``, ``tester.RuleTestError``,
``operators.UnknownOperatorError``, ``cli.UsageError``), each a subclass of this root.
"""

__all__ = ["PackrunnerError", "ConfigError", "ParameterError", "ActionNotFound"]


class PackrunnerError(Exception):
    """Base class of every error packrunner raises."""


class ConfigError(PackrunnerError, ValueError):
    """The pack config is invalid (message names the key)."""


class ParameterError(PackrunnerError, ValueError):
    """Action parameters are invalid (unknown, missing, wrong type, immutable...)."""


class ActionNotFound(PackrunnerError, KeyError):
    """No such action in the pack."""

    def __str__(self):
        return self.args[0] if self.args else "action not found"
