"""Shim of ``st2tests/pack_resource.py``: ``BasePackResourceTestCase``."""

import inspect
import os
import unittest

__all__ = ["BasePackResourceTestCase"]


class BasePackResourceTestCase(unittest.TestCase):
    """Base of the action and sensor test cases: fixtures of the pack under test.

    The pack root is the parent of the directory holding the test module, as in StackStorm.
    """

    def get_fixture_content(self, fixture_path):
        """Return the text of ``<pack>/tests/fixtures/<fixture_path>``.

        Raises:
            OSError: the file cannot be read.
        """
        path = os.path.join(self._get_base_pack_path(), "tests", "fixtures", fixture_path)
        with open(path, "r") as fp:
            return fp.read()

    def _get_base_pack_path(self):
        test_file_path = inspect.getfile(self.__class__)
        return os.path.abspath(os.path.join(os.path.dirname(test_file_path), ".."))
