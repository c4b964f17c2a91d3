"""The pack's HTTP client libraries, ``requests`` and ``etcd3gw``, imported without the optional
packages they pick up from StackStorm's virtualenv (eventlet, chardet) when nothing here uses them.

Use ``from slurmdeploy.clientlibs import etcd3gw, requests`` before any other import of either.

Why: StackStorm runs every python-script action as a new process with its own virtualenv on
PYTHONPATH after the pack's (contrib/runners/python_runner/python_runner/python_runner.py:208-239
and st2common/st2common/util/sandboxing.py:125-200 at v3.9.0), and that virtualenv has eventlet
and chardet (st2common/requirements.txt). Both are optional to the libraries that import them:

- ``etcd3gw.utils`` and futurist (imported by it) try ``import eventlet`` at import time
  (etcd3gw 2.7 ``etcd3gw/utils.py`` ``_try_import('eventlet')``, futurist 3.5
  ``futurist/_green.py``) only to pick a green thread pool for watch callbacks when eventlet
  has monkey-patched ``thread``; eventlet in turn imports dnspython and pyOpenSSL;
- ``requests`` imports chardet when it is installed (requests 2.32 ``requests/__init__.py``
  and ``requests/compat.py``; chardet is the ``use_chardet_on_py3`` extra since requests 2.26,
  charset_normalizer the default) to guess the encoding of ``Response.text`` without a charset;
  the pack only reads ``Response.json()``, and chardet 5 loads every language model on import.

Under StackStorm 3.9.0's python_action_wrapper.py that was 0.32 s (eventlet) and
~0.017 s (chardet) of a 0.87 s submit (``bench/st2_action.py --importtime``; docs/performance.md).

What: a package not imported yet cannot be in use, so for this one import each of them that is
not in ``sys.modules`` reads as not installed (``sys.modules[name] = None`` makes ``import name``
raise ImportError, which both libraries catch), and the block is lifted right afterwards: a
later ``import eventlet`` or ``import chardet`` works normally. A package already imported is
left alone, so where eventlet runs (StackStorm's sensor container monkey-patches before it loads
a sensor, st2reactor/container/sensor_wrapper.py:27-29) etcd3gw sees it as before. The clients
themselves are unchanged: etcd3gw stays the etcd client, requests the HTTP client.
Pinned by tests/unit/test_import_graph.py.
"""

import importlib
import sys
import threading

#: optional imports of requests / etcd3gw (and futurist) that nothing in this pack uses
OPTIONAL_EXTRAS = ("eventlet", "chardet")

#: the libraries this module hands out, each imported on first request (an action that only
#: talks to Slurm never imports etcd3gw)
CLIENT_LIBRARIES = ("requests", "etcd3gw")

_LOCK = threading.RLock()


def import_without_extras(name):
    """Import ``name`` (``"requests"`` or ``"etcd3gw"``) with :data:`OPTIONAL_EXTRAS` that are
    not imported yet reading as not installed, then lift that block.

    Args:
        name: a module name.

    Returns:
        the module (the one in ``sys.modules`` when already imported).

    Raises:
        ImportError: when ``name`` itself is not installed (see requirements.txt).
    """
    # one import at a time: packrunner runs actions in threads, and a second thread must wait
    # for the first one's import (importlib.import_module waits for a module another thread is
    # still initialising) rather than see the block or a half-imported module
    with _LOCK:
        if name in sys.modules:
            return importlib.import_module(name)
        blocked = [extra for extra in OPTIONAL_EXTRAS if extra not in sys.modules]
        for extra in blocked:
            sys.modules[extra] = None  # type: ignore[assignment]  # "not installed", for this import only
        try:
            return importlib.import_module(name)
        finally:
            for extra in blocked:
                if extra in sys.modules and sys.modules[extra] is None:
                    del sys.modules[extra]


def __getattr__(name):
    """``from slurmdeploy.clientlibs import requests`` (PEP 562): imports on first use."""
    if name in CLIENT_LIBRARIES:
        return import_without_extras(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CLIENT_LIBRARIES", "OPTIONAL_EXTRAS", "import_without_extras"]
