"""Shim of ``st2common/runners/base_action.py`` (StackStorm 3.8/3.9).

Only the public surface used by pack actions is provided: ``Action`` with
``config``, ``logger`` and ``action_service`` attributes and an abstract
``run(**kwargs)``.
"""

import abc
import logging

__all__ = ["Action"]


class Action(metaclass=abc.ABCMeta):
    """Base class for python-script actions.

    Args:
        config: the pack config (dict). StackStorm passes ``{}`` when the pack
            has no config; so do we.
        action_service: an object offering ``get_value``, ``set_value``,
            ``delete_value`` and ``list_values`` (packrunner passes
            :class:`packrunner.services.ActionService`).

    In StackStorm ``self.logger`` logs to stderr of the wrapper process; here it
    is a ``logging`` logger named ``packrunner.action.<ClassName>``.
    """

    description = None

    def __init__(self, config=None, action_service=None):
        self.config = config or {}
        self.action_service = action_service
        self.logger = logging.getLogger("packrunner.action.%s" % self.__class__.__name__)

    @abc.abstractmethod
    def run(self, **kwargs):
        """Run the action; see the python-runner result conventions."""
        raise NotImplementedError()
