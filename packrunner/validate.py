"""Static checks of a pack (``python -m packrunner validate``).

Basic checks derived from StackStorm's API models (``st2common/models/api/
pack.py``, ``action.py``, ``rule.py``, ``sensor.py``) and the pitfalls listed in
StackStorm's docs. Each problem is reported as ``(file, key, message)``.
"""

import glob
import os
import re

from .operators import OPERATORS
from .pack import PackError, load_yaml
from .schema import PYTHON_RUNNER_PARAMETERS, SchemaConversionError, check_schema, properties_schema, to_draft4

__all__ = ["validate_pack"]

_ACTION_KEYS = {"name", "runner_type", "description", "enabled", "entry_point", "pack", "parameters",
                "output_schema", "tags", "notify", "ref", "uid", "id"}
_RULE_KEYS = {"name", "pack", "description", "enabled", "trigger", "criteria", "action", "context", "tags",
              "ref", "uid", "id", "type", "metadata_file"}
_SENSOR_KEYS = {"class_name", "entry_point", "description", "enabled", "poll_interval", "trigger_types",
                "name", "pack", "ref", "uid", "id", "artifact_uri", "metadata_file"}
_JSON_TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}


def _files(pack_dir, sub):
    d = os.path.join(pack_dir, sub)
    return sorted(glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "*.yml")))


def _check_params(problems, rel, params, where):
    if not isinstance(params, dict):
        problems.append((rel, where, "must be a mapping"))
        return
    for name, prop in params.items():
        key = "%s.%s" % (where, name)
        if not isinstance(prop, dict):
            problems.append((rel, key, "must be a mapping"))
            continue
        ptype = prop.get("type")
        if isinstance(ptype, list):
            problems.append((rel, key + ".type", "must be a single type, not a list %r" % (ptype,)))
        elif ptype is not None and ptype not in _JSON_TYPES:
            problems.append((rel, key + ".type", "unknown type %r" % (ptype,)))
        if "required" in prop and not isinstance(prop["required"], bool):
            problems.append((rel, key + ".required", "must be a boolean"))
        if prop.get("immutable") and "default" not in prop:
            problems.append((rel, key + ".immutable", "immutable parameters need a default"))
        if "enum" in prop and "default" in prop and isinstance(prop["enum"], list) \
                and prop["default"] not in prop["enum"] and not (isinstance(prop["default"], str)
                                                                 and "{{" in prop["default"]):
            problems.append((rel, key + ".default", "default %r not in enum" % (prop["default"],)))


def validate_pack(pack_dir):
    """Check a pack directory.

    Args:
        pack_dir: the pack root.

    Returns:
        list of ``(relative file, key, message)`` tuples (empty = no problems).
    """
    problems = []
    pack_dir = os.path.abspath(pack_dir)

    def rel(p):
        return os.path.relpath(p, pack_dir)

    def load(path):
        try:
            data = load_yaml(path)
        except PackError as e:
            problems.append((rel(path), "", str(e)))
            return None
        if not isinstance(data, dict):
            problems.append((rel(path), "", "must be a YAML mapping"))
            return None
        return data

    meta_path = os.path.join(pack_dir, "pack.yaml")
    pack_ref = None
    if not os.path.isfile(meta_path):
        problems.append(("pack.yaml", "", "missing"))
    else:
        meta = load(meta_path) or {}
        for key in ("name", "description", "version", "author"):
            if not meta.get(key):
                problems.append(("pack.yaml", key, "required key missing"))
        if "version" in meta and not isinstance(meta["version"], str):
            problems.append(("pack.yaml", "version", "must be a quoted string (e.g. \"0.1.0\")"))
        pack_ref = meta.get("ref") or meta.get("name")
        if meta.get("ref") and not re.match(r"^[a-z0-9_]+$", str(meta["ref"])):
            problems.append(("pack.yaml", "ref", "must match ^[a-z0-9_]+$"))
        if not meta.get("ref") and meta.get("name") and not re.match(r"^[a-z0-9_]+$", str(meta["name"])):
            problems.append(("pack.yaml", "ref", "name is not a valid ref; add 'ref' matching ^[a-z0-9_]+$"))

    schema_path = os.path.join(pack_dir, "config.schema.yaml")
    if os.path.isfile(schema_path):
        schema = load(schema_path)
        if schema is not None:
            for key in schema:
                if not re.match(r"^\w+$", str(key)):
                    problems.append(("config.schema.yaml", key, "top-level keys must match ^\\w+$"))
            _check_params(problems, "config.schema.yaml", schema, "")
            try:
                check_schema(properties_schema(schema), "config.schema.yaml")
            except SchemaConversionError as e:
                problems.append(("config.schema.yaml", "", str(e)))

    if not os.path.isdir(os.path.join(pack_dir, "actions")):
        problems.append(("actions/", "", "directory missing (StackStorm requires it)"))
    action_refs = set()
    for path in _files(pack_dir, "actions"):
        data = load(path)
        if data is None:
            continue
        r = rel(path)
        for key in ("name", "runner_type"):
            if not data.get(key):
                problems.append((r, key, "required key missing"))
        for key in data:
            if key not in _ACTION_KEYS:
                problems.append((r, key, "unknown key (StackStorm rejects additional keys)"))
        if data.get("name"):
            action_refs.add("%s.%s" % (data.get("pack") or pack_ref, data["name"]))
        if data.get("runner_type") == "python-script":
            entry = data.get("entry_point")
            if not entry:
                problems.append((r, "entry_point", "required for python-script"))
            elif not os.path.isfile(os.path.join(os.path.dirname(path), entry)):
                problems.append((r, "entry_point", "file %s not found (relative to actions/)" % entry))
        params = data.get("parameters") or {}
        _check_params(problems, r, params, "parameters")
        if isinstance(params, dict):
            for name, prop in params.items():
                if name in PYTHON_RUNNER_PARAMETERS and isinstance(prop, dict) and "type" in prop \
                        and prop["type"] != PYTHON_RUNNER_PARAMETERS[name]["type"]:
                    problems.append((r, "parameters.%s" % name, "runner parameter; its type cannot change"))
            positions = [p.get("position") for p in params.values() if isinstance(p, dict) and "position" in p]
            if positions and sorted(positions) != list(range(len(positions))):
                problems.append((r, "parameters", "positions must be unique and contiguous from 0"))

    trigger_refs = set()
    for path in _files(pack_dir, "sensors"):
        data = load(path)
        if data is None:
            continue
        r = rel(path)
        for key in data:
            if key not in _SENSOR_KEYS:
                problems.append((r, key, "unknown key"))
        if not data.get("class_name"):
            problems.append((r, "class_name", "required key missing"))
        entry = data.get("entry_point")
        if not entry:
            problems.append((r, "entry_point", "required key missing"))
        elif not os.path.isfile(os.path.join(os.path.dirname(path), entry)):
            problems.append((r, "entry_point", "file %s not found (relative to sensors/)" % entry))
        pi = data.get("poll_interval")
        if pi is not None and (not isinstance(pi, (int, float)) or pi < 4):
            problems.append((r, "poll_interval", "must be a number >= 4 (StackStorm minimum)"))
        for i, tt in enumerate(data.get("trigger_types") or []):
            key = "trigger_types[%d]" % i
            if not isinstance(tt, dict) or not tt.get("name"):
                problems.append((r, key + ".name", "required key missing"))
                continue
            trigger_refs.add("%s.%s" % (tt.get("pack") or pack_ref, tt["name"]))
            if "payload_schema" in tt:
                try:
                    check_schema(to_draft4(tt["payload_schema"], allow_required_list=False,
                                           where="payload_schema"))
                except SchemaConversionError as e:
                    problems.append((r, key + ".payload_schema",
                                     "%s (StackStorm drops every trigger of this type)" % e))

    for path in _files(pack_dir, "rules"):
        data = load(path)
        if data is None:
            continue
        r = rel(path)
        for key in data:
            if key not in _RULE_KEYS:
                problems.append((r, key, "unknown key"))
        if not data.get("name"):
            problems.append((r, "name", "required key missing"))
        if "enabled" not in data:
            problems.append((r, "enabled", "not set explicitly (StackStorm defaults it to False)"))
        elif not isinstance(data["enabled"], bool):
            problems.append((r, "enabled", "must be a boolean"))
        trig = data.get("trigger") or {}
        ttype = trig.get("type") if isinstance(trig, dict) else None
        if not ttype:
            problems.append((r, "trigger.type", "required key missing"))
        elif ttype.startswith((pack_ref or "\0") + ".") and ttype not in trigger_refs:
            problems.append((r, "trigger.type", "trigger %s is not declared by any sensor of the pack" % ttype))
        act = data.get("action") or {}
        aref = act.get("ref") if isinstance(act, dict) else None
        if not aref:
            problems.append((r, "action.ref", "required key missing"))
        elif aref.startswith((pack_ref or "\0") + ".") and aref not in action_refs:
            problems.append((r, "action.ref", "action %s not found in the pack" % aref))
        criteria = data.get("criteria") or {}
        if not isinstance(criteria, dict):
            problems.append((r, "criteria", "must be a mapping"))
            criteria = {}
        for ckey, crit in criteria.items():
            key = "criteria.%s" % ckey
            if not isinstance(crit, dict):
                problems.append((r, key, "must be a mapping with 'type' and 'pattern'"))
                continue
            if "type" not in crit:
                problems.append((r, key + ".type", "missing"))
            elif str(crit["type"]).lower() not in OPERATORS:
                problems.append((r, key + ".type", "unknown operator %r" % crit["type"]))
            if "pattern" not in crit:
                problems.append((r, key + ".pattern", "missing (required even for exists/nexists)"))
            if not str(ckey).startswith("trigger"):
                problems.append((r, key, "criteria keys must start with 'trigger.'"))
    return problems
