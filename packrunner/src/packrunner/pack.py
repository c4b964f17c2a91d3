"""Loading a StackStorm pack directory: metadata, import paths, Python classes.

Mirrors what StackStorm's content loaders and the python-runner / sensor
wrappers do (``st2common/content/loader.py``, ``st2common/util/loader.py``,
``python_runner/python_action_wrapper.py``, ``st2reactor/container/sensor_wrapper.py``)
with ``[packs] enable_common_libs = True``.
"""

import glob
import importlib.util
import inspect
import logging
import os
import re
import sys
import threading

import yaml

from .errors import PackrunnerError
from .rules import Rule, RuleError
from .schema import (
    PYTHON_RUNNER_PARAMETERS,
    SchemaConversionError,
    allow_default_none,
    check_schema,
    properties_schema,
    st2_schema_problems,
)

__all__ = [
    "Pack",
    "ActionMeta",
    "SensorMeta",
    "TriggerType",
    "PackError",
    "ensure_st2_base_classes",
    "load_yaml",
]

LOG = logging.getLogger("packrunner.pack")

COMPAT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat")
_IMPORT_LOCK = threading.RLock()


class PackError(PackrunnerError):
    """The pack (or one of its files) cannot be loaded."""


def ensure_st2_base_classes():
    """Make ``st2common``/``st2reactor`` importable.

    Uses the real StackStorm packages when importable; otherwise puts
    ``packrunner/compat`` on ``sys.path`` (shims of ``Action``, ``Sensor``,
    ``PollingSensor``).

    Returns:
        ``"st2"`` or ``"compat"``.
    """
    try:
        import st2common  # noqa: F401

        if os.path.dirname(os.path.dirname(os.path.abspath(st2common.__file__))) == COMPAT_DIR:
            return "compat"
        return "st2"
    except ImportError:
        if COMPAT_DIR not in sys.path:
            sys.path.append(COMPAT_DIR)
        return "compat"


def load_yaml(path):
    """Load a YAML file.

    Raises:
        PackError: naming the file on I/O or YAML errors.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as e:
        raise PackError("%s: %s" % (path, e)) from e


def _load_module(path, module_name):
    with _IMPORT_LOCK:
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PackError("cannot import %s" % path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module


def _module_name(pack_ref, kind, path):
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    return "packrunner_packs.%s.%s.%s" % (pack_ref, kind, stem)


class TriggerType:
    """A trigger type declared by a sensor (``trigger_types`` entry).

    Attributes:
        name, ref (``<pack>.<name>``), description, payload_schema (as written),
        schema (the payload_schema with allow_default_none applied, or None), schema_error (str or None: the
        payload schema is invalid, every payload is dropped).
    """

    def __init__(self, data, pack):
        self.data = data
        self.name = data.get("name")
        self.pack = data.get("pack") or pack
        self.ref = "%s.%s" % (self.pack, self.name)
        self.description = data.get("description", "")
        self.payload_schema = data.get("payload_schema")
        self.schema = None
        self.schema_error = None
        if self.payload_schema is not None:
            # StackStorm validates payloads with CustomValidator (use_default=True,
            # allow_default_none=True), which first checks the schema against its
            # meta-schema (st2common/validators/api/reactor.py, util/schema/__init__.py).
            problems = st2_schema_problems(self.payload_schema, "payload") \
                if isinstance(self.payload_schema, dict) else [("", "must be a mapping")]
            if problems:
                self.schema_error = "; ".join("%s: %s" % (p or "payload_schema", m) for p, m in problems)
            else:
                try:
                    self.schema = allow_default_none(self.payload_schema)
                    check_schema(self.schema, "payload_schema of %s" % self.ref)
                except SchemaConversionError as e:
                    self.schema = None
                    self.schema_error = str(e)


class SensorMeta:
    """A sensor from ``sensors/*.yaml``.

    Attributes: name, class_name, entry_point (absolute), poll_interval (or
    None), enabled, trigger_types (list of :class:`TriggerType`), path.
    """

    def __init__(self, data, pack, path):
        self.data = data
        self.path = path
        self.pack = pack
        self.class_name = data.get("class_name")
        if not self.class_name:
            raise PackError("%s: sensor has no 'class_name'" % path)
        self.name = data.get("name") or self.class_name
        entry = data.get("entry_point")
        if not entry:
            raise PackError("%s: sensor has no 'entry_point'" % path)
        self.entry_point = os.path.join(os.path.dirname(path), entry)
        self.poll_interval = data.get("poll_interval")
        self.enabled = data.get("enabled", True)
        self.trigger_types = [TriggerType(t, pack) for t in (data.get("trigger_types") or [])]

    def load_class(self, base_class=None):
        """Import the entry point and return the class named ``class_name``.

        Raises:
            PackError: when the file or class is missing.
        """
        if not os.path.isfile(self.entry_point):
            raise PackError("sensor %s: entry_point %s does not exist" % (self.class_name, self.entry_point))
        module = _load_module(self.entry_point, _module_name(self.pack, "sensors", self.entry_point))
        cls = getattr(module, self.class_name, None)
        if not inspect.isclass(cls):
            raise PackError("sensor %s: class not found in %s" % (self.class_name, self.entry_point))
        return cls


class ActionMeta:
    """An action from ``actions/*.yaml`` (runner_type python-script).

    Attributes: name, ref, description, runner_type, entry_point (absolute),
    parameters (as written), enabled, path.
    """

    def __init__(self, data, pack, path):
        self.data = data
        self.path = path
        self.name = data.get("name")
        if not self.name:
            raise PackError("%s: action has no 'name'" % path)
        self.pack = data.get("pack") or pack
        self.ref = "%s.%s" % (self.pack, self.name)
        self.description = data.get("description", "")
        self.runner_type = data.get("runner_type")
        self.enabled = data.get("enabled", True)
        entry = data.get("entry_point") or ""
        self.entry_point = os.path.join(os.path.dirname(path), entry) if entry else None
        self.parameters = data.get("parameters") or {}
        self._class = None
        self._all_parameters = None
        self._parameters_schema = None

    @property
    def all_parameters(self):
        """Runner parameters (python-script) overlaid with the action's own (built once: the
        metadata is fixed once loaded; callers must not modify it)."""
        if self._all_parameters is None:
            merged = {k: dict(v) for k, v in PYTHON_RUNNER_PARAMETERS.items()}
            for k, v in self.parameters.items():
                if k in merged and isinstance(v, dict):
                    merged[k].update(v)
                else:
                    merged[k] = v
            self._all_parameters = merged
        return self._all_parameters

    def parameters_schema(self):
        """Schema of all parameters (StackStorm style), ``additionalProperties: False``
        (unknown parameters are rejected, as st2 does). Built once, and the same object every
        time, so that its compiled validator is reused (:func:`packrunner.schema.validate_with_defaults`)."""
        if self._parameters_schema is None:
            self._parameters_schema = properties_schema(self.all_parameters, additional_properties=False)
        return self._parameters_schema

    def load_class(self, base_class):
        """Import the entry point and return the single ``base_class`` subclass defined in it.

        When several subclasses are defined, classes that are bases of another
        one in the module are ignored; if still ambiguous, an error is raised.

        Raises:
            PackError: missing file, no class, or several candidate classes.
        """
        if self._class is not None:
            return self._class
        if self.runner_type not in ("python-script", "run-python"):
            raise PackError(
                "action %s: runner_type %r is not supported by packrunner (only python-script)"
                % (self.ref, self.runner_type)
            )
        if not self.entry_point or not os.path.isfile(self.entry_point):
            raise PackError("action %s: entry_point %s does not exist" % (self.ref, self.entry_point))
        module = _load_module(self.entry_point, _module_name(self.pack, "actions", self.entry_point))
        classes = [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if c.__module__ == module.__name__ and issubclass(c, base_class) and c is not base_class
        ]
        leaves = [c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)]
        if not leaves:
            raise PackError('action %s: file "%s" has no Action subclass' % (self.ref, self.entry_point))
        if len(leaves) > 1:
            raise PackError(
                "action %s: file %s defines several Action classes (%s)"
                % (self.ref, self.entry_point, ", ".join(c.__name__ for c in leaves))
            )
        self._class = leaves[0]
        return self._class


class Pack:
    """A pack directory loaded into memory.

    Args:
        pack_dir: path of the pack root (holding ``pack.yaml``).

    Attributes:
        path, ref, meta (pack.yaml dict), config_schema (dict), actions (ref ->
        :class:`ActionMeta`), sensors (list of :class:`SensorMeta`), triggers
        (ref -> :class:`TriggerType`), rules (list of :class:`Rule`),
        load_errors (list of str: files that could not be loaded).

    Raises:
        PackError: when ``pack.yaml`` is missing or has no name/ref.
    """

    def __init__(self, pack_dir):
        self.path = os.path.abspath(pack_dir)
        meta_path = os.path.join(self.path, "pack.yaml")
        if not os.path.isfile(meta_path):
            raise PackError("%s: no pack.yaml (is --pack pointing to a pack directory?)" % self.path)
        self.meta = load_yaml(meta_path) or {}
        self.ref = self.meta.get("ref") or self.meta.get("name")
        if not self.ref:
            raise PackError("%s: needs 'ref' or 'name'" % meta_path)
        schema_path = os.path.join(self.path, "config.schema.yaml")
        self.config_schema = (load_yaml(schema_path) or {}) if os.path.isfile(schema_path) else {}
        self.load_errors = []
        self.actions = {}
        for path in self._files("actions"):
            data = self._safe_load(path)
            if not isinstance(data, dict):
                continue
            try:
                meta = ActionMeta(data, self.ref, path)
                self.actions[meta.ref] = meta
            except PackError as e:
                self.load_errors.append(str(e))
        self.sensors = []
        self.triggers = {}
        for path in self._files("sensors"):
            data = self._safe_load(path)
            if not isinstance(data, dict):
                continue
            try:
                sensor = SensorMeta(data, self.ref, path)
            except PackError as e:
                self.load_errors.append(str(e))
                continue
            self.sensors.append(sensor)
            for trigger in sensor.trigger_types:
                self.triggers[trigger.ref] = trigger
        self.rules = []
        for path in self._files("rules"):
            data = self._safe_load(path)
            if not isinstance(data, dict):
                continue
            try:
                self.rules.append(Rule(data, self.ref, path))
            except RuleError as e:
                self.load_errors.append(str(e))
        for err in self.load_errors:
            LOG.warning("pack %s: %s", self.ref, err)

    def _files(self, sub):
        d = os.path.join(self.path, sub)
        return sorted(glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "*.yml")))

    def _safe_load(self, path):
        try:
            return load_yaml(path)
        except PackError as e:
            self.load_errors.append(str(e))
            return None

    @property
    def python_paths(self):
        """Import paths like st2 with ``enable_common_libs = True``:
        ``lib/``, ``actions/``, ``actions/lib/``, ``sensors/`` (existing ones)."""
        candidates = ["lib", "actions", os.path.join("actions", "lib"), "sensors"]
        return [os.path.join(self.path, c) for c in candidates if os.path.isdir(os.path.join(self.path, c))]

    def setup_sys_path(self):
        """Prepend :attr:`python_paths` to ``sys.path`` (idempotent) and make
        the StackStorm base classes importable."""
        ensure_st2_base_classes()
        for p in reversed(self.python_paths):
            if p not in sys.path:
                sys.path.insert(0, p)

    def resolve_action(self, ref_or_name):
        """Return the :class:`ActionMeta` for ``pack.name`` or a bare ``name``.

        Raises:
            KeyError: with a message listing the available actions.
        """
        if ref_or_name in self.actions:
            return self.actions[ref_or_name]
        candidate = "%s.%s" % (self.ref, ref_or_name)
        if candidate in self.actions:
            return self.actions[candidate]
        raise KeyError(
            "action %r not found in pack %s (available: %s)"
            % (ref_or_name, self.ref, ", ".join(sorted(self.actions)) or "none")
        )

    def resolve_trigger_ref(self, trigger):
        """Turn a trigger ref or bare name into a ref (``<pack>.<name>``).

        ``trigger`` may also be a dict with ``type``/``ref``/``name`` (as st2 allows).
        """
        if isinstance(trigger, dict):
            trigger = trigger.get("type") or trigger.get("ref") or trigger.get("name")
        trigger = str(trigger)
        if trigger in self.triggers:
            return trigger
        candidate = "%s.%s" % (self.ref, trigger)
        if candidate in self.triggers:
            return candidate
        return trigger
