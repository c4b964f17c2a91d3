"""Schema validation (config, trigger payloads, action parameters), as StackStorm does it.

StackStorm writes schemas in a draft-3 flavour: ``required: true`` inside each property, plus
``secret``/``immutable``/``position`` keywords. It validates them with ``CustomValidator``
(``st2common/util/schema/__init__.py``): ``jsonschema``'s draft-4 validator extended with
draft-3's ``properties`` (which enforces ``required: true`` per property) and without draft-4's
list-form ``required``, checked against the ``custom.json`` meta-schema. :data:`CustomValidator`
here is built the same way with ``jsonschema.validators.create``; :func:`validate_with_defaults`
fills ``default`` values first (``assign_default_values``) and lets optional properties be null
(``modify_schema_allow_default_none``), like st2's ``validate(use_default=True,
allow_default_none=True)``. Schemas are validated as written, never converted.
"""

import ast
import copy
import json

import jsonschema

from .errors import PackrunnerError

__all__ = [
    "SchemaConversionError",
    "ValidationFailed",
    "CustomValidator",
    "allow_default_none",
    "properties_schema",
    "st2_schema_problems",
    "ACTION_PARAMS_META_SCHEMA",
    "PAYLOAD_META_SCHEMA",
    "validate_with_defaults",
    "fill_defaults",
    "mask_secrets",
    "cast_value",
    "MASK",
    "PYTHON_RUNNER_PARAMETERS",
]

MASK = "********"

#: Runner parameters of the python-script runner (st2 contrib/runners/python_runner/runner.yaml).
PYTHON_RUNNER_PARAMETERS = {
    "debug": {"type": "boolean", "default": False, "description": "Enable runner debug mode."},
    "content_version": {"type": "string",
                        "description": "Git revision of the pack content to use for this action execution (git "
                                       "commit sha / tag / branch). Only applies to packs which are git "
                                       "repositories."},
    "env": {"type": "object", "description": "Environment variables which will be available to the script."},
    "timeout": {"type": "integer", "default": 600,
                "description": "Action timeout in seconds. Action will get killed if it doesn't finish in timeout "
                               "seconds."},
    "log_level": {"type": "string", "default": "DEBUG", "description": "Default log level for Python runner actions.",
                  "enum": ["AUDIT", "CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING"]},
}

#: How packrunner treats each python-script runner parameter (shown by ``run ACTION -h``). All
#: are accepted, so that rules and ``st2 run`` command lines written for StackStorm work here.
RUNNER_PARAMETER_SUPPORT = {
    "timeout": "honoured: the execution ends as 'timeout' after this many seconds (its thread is not "
               "killed and runs on in the background)",
    "debug": "ignored by packrunner (accepted for StackStorm compatibility)",
    "content_version": "ignored by packrunner: the pack directory is used as it is (no git checkout)",
    "env": "ignored by packrunner: actions run in threads of the runner and share its environment",
    "log_level": "ignored by packrunner: --log-level of the runner applies to every action",
}


class SchemaConversionError(PackrunnerError, ValueError):
    """The schema cannot be used (invalid for StackStorm's validator)."""


class ValidationFailed(PackrunnerError, ValueError):
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


def properties_schema(properties, additional_properties=True):
    """Wrap a StackStorm properties mapping (config.schema.yaml, action ``parameters``) into an
    object schema for :data:`CustomValidator`, as st2's ``get_schema_for_resource_parameters``
    does (an empty property schema accepts any type: ``normalize``), with
    :func:`allow_default_none` applied.

    Args:
        properties: mapping of name -> property schema (StackStorm style, not modified).
        additional_properties: value of ``additionalProperties``.

    Returns:
        the schema dict.
    """
    return allow_default_none({"type": "object",
                               "properties": {k: v if v else copy.deepcopy(SCHEMA_ANY_TYPE)
                                              for k, v in (properties or {}).items()},
                               "additionalProperties": additional_properties})


#: canonical JSON of schemas that passed the meta-schema check (a pack's schemas are few
#: and fixed; checking them again on every trigger and execution cost more CPU than the rest
#: of a dispatch - bench/reaction.py)
_VALID_SCHEMAS = set()
_VALID_SCHEMAS_MAX = 1024


def check_schema(schema, where="schema"):
    """Check ``schema`` against StackStorm's ``custom.json`` meta-schema (draft-4 with boolean
    ``required`` and the ``secret``/``immutable``/``position`` keywords).

    Raises:
        SchemaConversionError: the schema is invalid for StackStorm's validator (message says where).
    """
    try:
        canonical = json.dumps(schema, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        canonical = None
    if canonical is not None and canonical in _VALID_SCHEMAS:
        return
    try:
        CustomValidator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        raise SchemaConversionError("%s is not a valid schema: %s" % (where, e.message)) from e
    if canonical is not None and len(_VALID_SCHEMAS) < _VALID_SCHEMAS_MAX:
        _VALID_SCHEMAS.add(canonical)


#: id(schema) -> (schema, compiled validator) of schemas already checked: a pack's trigger
#: and parameter schemas are a few fixed objects, and checking and compiling them again for
#: every trigger instance and execution was a third of a dispatch's CPU (bench/reaction.py,
#: py-spy). The schema is kept referenced, so its id cannot be reused while it is cached.
_VALIDATORS = {}
_VALIDATORS_MAX = 256


def _validator(schema, what):
    """``(validator, plan)`` of ``schema`` after :func:`check_schema`, built once per schema
    object: its :data:`CustomValidator` and its :func:`_flat_plan`. A schema must not be
    modified after it was validated against (pack metadata is not)."""
    hit = _VALIDATORS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1], hit[2]
    check_schema(schema, "%s schema" % what)
    validator, plan = CustomValidator(schema), _flat_plan(schema)
    if len(_VALIDATORS) >= _VALIDATORS_MAX:
        _VALIDATORS.clear()  # callers building a schema per call: correct, only slower
    _VALIDATORS[id(schema)] = (schema, validator, plan)
    return validator, plan


#: Draft-4 types (jsonschema's ``Draft4Validator.TYPE_CHECKER``) as exact checks of plain
#: values; anything else (a float for "integer", a tuple for "array", a Decimal) is left to
#: jsonschema.
_FLAT_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
#: keywords a property of a flat schema may carry (the others make the schema not flat)
_FLAT_PROPERTY_KEYS = {"type", "required", "default", "description", "title", "secret", "immutable", "position",
                       "enum", "minimum", "maximum"}


def _flat_plan(schema):
    """How to accept an instance of a flat schema without jsonschema, or None.

    A flat schema is an object of properties that use only a type (or list of types),
    draft-3 ``required``, an ``enum`` of strings and annotations, with a boolean
    ``additionalProperties`` and inclusive numeric ``minimum``/``maximum``: the parameter and payload schemas of most packs (this one's
    all). jsonschema's validation of such a schema walks every keyword through its generic
    machinery, about as costly as the rest of a dispatch (bench/reaction.py, py-spy); the plan
    checks the same rules directly. It only ever *accepts*: whatever it does not accept goes
    to jsonschema, which decides and words the error, so a flat check can never let through
    something StackStorm's validator refuses.

    Returns:
        ``(properties, additional, names)``: ``[(name, type checks, required, enum or None,
        (minimum, maximum))]``,
        whether other properties are allowed, and the property names; None when the schema
        is not flat.
    """
    if not isinstance(schema, dict) or set(schema) - {"type", "properties", "additionalProperties", "description",
                                                      "title"}:
        return None
    if schema.get("type", "object") != "object" or not isinstance(schema.get("additionalProperties", True), bool):
        return None
    properties = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict) or set(prop) - _FLAT_PROPERTY_KEYS or "type" not in prop:
            return None
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        if not types or any(t not in _FLAT_TYPES for t in types):
            return None
        enum = prop.get("enum")
        if enum is not None and not (isinstance(enum, list) and all(isinstance(e, str) for e in enum)):
            return None
        bounds = (prop.get("minimum"), prop.get("maximum"))
        if any(b is not None and (isinstance(b, bool) or not isinstance(b, (int, float))) for b in bounds):
            return None
        properties.append((name, tuple(_FLAT_TYPES[t] for t in types), prop.get("required") is True, enum, bounds))
    return properties, schema.get("additionalProperties", True), frozenset(p[0] for p in properties)


def _flat_accepts(plan, instance):
    """True when ``instance`` certainly matches the flat schema of ``plan`` (:func:`_flat_plan`)."""
    if not isinstance(instance, dict):
        return False
    properties, additional, names = plan
    for name, checks, required, enum, (low, high) in properties:
        if name not in instance:
            if required:
                return False
            continue
        value = instance[name]
        if not any(check(value) for check in checks):
            return False
        if enum is not None and not (isinstance(value, str) and value in enum):
            return False
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (low is not None and value < low) or (high is not None and value > high)):
            return False
    return additional or all(k in names for k in instance)


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
    # a missing required property is already in the path (see _properties_draft3)
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
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
    """Fill defaults and validate ``instance`` against a StackStorm ``schema`` with
    :data:`CustomValidator` (st2's ``validate(instance, schema, cls=CustomValidator,
    use_default=True)``; apply :func:`allow_default_none` to the schema first where st2 passes
    ``allow_default_none=True``, as :func:`properties_schema` does).

    Args:
        instance: the value (a dict is copied, not modified).
        schema: the schema, StackStorm style (``required: true`` inside each property).
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
    validator, plan = _validator(schema, what)
    instance = copy.deepcopy(instance)
    if use_default:
        fill_defaults(instance, schema)
    if plan is not None and _flat_accepts(plan, instance):
        return instance
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        err = errors[0]
        path = _error_path(err)
        secret = _is_secret_path(secret_properties, [str(p) for p in err.absolute_path])
        raise ValidationFailed(what, path, _masked_message(err) if secret else err.message)
    return instance


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



def _properties_draft3(validator, properties, instance, schema):
    """Draft-3 ``properties``: validate each present property and report each missing one whose
    schema says ``required: true`` (path = the property's name).

    st2's CustomValidator uses ``jsonschema._validators.properties_draft3``; jsonschema keeps that
    function private (moved to ``_legacy_keywords`` in 4.x, absent from the public API), so these
    few lines restate it rather than import a private module that differs between versions.
    """
    if not validator.is_type(instance, "object"):
        return
    for name, subschema in properties.items():
        if name in instance:
            yield from validator.descend(instance[name], subschema, path=name, schema_path=name)
        elif isinstance(subschema, dict) and subschema.get("required", False) is True:
            error = jsonschema.ValidationError("%r is a required property" % name, validator="required",
                                               validator_value=True, instance=instance, schema=schema)
            error.path.appendleft(name)
            yield error


#: StackStorm's ``CustomValidator``: draft-4 keywords and type semantics, draft-3 ``properties``
#: (``required: true`` per property), no draft-4 list ``required`` (st2 leaves it out, and its
#: meta-schema rejects it), meta-schema :data:`PAYLOAD_META_SCHEMA` (``custom.json``).
CustomValidator = jsonschema.validators.create(
    meta_schema=PAYLOAD_META_SCHEMA,
    validators=dict({k: v for k, v in jsonschema.Draft4Validator.VALIDATORS.items() if k != "required"},
                    properties=_properties_draft3),
    type_checker=jsonschema.Draft4Validator.TYPE_CHECKER,
)

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
