"""Schema conversion and validation (config, trigger payloads, action parameters).

StackStorm writes schemas in a draft-3 flavour: ``required: true`` inside each
property, plus ``secret``/``immutable``/``position`` keywords
(``st2common/util/schema/__init__.py``, ``custom.json``). ``jsonschema`` 4.x
only knows draft-4+, where ``required`` is a list on the parent object. The
functions here convert the StackStorm style into draft-4 and validate with
``jsonschema.Draft4Validator``, filling ``default`` values like st2's
``use_default=True``.
"""

import ast
import copy
import json

import jsonschema

__all__ = [
    "SchemaConversionError",
    "ValidationFailed",
    "to_draft4",
    "allow_default_none",
    "properties_schema",
    "st2_schema_problems",
    "ACTION_PARAMS_META_SCHEMA",
    "PAYLOAD_META_SCHEMA",
    "validate_with_defaults",
    "fill_defaults",
    "secret_keys",
    "mask_secrets",
    "cast_value",
    "MASK",
    "PYTHON_RUNNER_PARAMETERS",
]

MASK = "********"

#: Runner parameters of the python-script runner (st2 contrib/runners/python_runner/runner.yaml).
PYTHON_RUNNER_PARAMETERS = {
    "debug": {"type": "boolean", "default": False},
    "content_version": {"type": "string"},
    "env": {"type": "object"},
    "timeout": {"type": "integer", "default": 600},
    "log_level": {"type": "string", "default": "DEBUG",
                  "enum": ["AUDIT", "CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING"]},
}

_ST2_ONLY_KEYWORDS = ("secret", "immutable", "position")


class SchemaConversionError(ValueError):
    """The schema cannot be used (invalid for StackStorm's validator)."""


class ValidationFailed(ValueError):
    """Validation of an instance failed.

    Attributes:
        path: dotted path of the failing field ("" for the top level).
        message: jsonschema's message.
    """

    def __init__(self, what, path, message):
        self.what = what
        self.path = path
        self.message = message
        where = " at '%s'" % path if path else ""
        super().__init__("%s invalid%s: %s" % (what, where, message))


def to_draft4(schema, allow_required_list=False, where="schema"):
    """Convert a StackStorm (draft-3 style) schema to draft-4.

    * boolean ``required: true`` inside properties becomes a ``required`` list
      on the parent object (``required: false`` is dropped);
    * ``secret``, ``immutable``, ``position`` are removed;
    * recurses into ``properties``, ``patternProperties``,
      ``additionalProperties``, ``items``, ``anyOf``/``oneOf``/``allOf``.

    Args:
        schema: the schema dict (not modified).
        allow_required_list: accept the draft-4 list form ``required: [..]``.
            StackStorm's payload validator rejects it, so this is False for
            trigger payload schemas.
        where: used in error messages.

    Returns:
        a new draft-4 schema dict.

    Raises:
        SchemaConversionError: when the schema is not a dict or uses a list
            ``required`` where StackStorm would reject it.
    """
    if not isinstance(schema, dict):
        raise SchemaConversionError("%s: expected a mapping, got %s" % (where, type(schema).__name__))
    out = {}
    for key, value in schema.items():
        if key in _ST2_ONLY_KEYWORDS:
            continue
        if key == "required":
            if isinstance(value, bool):
                continue  # handled by the parent
            if isinstance(value, list) and allow_required_list:
                out[key] = list(value)
                continue
            raise SchemaConversionError(
                "%s: 'required' must be a boolean inside each property (StackStorm draft-3 style), got %r"
                % (where, value)
            )
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            props = {}
            required = []
            for name, sub in value.items():
                if isinstance(sub, dict) and sub.get("required") is True:
                    required.append(name)
                props[name] = to_draft4(sub, allow_required_list, "%s.%s" % (where, name))
            out[key] = props
            if key == "properties" and required:
                existing = out.get("required", [])
                out["required"] = existing + [r for r in required if r not in existing]
            continue
        if key in ("additionalProperties", "items", "not") and isinstance(value, dict):
            out[key] = to_draft4(value, allow_required_list, "%s.%s" % (where, key))
            continue
        if key == "items" and isinstance(value, list):
            out[key] = [to_draft4(v, allow_required_list, "%s.items" % where) for v in value]
            continue
        if key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [to_draft4(v, allow_required_list, "%s.%s" % (where, key)) for v in value]
            continue
        out[key] = copy.deepcopy(value)
    return out


def allow_default_none(schema):
    """Let optional properties (and those whose default is None) be ``null``.

    Mirrors ``modify_schema_allow_default_none`` in
    ``st2common/util/schema/__init__.py``, which StackStorm applies when it
    validates trigger payloads, pack configs and action parameters
    (``allow_default_none=True``): a property that is not ``required: true``,
    or has ``default: null``, also accepts ``None``. Nested object properties
    and array items with properties are handled the same way.

    Args:
        schema: a StackStorm-style schema dict (not modified).

    Returns:
        a modified copy (non-dicts are returned unchanged).
    """
    if not isinstance(schema, dict):
        return schema
    schema = copy.deepcopy(schema)
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    for name, prop in list(properties.items()):
        if not isinstance(prop, dict):
            continue
        optional = prop.get("required") is not True
        if (optional or "default" in prop) and prop.get("default") is None:
            for key in ("anyOf", "oneOf"):
                if isinstance(prop.get(key), list):
                    if not any(isinstance(t, dict) and t.get("type", "string") == "null" for t in prop[key]):
                        prop[key].append({"type": "null"})
                    break
            else:
                ptype = prop.get("type", "string")
                if isinstance(ptype, list):
                    if "null" not in ptype:
                        prop["type"] = ptype + ["null"]
                elif ptype != "null":
                    prop["type"] = [ptype, "null"]
        ptype = prop.get("type")
        types = ptype if isinstance(ptype, list) else [ptype]
        if "array" in types and isinstance(prop.get("items"), dict) and prop["items"].get("properties"):
            prop["items"] = allow_default_none(prop["items"])
        if "object" in types and prop.get("properties"):
            prop = allow_default_none(prop)
        properties[name] = prop
    return schema


#: What an empty parameter schema (``name: {}``) accepts
#: (``SCHEMA_ANY_TYPE`` of ``st2common/util/schema/__init__.py``).
SCHEMA_ANY_TYPE = {"anyOf": [{"type": t} for t in ("array", "boolean", "integer", "number", "object", "string")]}


def properties_schema(properties, additional_properties=True, where="schema"):
    """Wrap a StackStorm properties mapping (config.schema.yaml, action
    ``parameters``) into a draft-4 object schema. An empty property schema
    accepts any type, as st2's ``get_schema_for_resource_parameters``
    (``normalize``) makes it.

    Args:
        properties: mapping of name -> property schema.
        additional_properties: value of ``additionalProperties``.

    Returns:
        a draft-4 schema dict.
    """
    return to_draft4(
        allow_default_none({"type": "object",
                            "properties": {k: v if v else copy.deepcopy(SCHEMA_ANY_TYPE)
                                           for k, v in (properties or {}).items()},
                            "additionalProperties": additional_properties}),
        allow_required_list=True,
        where=where,
    )


#: canonical JSON of schemas that passed the meta-schema check (a pack's schemas are few
#: and fixed; checking them again on every trigger and execution cost more CPU than the rest
#: of a dispatch - bench/reaction.py)
_VALID_SCHEMAS = set()
_VALID_SCHEMAS_MAX = 1024


def check_schema(schema, where="schema"):
    """Raise :class:`SchemaConversionError` if ``schema`` is not valid draft-4."""
    try:
        canonical = json.dumps(schema, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        canonical = None
    if canonical is not None and canonical in _VALID_SCHEMAS:
        return
    try:
        jsonschema.Draft4Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        raise SchemaConversionError("%s is not a valid schema: %s" % (where, e.message)) from e
    if canonical is not None and len(_VALID_SCHEMAS) < _VALID_SCHEMAS_MAX:
        _VALID_SCHEMAS.add(canonical)


def fill_defaults(instance, schema):
    """Recursively set missing properties that have a ``default`` (in place).

    Mirrors ``assign_default_values`` of ``st2common/util/schema/__init__.py``
    (st2's ``use_default=True``): a missing or ``None`` value is replaced by the
    property's ``default``.

    Returns:
        ``instance``.
    """
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return instance
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        if instance.get(name) is None and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(name), dict):
            fill_defaults(instance[name], sub)
    return instance


def _error_path(error):
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.validator_value, list):
        # "'x' is a required property": name the missing key in the path.
        missing = [r for r in error.validator_value if isinstance(error.instance, dict) and r not in error.instance]
        if missing:
            parts.append(missing[0])
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        extra = [k for k in error.instance if k not in allowed]
        if extra:
            parts.append(extra[0])
    return ".".join(parts)


MASKED_VALUE = "<value masked>"


def _is_secret_path(properties, parts):
    """True if the dotted path ``parts`` goes through a ``secret: true`` property."""
    for part in parts:
        prop = (properties or {}).get(part) if isinstance(properties, dict) else None
        if not isinstance(prop, dict):
            return False
        if prop.get("secret"):
            return True
        properties = prop.get("properties")
    return False


def _masked_message(error):
    """jsonschema's message with the offending value replaced by ``<value masked>``."""
    message = error.message.replace(repr(error.instance), MASKED_VALUE)
    text = str(error.instance)
    if text and text in message:
        return "%s does not match %r" % (MASKED_VALUE, error.validator)
    return message


def validate_with_defaults(instance, schema, what="value", use_default=True, secret_properties=None):
    """Fill defaults and validate ``instance`` against a draft-4 ``schema``.

    Args:
        instance: the value (a dict is copied, not modified).
        schema: draft-4 schema (see :func:`to_draft4`).
        what: label for error messages ("config", "trigger payload"...).
        use_default: fill ``default`` values first.
        secret_properties: the StackStorm properties mapping (config schema,
            action parameters); an error inside a ``secret: true`` property
            says ``<value masked>`` instead of the value (StackStorm keeps
            secrets out of logs and API output, st2 #4448/#5809).

    Returns:
        the validated (and default-filled) copy.

    Raises:
        SchemaConversionError: the schema itself is invalid.
        ValidationFailed: the instance does not match; ``path`` names the
            field (the first error by path order).
    """
    check_schema(schema, "%s schema" % what)
    instance = copy.deepcopy(instance)
    if use_default:
        fill_defaults(instance, schema)
    validator = jsonschema.Draft4Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        err = errors[0]
        path = _error_path(err)
        secret = _is_secret_path(secret_properties, [str(p) for p in err.absolute_path])
        raise ValidationFailed(what, path, _masked_message(err) if secret else err.message)
    return instance


def secret_keys(properties):
    """Return the names of properties marked ``secret: true``."""
    return {k for k, v in (properties or {}).items() if isinstance(v, dict) and v.get("secret")}


def mask_secrets(values, properties):
    """Return a copy of ``values`` with secret properties replaced by ``********``.

    Nested ``properties`` of object-typed entries are masked too.

    Args:
        values: dict (config or parameters).
        properties: the StackStorm properties mapping that marks secrets.
    """
    if not isinstance(values, dict):
        return values
    out = {}
    for key, value in values.items():
        prop = (properties or {}).get(key)
        if isinstance(prop, dict) and prop.get("secret") and value is not None:
            out[key] = MASK
        elif isinstance(prop, dict) and isinstance(value, dict) and prop.get("properties"):
            out[key] = mask_secrets(value, prop["properties"])
        else:
            out[key] = value
    return out


_TRUE = ("true", "1", "yes", "y", "on")
_FALSE = ("false", "0", "no", "n", "off")


def cast_value(value, param_type):
    """Cast a string to the declared parameter type, like st2's
    ``st2common/util/casts.py`` (used for rendered rule parameters and CLI
    ``key=value`` arguments).

    * ``integer``: ``int(value)`` (``"5.0"`` is accepted when integral);
    * ``number``: int if integral text, else float;
    * ``boolean``: true/false, yes/no, 1/0, on/off;
    * ``object``/``array``: JSON, then Python literal;
    * anything else (``string``, ``null``...): unchanged.

    Non-strings and unparsable strings are returned unchanged (validation
    then reports a type error).
    """
    if not isinstance(value, str) or not isinstance(param_type, str):
        return value
    text = value.strip()
    try:
        if param_type == "integer":
            try:
                return int(text)
            except ValueError:
                f = float(text)
                return int(f) if f.is_integer() else value
        if param_type == "number":
            try:
                return int(text)
            except ValueError:
                return float(text)
        if param_type == "boolean":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            return value
        if param_type in ("object", "array"):
            try:
                return json.loads(text)
            except ValueError:
                return ast.literal_eval(text)
        if param_type == "null" and text.lower() in ("null", "none", ""):
            return None
    except (ValueError, SyntaxError):
        return value
    return value


# --- StackStorm's meta-schemas -------------------------------------------------
#
# StackStorm checks schemas written in packs against two variants of the draft-4
# meta-schema (st2common/util/schema/custom.json and action_params.json, loaded by
# st2common/util/schema/__init__.py): ``required`` is a draft-3 boolean, and the
# keywords ``secret``, ``immutable`` (booleans) and ``position`` (number >= 0) are
# added. The action-parameter variant (used for action ``parameters`` and for
# config.schema.yaml entries, see ActionAPI / ConfigSchemaAPI) also restricts
# ``type`` to one type name and rejects keys it does not list
# (``additionalProperties: false``, ``format`` is not listed). The trigger
# payload variant (``CustomValidator``) allows type lists and unknown keys.


def _st2_meta_schema(action_params):
    meta = copy.deepcopy(jsonschema.Draft4Validator.META_SCHEMA)
    # Without an id, "$ref": "#" resolves to this modified document, not to the
    # registered draft-4 meta-schema.
    meta.pop("id", None)
    meta.pop("$schema", None)
    props = meta["properties"]
    props["required"] = {"type": "boolean", "default": False}
    props["secret"] = {"type": "boolean", "default": False}
    props["immutable"] = {"type": "boolean", "default": False}
    props["position"] = {"type": "number", "minimum": 0}
    if action_params:
        props.pop("format", None)
        # action_params.json: a type name (any string); never a list.
        props["type"] = {"type": "string"}
        meta["additionalProperties"] = False
    return meta


#: Meta-schema of one action parameter / config.schema.yaml entry (action_params.json).
ACTION_PARAMS_META_SCHEMA = _st2_meta_schema(action_params=True)
#: Meta-schema of trigger payload schemas (custom.json as used by CustomValidator).
PAYLOAD_META_SCHEMA = _st2_meta_schema(action_params=False)

_META_VALIDATORS = {
    "action_params": jsonschema.Draft4Validator(ACTION_PARAMS_META_SCHEMA),
    "payload": jsonschema.Draft4Validator(PAYLOAD_META_SCHEMA),
}


def _meta_error_message(error):
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}).keys())
        extra = sorted(str(k) for k in error.instance if k not in allowed)
        return "unknown key%s %s (StackStorm's action-parameter schema rejects it)" % (
            "s" if len(extra) > 1 else "", ", ".join(repr(k) for k in extra))
    if list(error.absolute_path)[-1:] == ["type"] and isinstance(error.instance, list):
        return "must be a single type, not a list %r (StackStorm rejects type lists here)" % (error.instance,)
    if list(error.absolute_path)[-1:] == ["type"] and isinstance(error.instance, str):
        return "unknown type %r (use one of %s)" % (
            error.instance, ", ".join(sorted(jsonschema.Draft4Validator.META_SCHEMA["definitions"]
                                             ["simpleTypes"]["enum"])))
    if list(error.absolute_path)[-1:] == ["required"] and not isinstance(error.instance, bool):
        return "must be a boolean inside each property (StackStorm draft-3 style), got %r%s" % (
            error.instance, "; the draft-4 list form is invalid for StackStorm"
            if isinstance(error.instance, list) else "")
    return error.message


def _leaf_errors(error):
    """For ``anyOf`` errors on a mapping (a nested schema), the errors of the
    sub-schema branch; otherwise the error itself."""
    if error.validator == "anyOf" and isinstance(error.instance, dict) and error.context:
        first = [e for e in error.context if list(e.relative_schema_path)[:1] == [0]]
        if first:
            return [leaf for e in first for leaf in _leaf_errors(e)]
    return [error]


def st2_schema_problems(schema, kind):
    """Check a schema written in a pack against StackStorm's meta-schema.

    Args:
        schema: one action parameter or config.schema.yaml entry
            (``kind="action_params"``), or a trigger ``payload_schema``
            (``kind="payload"``).
        kind: ``"action_params"`` or ``"payload"``.

    Returns:
        list of ``(dotted path inside the schema, message)``, sorted by path;
        empty when StackStorm accepts the schema.

    Source: ``st2common/util/schema/__init__.py`` (``get_action_parameters_schema``,
    ``CustomValidator``), ``action_params.json``, ``custom.json``.
    """
    validator = _META_VALIDATORS[kind]
    out = []
    for error in validator.iter_errors(schema):
        for leaf in _leaf_errors(error):
            item = (".".join(str(p) for p in leaf.absolute_path), _meta_error_message(leaf))
            if item not in out:
                out.append(item)
    return sorted(out)
