"""Minimal stand-ins for the StackStorm packages used by pack code and pack tests.

``st2common`` (``Action``), ``st2reactor`` (``Sensor``, ``PollingSensor``) and ``st2tests``
(``BaseActionTestCase``, ``BaseSensorTestCase`` and their mocks). This directory
(``packrunner/compat``) is put on ``sys.path`` **only** when the real packages cannot be
imported: by :func:`packrunner.pack.ensure_st2_base_classes` when packrunner loads a pack, and by a
pack's ``tests/conftest.py`` under ``st2-run-pack-tests`` without StackStorm. Pack modules keep
writing ``from st2common.runners.base_action import Action``,
``from st2reactor.sensor.base import PollingSensor`` and ``from st2tests.base import
BaseActionTestCase`` exactly as in StackStorm. Nothing here imports packrunner.
"""
