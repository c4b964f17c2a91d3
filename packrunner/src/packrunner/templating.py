"""Jinja rendering with StackStorm's context and filters.

Imitates ``st2common/util/jinja.py`` (environment + the filters of
``get_filters()``) and ``st2common/services/keyvalues.py`` (``KeyValueLookup``
behind ``{{ st2kv.system.key }}``).

Action parameters are NOT rendered here but in :mod:`packrunner.params`
(StackStorm renders them to strings, then casts them by declared type).
:func:`render_value` keeps the Python type of a value that is exactly one
``{{ expr }}``; packrunner uses it only for ``{{ st2kv... }}`` values of the
pack config.
"""

import datetime
import functools
import json
import os
import re

import jinja2
import yaml

from .errors import PackrunnerError

__all__ = [
    "get_environment",
    "KeyValueLookup",
    "build_context",
    "render_value",
    "is_template",
    "TemplateRenderError",
    "NONE_MAGIC_VALUE",
]

#: What ``use_none`` turns None into; casts turn it back into None
#: (``st2common/util/jinja.py``, ``st2common/util/casts.py``).
NONE_MAGIC_VALUE = "%*****__%NONE%__*****%"

_SINGLE_EXPR = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class TemplateRenderError(PackrunnerError):
    """Raised when a template cannot be rendered (syntax error, undefined variable...)."""


# --- filters (st2common/expressions/functions/*.py) --------------------------

def _to_json_string(value, indent=None, sort_keys=False, separators=(",", ": ")):
    return json.dumps(_plain(value), indent=indent, sort_keys=sort_keys, separators=separators)


def _to_yaml_string(value, indent=None, allow_unicode=True):
    return yaml.safe_dump(_plain(value), indent=indent, allow_unicode=allow_unicode, default_flow_style=False)


def _to_complex(value):
    return json.dumps(_plain(value))


def _from_json_string(value):
    return json.loads(str(value))


def _from_yaml_string(value):
    return yaml.safe_load(str(value))


def _json_escape(value):
    # st2common/expressions/functions/data.py: json.dumps(value).strip('"'), for any value.
    return json.dumps(_plain(value)).strip('"')


def _to_human_time_from_seconds(seconds):
    """``st2common/expressions/functions/time.py``: 3725 -> ``"1h2m5s"``."""
    if not isinstance(seconds, (int, float)):
        raise AssertionError("to_human_time_from_seconds needs an int or float, got %r" % (seconds,))
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return "%s\u03BCs" % seconds
    if isinstance(seconds, float):
        seconds = int(round(seconds))
    offset = datetime.datetime(1, 1, 1) + datetime.timedelta(seconds=seconds)
    parts = [offset.year - 1, offset.day - 1, offset.hour, offset.minute, offset.second]
    first = next((i for i, x in enumerate(parts) if x), None)
    if first is None:
        return "0s"
    parts = parts[first:]
    return "".join("%s%s" % (v, u) for v, u in zip(parts, "ydhms"[-len(parts):]))


def _regex_match(value, pattern, ignorecase=False):
    flags = re.IGNORECASE if ignorecase else 0
    return re.match(pattern, str(value), flags) is not None


def _regex_search(value, pattern, ignorecase=False):
    flags = re.IGNORECASE if ignorecase else 0
    return re.search(pattern, str(value), flags) is not None


def _regex_replace(value, pattern, replacement, ignorecase=False):
    flags = re.IGNORECASE if ignorecase else 0
    return re.sub(pattern, replacement, str(value), flags=flags)


def _regex_substring(value, pattern, result_index=0, ignorecase=False):
    flags = re.IGNORECASE if ignorecase else 0
    found = re.findall(pattern, str(value), flags)
    if not found:
        raise IndexError("No string found matching the pattern %r" % pattern)
    return found[result_index]


def _pass_context(func):
    """Jinja2 3's ``pass_context`` (``contextfilter`` in 2.11)."""
    return (getattr(jinja2, "pass_context", None) or jinja2.contextfilter)(func)


@_pass_context
def _decrypt_kv(context, value):
    """``decrypt_kv`` (``st2common/expressions/functions/datastore.py``): the plaintext of a
    secret datastore value. ``{{ st2kv.system.x | decrypt_kv }}`` decrypts key ``x`` (an error
    naming ``st2kv.system.x`` when it does not exist, as StackStorm's); a plain string is taken
    as ciphertext and decrypted with the datastore key of the rendering context's store."""
    if isinstance(value, KeyValueLookup):
        return value.decrypted()
    store = None
    st2kv = context.get("st2kv")
    if isinstance(st2kv, dict) and isinstance(st2kv.get("system"), KeyValueLookup):
        store = st2kv["system"]._store
    if store is None:
        raise ValueError("decrypt_kv: no datastore to read the key file from")
    return store.decrypt_value(str(value))


def _use_none(value):
    return NONE_MAGIC_VALUE if value is None else value


def get_environment(strict=True):
    """Return a Jinja environment with StackStorm's custom filters.

    Args:
        strict: use ``StrictUndefined`` (undefined variables raise), as st2
            does when rendering action parameters.
    """
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        {
            "to_json_string": _to_json_string,
            "to_yaml_string": _to_yaml_string,
            "to_complex": _to_complex,
            "from_json_string": _from_json_string,
            "from_yaml_string": _from_yaml_string,
            "json_escape": _json_escape,
            "regex_match": _regex_match,
            "regex_search": _regex_search,
            "regex_replace": _regex_replace,
            "regex_substring": _regex_substring,
            "decrypt_kv": _decrypt_kv,
            "use_none": _use_none,
            "basename": os.path.basename,
            "dirname": os.path.dirname,
            "to_human_time_from_seconds": _to_human_time_from_seconds,
        }
    )
    return env


_ENV = get_environment(strict=True)


class KeyValueLookup:
    """``st2kv.system`` / ``st2kv.user`` lookup object (``st2common/services/keyvalues.py``).

    ``{{ st2kv.system.a.b }}`` looks up the key ``a.b``; the object renders to
    the stored string (empty string when missing, as in StackStorm).
    ``{{ st2kv.user.x }}`` reads the user-scoped key ``x`` of the current user.
    A secret key renders as its ciphertext, as in StackStorm; ``| decrypt_kv`` gives the
    plaintext.

    Args:
        store: a :class:`packrunner.datastore.Store`.
        key_prefix: accumulated key (internal).
        scope: ``system`` or ``user``.
    """

    def __init__(self, store, key_prefix="", scope="system"):
        self._store = store
        self._key_prefix = key_prefix
        self._scope = scope

    def _value(self):
        if not self._key_prefix or self._store is None:
            return ""
        value = self._store.get(self._key_prefix, scope=self._scope)
        return "" if value is None else value

    def decrypted(self):
        """The plaintext of this key (``| decrypt_kv``).

        Raises:
            ValueError: the key does not exist (names ``st2kv.<scope>.<key>``).
            crypto.DecryptionError: not ciphertext (not a secret key), or another key file.
        """
        value = self._value()
        if value == "":
            raise ValueError("Referenced datastore item \"st2kv.%s.%s\" doesn't exist"
                             % (self._scope, self._key_prefix))
        return self._store.decrypt_value(value, name=self._key_prefix)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self.__getitem__(name)

    def __getitem__(self, key):
        name = "%s.%s" % (self._key_prefix, key) if self._key_prefix else str(key)
        return KeyValueLookup(self._store, name, self._scope)

    def __str__(self):
        return self._value()

    def __int__(self):
        return int(float(self._value()))

    def __float__(self):
        return float(self._value())

    def __eq__(self, other):
        return self._value() == (other._value() if isinstance(other, KeyValueLookup) else other)

    def __hash__(self):
        return hash(self._value())

    def __bool__(self):
        return bool(self._value())

    def __len__(self):
        return len(self._value())

    def __iter__(self):
        return iter(self._value())

    def __contains__(self, item):
        return item in self._value()

    def __repr__(self):
        return "KeyValueLookup(%r)" % self._key_prefix


def build_context(store=None, payload=None, config=None, extra=None):
    """Build the rendering context.

    Args:
        store: datastore for ``st2kv.system`` and ``st2kv.user``.
        payload: trigger payload, exposed as ``trigger``.
        config: pack config, exposed as ``config_context``.
        extra: more top-level names.

    Returns:
        dict usable by :func:`render_value`.
    """
    ctx = {"st2kv": {"system": KeyValueLookup(store), "user": KeyValueLookup(store, scope="user")}}
    if payload is not None:
        ctx["trigger"] = payload
    if config is not None:
        ctx["config_context"] = config
    if extra:
        ctx.update(extra)
    return ctx


def _plain(value):
    """Turn KeyValueLookup objects (also nested) into plain strings."""
    if isinstance(value, KeyValueLookup):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def is_template(value):
    """True if ``value`` is a string containing Jinja markers."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


# Jinja compiles a source string on every from_string()/compile_expression(); a rule's
# parameters are the same few strings for every trigger, so compile each once per environment.
@functools.lru_cache(maxsize=512)
def compiled_template(env, source):
    """``env.from_string(source)``, compiled once per environment and source string (the
    most recent 512 kept). A compiled ``jinja2.Template`` holds no render state, so one
    object serves every render and thread.

    Raises:
        jinja2.exceptions.TemplateSyntaxError: ``source`` is not valid Jinja (not cached).
    """
    return env.from_string(source)



@functools.lru_cache(maxsize=512)
def _compiled_expression(env, source):
    return env.compile_expression(source, undefined_to_none=False)


def render_value(value, context, env=None):
    """Render one value.

    Strings that are exactly one ``{{ expr }}`` are evaluated as an expression
    and keep their Python type; other strings with Jinja markers are rendered
    to strings; dicts/lists are rendered recursively; other values are
    returned unchanged.

    Raises:
        TemplateRenderError: on syntax errors or undefined variables.
    """
    env = env or _ENV
    if isinstance(value, dict):
        return {k: render_value(v, context, env) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, env) for v in value]
    if not is_template(value):
        return value
    try:
        m = _SINGLE_EXPR.match(value)
        if m and "{{" not in m.group("expr") and "{%" not in value:
            fn = _compiled_expression(env, m.group("expr").strip())
            result = fn(**context)
            if isinstance(result, jinja2.Undefined):
                # Force StrictUndefined to raise with a helpful message.
                str(result)
                raise TemplateRenderError("%r is undefined" % value)
            return _plain(result)
        return compiled_template(env, value).render(**context)
    except TemplateRenderError:
        raise
    except jinja2.exceptions.TemplateError as e:
        raise TemplateRenderError("failed to render %r: %s" % (value, e)) from e
    except Exception as e:  # errors raised by filters/expressions
        raise TemplateRenderError("failed to render %r: %s: %s" % (value, type(e).__name__, e)) from e
