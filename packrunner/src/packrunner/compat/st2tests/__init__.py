"""Shim of StackStorm's ``st2tests`` (3.8/3.9) for pack tests run without StackStorm.

``st2tests`` is not on PyPI. Pack tests written against it (``from st2tests.base import
BaseActionTestCase, BaseSensorTestCase``) run unchanged on this shim when the real package is
not importable; it mirrors the public API of ``st2tests/st2tests/base.py``,
``pack_resource.py`` and ``mocks/{datastore,action,sensor}.py``. Self-contained: no import of
packrunner, so a pack's tests can put this directory on ``sys.path`` without installing it.
"""
