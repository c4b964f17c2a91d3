"""The library's modules import each other without cycles (a deferred import inside a function
counts too: it only hides a cycle)."""

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "lib"


def _module_name(path):
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """``{module: {slurmdeploy modules it imports}}`` over lib/slurmdeploy."""
    modules = {_module_name(p): p for p in (LIB / "slurmdeploy").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("slurmdeploy"):
                target = node.module
                deps.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("slurmdeploy"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, stack + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_library_has_no_import_cycle():
    graph = import_graph()
    assert "slurmdeploy.slurm.models" in graph["slurmdeploy.states"]  # the graph sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# --- what each action imports (every StackStorm action execution is a new process) ----------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

REPO = LIB.parent
ACTIONS = REPO / "actions"
SHIMS = REPO / "packrunner" / "src" / "packrunner" / "compat"

#: loads an action file the way StackStorm's python runner wrapper does (st2common/util/loader.py
#: register_plugin: the file's directory appended to sys.path, the file loaded as a module), then
#: optionally builds what the action's run() builds first, and prints the top-level modules and
#: the slurmdeploy modules now imported. Stub packages named in STUBS (a directory on sys.path)
#: log their import to IMPORT_LOG and then raise ImportError, as if absent.
_PROBE = r"""
import importlib.util, json, os, sys
path, build = sys.argv[1], sys.argv[2]
try:
    import st2common.runners.base_action  # noqa: F401  (StackStorm's, when installed)
except ImportError:
    sys.path.append(os.environ["SHIMS"])
sys.path.append(os.path.dirname(path))
spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if build:
    from st2common.runners.base_action import Action
    cls = next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Action)
               and v.__module__ == module.__name__)
    action = cls(config=json.loads(build))
    getattr(action, "deployer", None) if hasattr(type(action), "deployer") else action.ops
print(json.dumps(sorted(m for m in sys.modules if "." not in m or m.startswith("slurmdeploy."))))
"""

_STUB = "import os\nopen(os.environ['IMPORT_LOG'], 'a').write(__name__ + '\\n')\nraise ImportError('stub: ' + __name__)\n"

#: a static-JWT pack config; nothing is contacted while the clients are built
CONFIG = {"slurm_url": "http://127.0.0.1:9", "slurm_jwt": "header.payload.signature", "client_id": "slurm",
          "config_host": "127.0.0.1", "config_port": 9, "liveness_file": ""}
MSAL_CONFIG = dict({k: v for k, v in CONFIG.items() if k != "slurm_jwt"}, azure_url="https://login.example/tenant",
                   client_secret="not-a-real-secret")

#: never imported by any action at load time: optional extras StackStorm's virtualenv offers
#: (slurmdeploy.clientlibs), what only invalid args (jsonschema), MSAL settings (msal), the
#: node actions (hostlist) or the runner (yaml, jinja2) need, and the sensor's modules
NEVER_AT_LOAD = {"eventlet", "chardet", "jsonschema", "msal", "hostlist", "yaml", "jinja2",
                 "slurmdeploy.watch", "slurmdeploy.jobview", "slurmdeploy.node_events"}
DEPLOYER_ACTIONS = ("submit", "cancel", "update_state")


def _imports(tmp_path, action, build=None):
    """``(modules imported, stub packages that were asked for)`` after loading ``action``."""
    stubs = tmp_path / "stubs"
    for name in ("eventlet", "chardet"):
        (stubs / name).mkdir(parents=True, exist_ok=True)
        (stubs / name / "__init__.py").write_text(_STUB)
    log = tmp_path / "imports.log"
    log.write_text("")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(LIB), str(stubs)]),
           "SHIMS": str(SHIMS), "IMPORT_LOG": str(log)}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(ACTIONS / f"{action}.py"), json.dumps(build) if build else ""],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout)), log.read_text().split()


@pytest.mark.parametrize("action", sorted(p.stem for p in ACTIONS.glob("*.py")))
def test_every_action_loads_without_modules_it_does_not_use(tmp_path, action):
    modules, asked = _imports(tmp_path, action)
    assert "slurmdeploy.clientlibs" in modules  # the probe sees the library's imports
    assert not modules & NEVER_AT_LOAD, sorted(modules & NEVER_AT_LOAD)
    assert asked == [], f"{action} tried to import {asked} (import requests/etcd3gw through slurmdeploy.clientlibs)"
    if action in DEPLOYER_ACTIONS:  # etcd3gw comes with the Configuration DB client, at run time
        assert {"slurmdeploy.deployer", "requests"} <= modules
        assert not modules & {"slurmdeploy.slurm.operations", "slurmdeploy.slurm.reservations"}
    elif "from lib.ops import" in (ACTIONS / f"{action}.py").read_text():  # Slurm operations: no Configuration DB client
        assert "slurmdeploy.slurm.operations" in modules and "requests" in modules
    elif "from lib.account" in (ACTIONS / f"{action}.py").read_text():  # accounting: its module at run time only
        assert not modules & {"slurmdeploy.slurm.operations", "slurmdeploy.deployer", "etcd3gw"}, action
        assert not modules & {"etcd3gw", "slurmdeploy.configdb", "slurmdeploy.deployer"}


@pytest.mark.parametrize("action", DEPLOYER_ACTIONS)
def test_deployer_actions_build_clients_without_extras_and_msal_only_with_msal_settings(tmp_path, action):
    static, asked = _imports(tmp_path, action, build=CONFIG)
    assert {"slurmdeploy.auth", "etcd3gw"} <= static  # the token source and the etcd client were built
    assert "msal" not in static
    assert asked == [], f"building {action}'s clients tried to import {asked} (use slurmdeploy.clientlibs)"
    with_msal, _ = _imports(tmp_path, action, build=MSAL_CONFIG)
    assert "msal" in with_msal


def test_optional_extras_are_not_imported_but_stay_importable(tmp_path):
    """slurmdeploy.clientlibs: requests and etcd3gw are imported as if eventlet and chardet were
    absent (the stubs are never reached), and the block is lifted afterwards."""
    code = ("import importlib, sys\n"
            "from slurmdeploy.clientlibs import etcd3gw, requests\n"
            "import etcd3gw.utils\n"
            "print(etcd3gw.utils._eventlet is None, requests.compat.chardet.__name__)\n"
            "for name in ('eventlet', 'chardet'):\n"
            "    try:\n"
            "        importlib.import_module(name)\n"
            "    except ImportError as exc:\n"
            "        print(exc)\n")
    stubs = tmp_path / "stubs"
    for name in ("eventlet", "chardet"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(_STUB)
    log = tmp_path / "imports.log"
    log.write_text("")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(LIB), str(stubs)]), "IMPORT_LOG": str(log)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "True charset_normalizer", out
    assert lines[1:] == ["stub: eventlet", "stub: chardet"], out  # reached the (stub) packages: unblocked
    assert log.read_text().split() == ["eventlet", "chardet"]    # ... only then, not while importing


def test_an_extra_already_imported_is_left_alone():
    """Where eventlet runs (StackStorm's sensor container imports it first), the libraries see it."""
    code = ("import sys, types\n"
            "chardet = sys.modules['chardet'] = types.ModuleType('chardet')\n"
            "chardet.__version__ = '5.2.0'\n"
            "from slurmdeploy.clientlibs import requests\n"
            "print(requests.compat.chardet is chardet, sys.modules['chardet'] is chardet)\n")
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(LIB)},
                         capture_output=True, text=True)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


def test_a_second_thread_waits_for_the_first_import(tmp_path):
    """packrunner runs actions in threads: one that asks slurmdeploy.clientlibs for a library
    another thread is still importing gets the finished module, never a half-imported one."""
    (tmp_path / "slowlib.py").write_text("import time\ntime.sleep(0.5)\nREADY = True\n")
    code = ("import sys, threading, time\n"
            "from slurmdeploy.clientlibs import import_without_extras\n"
            "first = threading.Thread(target=import_without_extras, args=('slowlib',))\n"
            "first.start()\n"
            "time.sleep(0.1)\n"
            "print(getattr(import_without_extras('slowlib'), 'READY', False))\n"
            "first.join()\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(LIB), str(tmp_path)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["True"], out.stderr[-2000:]
