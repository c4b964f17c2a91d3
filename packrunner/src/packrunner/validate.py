"""Static checks of a pack (``python -m packrunner validate``).

The checks are the ones StackStorm applies when it registers a pack, taken from
its source, plus the pitfalls listed in the project's StackStorm notes:

* ``pack.yaml``: ``PackAPI`` (``st2common/models/api/pack.py``): required
  ``name``, ``description``, ``version`` (semver, ``PACK_VERSION_REGEX``),
  ``author``; ``ref`` matching ``^[a-z0-9_]+$`` (``PACK_REF_WHITELIST_REGEX``);
  ``python_versions`` items ``"2"``/``"3"``; ``stackstorm_version`` like ``>=3.8.0``.
* ``config.schema.yaml``: ``ConfigSchemaAPI``: top-level keys ``^\\w+$``, each
  value valid for the action-parameter meta-schema (``action_params.json``).
* actions: ``ActionAPI`` (``st2common/models/api/action.py``, additional keys
  rejected; parameter names ``^\\w+$``, each parameter valid for
  ``action_params.json``) and ``st2common/validators/api/action.py``
  (``_validate_parameters``: runner parameters only override ``default``,
  ``description``, ``enum``, ``immutable``, ``required``
  (``RUNNER_PARAM_OVERRIDABLE_ATTRS`` in ``st2common/util/schema/__init__.py``);
  unique and contiguous positions starting at 0; immutable parameters need a
  default). The registrars (``st2common/bootstrap/*registrar.py``) reject a
  ``pack`` field that differs from the pack.
* sensors: ``SensorTypeAPI`` and ``TriggerTypeAPI`` (``st2common/models/api/
  sensor.py``, ``trigger.py``; additional keys rejected; ``poll_interval``
  minimum 4) and payload schemas valid for StackStorm's ``CustomValidator``
  meta-schema (``custom.json``): an invalid one makes StackStorm drop every
  trigger of that type.
* rules: ``RuleAPI`` (``st2common/models/api/rule.py``; additional keys
  rejected) and the criteria operators of ``st2common/operators.py``
  (``search`` conditions ``any``, ``all``, ``any2any``, ``all2any``).
* pitfalls: rules must set ``enabled`` (it defaults to False); every criterion
  needs a ``pattern``; st2client <= 3.9.0 crashes on ``st2 run ACTION -h`` when
  ``position`` is on optional parameters or on only some required ones.

Each problem is reported as ``(file relative to the pack, key, message)``.
"""

import glob
import os
import re

import jinja2

from .operators import OPERATORS, SEARCH, SEARCH_CONDITIONS
from .pack import PackError, load_yaml
from .schema import (
    PYTHON_RUNNER_PARAMETERS,
    SchemaConversionError,
    check_schema,
    st2_schema_problems,
)

__all__ = ["validate_pack", "PACK_VERSION_REGEX", "RUNNER_PARAM_OVERRIDABLE_ATTRS"]

#: st2common/constants/pack.py (semver 2.0 without leading zeros).
PACK_VERSION_REGEX = (r"^(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
                      r"(?:-[\da-z\-]+(?:\.[\da-z\-]+)*)?(?:\+[\da-z\-]+(?:\.[\da-z\-]+)*)?$")
#: st2common/constants/pack.py
PACK_REF_REGEX = r"^[a-z0-9_]+$"
#: st2common/constants/pack.py: one or more comparisons such as ">=3.8.0, <4.0.0".
ST2_VERSION_REGEX = r"^((>?>|>=|=|<=|<?<)\s*[0-9]+\.[0-9]+\.[0-9]+?(\s*,)?\s*)+$"
#: st2common/util/schema/__init__.py
RUNNER_PARAM_OVERRIDABLE_ATTRS = ("default", "description", "enum", "immutable", "required")

_ACTION_KEYS = {"id", "ref", "uid", "name", "description", "enabled", "entry_point", "pack", "runner_type",
                "parameters", "output_schema", "tags", "notify", "metadata_file"}
_RULE_KEYS = {"id", "ref", "uid", "name", "pack", "description", "type", "enabled", "trigger", "criteria",
              "action", "context", "tags", "metadata_file"}
_SENSOR_KEYS = {"id", "ref", "uid", "name", "pack", "description", "artifact_uri", "entry_point", "enabled",
                "trigger_types", "poll_interval", "class_name", "metadata_file"}
_TRIGGER_TYPE_KEYS = {"id", "ref", "uid", "name", "pack", "description", "payload_schema", "parameters_schema",
                      "tags", "metadata_file"}
_JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}
_WORD = re.compile(r"^\w+$")
_JINJA = jinja2.Environment()

UNKNOWN_KEY = "unknown key (StackStorm rejects additional keys)"
MISSING = "required key missing"


def _files(pack_dir, sub):
    d = os.path.join(pack_dir, sub)
    return sorted(glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "*.yml")))


def _join(*parts):
    return ".".join(str(p) for p in parts if p not in (None, ""))


class _Checker:
    """Collects ``(file, key, message)`` problems for one pack."""

    def __init__(self, pack_dir):
        self.pack_dir = os.path.abspath(pack_dir)
        self.problems = []
        self.pack_ref = None
        self.actions = {}  # ref -> parameters mapping
        self.trigger_refs = set()

    def add(self, rel, key, message):
        self.problems.append((rel, key, message))

    def rel(self, path):
        return os.path.relpath(path, self.pack_dir)

    def load(self, path):
        try:
            data = load_yaml(path)
        except PackError as e:
            self.add(self.rel(path), "", "cannot be read: %s" % str(e).split(": ", 1)[-1])
            return None
        if not isinstance(data, dict):
            self.add(self.rel(path), "", "must be a YAML mapping")
            return None
        return data

    def unknown_keys(self, rel, data, allowed, where=""):
        for key in data:
            if key not in allowed:
                self.add(rel, _join(where, key), UNKNOWN_KEY)

    def pack_field(self, rel, data):
        """The registrars refuse a ``pack`` field naming another pack."""
        pack = data.get("pack")
        if pack is not None and self.pack_ref and pack != self.pack_ref:
            self.add(rel, "pack", 'is "%s" but the file is in pack "%s" (StackStorm refuses to register it)'
                     % (pack, self.pack_ref))

    def jinja(self, rel, key, value):
        """Report Jinja syntax errors in strings (patterns, parameters)."""
        if isinstance(value, dict):
            for k, v in value.items():
                self.jinja(rel, _join(key, k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.jinja(rel, "%s[%d]" % (key, i), v)
        elif isinstance(value, str) and ("{{" in value or "{%" in value):
            try:
                _JINJA.parse(value)
            except jinja2.TemplateSyntaxError as e:
                self.add(rel, key, "Jinja syntax error: %s" % e.message)

    # ---------------------------------------------------------------- pack.yaml
    def check_pack_yaml(self):
        path = os.path.join(self.pack_dir, "pack.yaml")
        if not os.path.isfile(path):
            self.add("pack.yaml", "", "missing")
            return
        meta = self.load(path) or {}
        r = "pack.yaml"
        for key in ("name", "description", "version", "author"):
            if meta.get(key) in (None, ""):
                self.add(r, key, MISSING)
        for key in ("name", "description", "author", "ref", "email", "stackstorm_version"):
            if meta.get(key) is not None and not isinstance(meta[key], str):
                self.add(r, key, "must be a string")
        if meta.get("version") not in (None, ""):
            version = meta["version"]
            if not isinstance(version, str):
                self.add(r, "version", 'must be a quoted string: YAML reads %s as a number; write "%s"'
                         % (version, "%s.0" % version if str(version).count(".") == 1 else version))
            elif not re.match(PACK_VERSION_REGEX, version):
                self.add(r, "version", '"%s" is not a semver version (x.y.z, e.g. "0.1.0")' % version)
        ref = meta.get("ref")
        if isinstance(ref, str) and not re.match(PACK_REF_REGEX, ref):
            self.add(r, "ref", '"%s" must match %s (lowercase letters, digits, _)' % (ref, PACK_REF_REGEX))
        elif not ref and isinstance(meta.get("name"), str) and not re.match(PACK_REF_REGEX, meta["name"]):
            self.add(r, "ref", 'missing and name "%s" is not a valid ref; add a ref matching %s'
                     % (meta["name"], PACK_REF_REGEX))
        self.pack_ref = (ref if isinstance(ref, str) else None) or meta.get("name")
        pv = meta.get("python_versions")
        if pv is not None:
            if not isinstance(pv, list) or not 1 <= len(pv) <= 2:
                self.add(r, "python_versions", 'must be a list of 1 or 2 items ("2", "3")')
            else:
                for i, item in enumerate(pv):
                    if item not in ("2", "3"):
                        self.add(r, "python_versions[%d]" % i, 'must be "2" or "3" (a quoted string), not %r'
                                 % (item,))
                if len(set(map(str, pv))) != len(pv):
                    self.add(r, "python_versions", "items must be unique")
        sv = meta.get("stackstorm_version")
        if isinstance(sv, str) and not re.match(ST2_VERSION_REGEX, sv):
            self.add(r, "stackstorm_version", '"%s" is not a version constraint such as ">=3.8.0"' % sv)
        for key in ("keywords", "contributors", "dependencies"):
            value = meta.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                self.add(r, key, "must be a list of strings")

    # ------------------------------------------------------- config.schema.yaml
    def check_config_schema(self):
        path = os.path.join(self.pack_dir, "config.schema.yaml")
        if not os.path.isfile(path):
            return
        schema = self.load(path)
        if schema is None:
            return
        r = "config.schema.yaml"
        for key, prop in schema.items():
            if not _WORD.match(str(key)):
                self.add(r, key, "top-level keys must match ^\\w+$")
            self.parameter(r, str(key), prop)

    def parameter(self, rel, key, prop):
        """One action parameter / config entry against action_params.json."""
        if not isinstance(prop, dict):
            self.add(rel, key, "must be a mapping")
            return
        for path, msg in st2_schema_problems(prop, "action_params"):
            self.add(rel, _join(key, path), msg)
        ptype = prop.get("type")
        if isinstance(ptype, str) and ptype not in _JSON_TYPES:
            self.add(rel, key + ".type", "unknown type %r (use one of %s)" % (ptype, ", ".join(sorted(_JSON_TYPES))))
        if isinstance(prop.get("enum"), list) and "default" in prop and prop["default"] not in prop["enum"] \
                and not (isinstance(prop["default"], str) and "{{" in prop["default"]):
            self.add(rel, key + ".default", "default %r is not in enum" % (prop["default"],))

    # ------------------------------------------------------------------ actions
    def check_actions(self):
        if not os.path.isdir(os.path.join(self.pack_dir, "actions")):
            self.add("actions/", "", "directory missing (StackStorm requires it)")
        for path in _files(self.pack_dir, "actions"):
            data = self.load(path)
            if data is None:
                continue
            r = self.rel(path)
            for key in ("name", "runner_type"):
                if not data.get(key):
                    self.add(r, key, MISSING)
            self.unknown_keys(r, data, _ACTION_KEYS)
            self.pack_field(r, data)
            if "enabled" in data and not isinstance(data["enabled"], bool):
                self.add(r, "enabled", "must be a boolean")
            params = data.get("parameters") or {}
            if data.get("name"):
                self.actions["%s.%s" % (self.pack_ref, data["name"])] = params if isinstance(params, dict) else {}
            if data.get("runner_type") == "python-script":
                entry = data.get("entry_point")
                if not entry:
                    self.add(r, "entry_point", "required for python-script")
                elif not os.path.isfile(os.path.join(os.path.dirname(path), entry)):
                    self.add(r, "entry_point", "file %s not found (relative to actions/)" % entry)
            if not isinstance(params, dict):
                self.add(r, "parameters", "must be a mapping")
                continue
            self.action_parameters(r, params)

    def action_parameters(self, r, params):
        runner = PYTHON_RUNNER_PARAMETERS
        positions = {}
        for name, prop in params.items():
            key = "parameters.%s" % name
            if not _WORD.match(str(name)):
                self.add(r, key, "parameter names must match ^\\w+$")
            self.parameter(r, key, prop)
            if not isinstance(prop, dict):
                continue
            if name in runner:
                for attr, value in prop.items():
                    if attr not in RUNNER_PARAM_OVERRIDABLE_ATTRS and value != runner[name].get(attr):
                        self.add(r, "%s.%s" % (key, attr),
                                 'the attribute "%s" of the runner parameter "%s" cannot be overridden '
                                 "(only %s)" % (attr, name, ", ".join(RUNNER_PARAM_OVERRIDABLE_ATTRS)))
            if prop.get("immutable") is True and "default" not in prop and "default" not in runner.get(name, {}):
                self.add(r, key + ".immutable", "immutable parameter without a default value")
            if "position" in prop and isinstance(prop["position"], (int, float)) \
                    and not isinstance(prop["position"], bool):
                pos = prop["position"]
                if pos in positions:
                    self.add(r, key + ".position", "position %s is also used by parameter %s; positions must be "
                             "unique" % (pos, positions[pos]))
                else:
                    positions[pos] = name
        if positions:
            ordered = sorted(positions)
            found = ", ".join(map(str, ordered))
            if ordered != list(range(int(ordered[0]), int(ordered[0]) + len(ordered))):
                self.add(r, "parameters", "positions must be contiguous (found %s)" % found)
            if ordered[0] != 0:
                self.add(r, "parameters", "positions must start at 0 (found %s)" % found)
        dicts = {n: p for n, p in params.items() if isinstance(p, dict)}
        optional = sorted(n for n, p in dicts.items() if "position" in p and p.get("required") is not True)
        for name in optional:
            self.add(r, "parameters.%s.position" % name,
                     "position on an optional parameter (st2client <= 3.9.0 crashes on 'st2 run ACTION -h'; "
                     "put position on all required parameters or on none)")
        required = [n for n, p in dicts.items() if p.get("required") is True]
        with_pos = sorted(n for n in required if "position" in dicts[n])
        without = sorted(n for n in required if "position" not in dicts[n])
        if with_pos and without:
            self.add(r, "parameters", "position is set on required parameter(s) %s but not on %s "
                     "(st2client <= 3.9.0 crashes on 'st2 run ACTION -h'; all required or none)"
                     % (", ".join(with_pos), ", ".join(without)))

    # ------------------------------------------------------------------ sensors
    def check_sensors(self):
        for path in _files(self.pack_dir, "sensors"):
            data = self.load(path)
            if data is None:
                continue
            r = self.rel(path)
            self.unknown_keys(r, data, _SENSOR_KEYS)
            self.pack_field(r, data)
            if not data.get("class_name"):
                self.add(r, "class_name", MISSING)
            entry = data.get("entry_point")
            if not entry:
                self.add(r, "entry_point", MISSING)
            elif not os.path.isfile(os.path.join(os.path.dirname(path), entry)):
                self.add(r, "entry_point", "file %s not found (relative to sensors/)" % entry)
            if "enabled" in data and not isinstance(data["enabled"], bool):
                self.add(r, "enabled", "must be a boolean")
            pi = data.get("poll_interval")
            if pi is not None and (isinstance(pi, bool) or not isinstance(pi, (int, float)) or pi < 4):
                self.add(r, "poll_interval", "must be a number >= 4 (StackStorm minimum)")
            tts = data.get("trigger_types") or []
            if not isinstance(tts, list):
                self.add(r, "trigger_types", "must be a list")
                continue
            for i, tt in enumerate(tts):
                self.trigger_type(r, "trigger_types[%d]" % i, tt)

    def trigger_type(self, r, key, tt):
        if not isinstance(tt, dict) or not tt.get("name"):
            self.add(r, key + ".name", MISSING)
            return
        self.unknown_keys(r, tt, _TRIGGER_TYPE_KEYS, key)
        ref = "%s.%s" % (tt.get("pack") or self.pack_ref, tt["name"])
        if ref in self.trigger_refs:
            self.add(r, key + ".name", "trigger %s is declared twice" % ref)
        self.trigger_refs.add(ref)
        for field in ("payload_schema", "parameters_schema"):
            if field not in tt:
                continue
            schema = tt[field]
            where = _join(key, field)
            if not isinstance(schema, dict):
                self.add(r, where, "must be a mapping")
                continue
            problems = st2_schema_problems(schema, "payload")
            for path, msg in problems:
                self.add(r, _join(where, path), "%s (StackStorm drops every trigger of this type)" % msg
                         if field == "payload_schema" else msg)
            if not problems:
                try:
                    check_schema(schema, where=field)
                except SchemaConversionError as e:
                    self.add(r, where, str(e))

    # -------------------------------------------------------------------- rules
    def check_rules(self):
        for path in _files(self.pack_dir, "rules"):
            data = self.load(path)
            if data is None:
                continue
            self.rule(self.rel(path), data)

    def rule(self, r, data):
        self.unknown_keys(r, data, _RULE_KEYS)
        self.pack_field(r, data)
        if not data.get("name"):
            self.add(r, "name", MISSING)
        if "enabled" not in data:
            self.add(r, "enabled", "not set (StackStorm defaults it to False: the rule never fires)")
        elif not isinstance(data["enabled"], bool):
            self.add(r, "enabled", "must be a boolean")
        trig = data.get("trigger")
        ttype = trig.get("type") if isinstance(trig, dict) else None
        if not ttype:
            self.add(r, "trigger.type", MISSING)
        elif ttype.startswith((self.pack_ref or "\0") + ".") and ttype not in self.trigger_refs:
            self.add(r, "trigger.type", "trigger %s is not declared by any sensor of the pack" % ttype)
        act = data.get("action")
        aref = act.get("ref") if isinstance(act, dict) else None
        if not aref:
            self.add(r, "action.ref", MISSING)
        params = (act.get("parameters") if isinstance(act, dict) else None) or {}
        if not isinstance(params, dict):
            self.add(r, "action.parameters", "must be a mapping")
            params = {}
        self.jinja(r, "action.parameters", params)
        if aref and aref.startswith((self.pack_ref or "\0") + "."):
            if aref not in self.actions:
                self.add(r, "action.ref", "action %s not found in the pack" % aref)
            else:
                declared = self.actions[aref]
                for name in params:
                    if name not in declared and name not in PYTHON_RUNNER_PARAMETERS:
                        self.add(r, "action.parameters.%s" % name, "not a parameter of %s (StackStorm rejects "
                                 "unknown parameters)" % aref)
                for name, prop in declared.items():
                    if isinstance(prop, dict) and prop.get("required") is True and "default" not in prop \
                            and name not in params:
                        self.add(r, "action.parameters", "required parameter %s of %s is not set" % (name, aref))
        criteria = data.get("criteria") or {}
        if not isinstance(criteria, dict):
            self.add(r, "criteria", "must be a mapping")
            return
        for ckey, crit in criteria.items():
            self.criterion(r, "criteria.%s" % ckey, str(ckey), crit, "trigger")

    def criterion(self, r, key, ckey, crit, prefix):
        if not ckey.split("#", 1)[0].startswith((prefix + ".", prefix + "[")) and ckey.split("#", 1)[0] != prefix:
            self.add(r, key, "criteria keys must start with '%s.'" % prefix)
        if not isinstance(crit, dict):
            self.add(r, key, "must be a mapping with 'type' and 'pattern'")
            return
        op = crit.get("type")
        if "type" not in crit:
            self.add(r, key + ".type", MISSING)
        elif str(op).lower() not in OPERATORS:
            self.add(r, key + ".type", "unknown operator %r" % (op,))
        if "pattern" not in crit:
            self.add(r, key + ".pattern", "missing (StackStorm needs it, also for exists/nexists)")
        if op == SEARCH:
            cond = crit.get("condition")
            if cond not in SEARCH_CONDITIONS:
                self.add(r, key + ".condition", "must be one of %s for the search operator, not %r"
                         % (", ".join(SEARCH_CONDITIONS), cond))
            children = crit.get("pattern")
            if not isinstance(children, dict):
                self.add(r, key + ".pattern", "must be a mapping of item criteria for the search operator")
                return
            for child_key, child in children.items():
                self.criterion(r, "%s.pattern.%s" % (key, child_key), str(child_key), child, "item")
        elif isinstance(op, str) and op.lower() == SEARCH:
            self.add(r, key + ".type", "write 'search' in lower case: StackStorm only passes the condition to "
                     "the search operator when the type is exactly 'search'")
        else:
            self.jinja(r, key + ".pattern", crit.get("pattern"))


def validate_pack(pack_dir):
    """Check a pack directory the way StackStorm checks it at registration.

    Args:
        pack_dir: the pack root.

    Returns:
        list of ``(relative file, key, message)`` tuples in file order (empty
        = no problems). ``key`` is a dotted path inside the file (``""`` for
        the whole file).

    Sources: see the module docstring.
    """
    checker = _Checker(pack_dir)
    checker.check_pack_yaml()
    checker.check_config_schema()
    checker.check_actions()
    checker.check_sensors()
    checker.check_rules()
    return checker.problems
