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

Under StackStorm 3.9.0's python_action_wrapper.py that was 0.32 s (eventlet) and about 0.02 s
(chardet) of a 0.87 s submit (``bench/st2_action.py --importtime``; docs/performance.md).

What: a package not imported yet cannot be in use, so for this one import each of them that is
not in ``sys.modules`` reads as not installed (``sys.modules[name] = None`` makes ``import name``
raise ImportError, which both libraries catch), and the block is lifted right afterwards: a
later ``import eventlet`` or ``import chardet`` works normally. A package already imported is
left alone, so where eventlet runs (StackStorm's sensor container monkey-patches before it loads
a sensor, st2reactor/container/sensor_wrapper.py:27-29) etcd3gw sees it as before. The clients
themselves are unchanged: etcd3gw stays the etcd client, requests the HTTP client.
Pinned by tests/unit/test_import_graph.py.
"""

import sys

#: optional imports of requests / etcd3gw (and futurist) that nothing in this pack uses
OPTIONAL_EXTRAS = ("eventlet", "chardet")

_blocked = [name for name in OPTIONAL_EXTRAS if name not in sys.modules]
for _name in _blocked:
    sys.modules[_name] = None  # type: ignore[assignment]  # "not installed", for these imports only
try:
    import requests
    import etcd3gw
finally:
    for _name in _blocked:
        if _name in sys.modules and sys.modules[_name] is None:
            del sys.modules[_name]
del _blocked

__all__ = ["OPTIONAL_EXTRAS", "etcd3gw", "requests"]
