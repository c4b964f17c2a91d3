"""Minimal stand-ins for the StackStorm base classes used by pack code.

This directory (``packrunner/compat``) is put on ``sys.path`` by
:func:`packrunner.pack.ensure_st2_base_classes` **only** when the real
``st2common`` package cannot be imported, so pack modules can keep writing
``from st2common.runners.base_action import Action`` and
``from st2reactor.sensor.base import PollingSensor`` exactly as in StackStorm.
"""
