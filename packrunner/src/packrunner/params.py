"""Action parameter rendering and casting, as StackStorm does it.

Mirrors ``st2common/st2common/util/param.py`` (``render_live_params``,
``render_final_params``, ``_process``, ``_process_defaults``, ``_render``,
``_cast_params_from``) and ``st2common/st2common/util/casts.py`` (StackStorm
3.8/3.9):

* a string containing ``{{``/``{%`` is rendered with
  ``ENV.from_string(value).render(context)``: the result is always a **string**
  (``{{ trigger.n }}`` with n=5 gives ``"5"``);
* a dict/list whose ``str()`` contains Jinja is JSON-encoded, every
  ``"{{name}}"`` (a bare name, no spaces or dots) becomes
  ``{{name | to_complex}}``, the text is rendered and JSON-decoded;
* parameters may reference each other (``{{ other }}``); missing and cyclic
  dependencies are errors, as in st2's dependency graph;
* then each value is cast to its declared ``type`` (casts.py): ``string``
  keeps None and rejects non-strings, ``integer``/``number`` are ``int()`` /
  ``float()``, ``boolean`` is ``ast.literal_eval(x.capitalize())``,
  ``object``/``array`` are ``json.loads`` then ``ast.literal_eval``; the
  ``use_none`` magic string becomes None (then ``int(None)``/``float(None)``
  fail for integer/number, as in st2); a parameter without ``type`` is not
  cast.
"""

import ast
import functools
import json
import re

import jinja2
from jinja2 import meta

from .errors import PackrunnerError
from .templating import NONE_MAGIC_VALUE, compiled_template, get_environment, is_template

__all__ = [
    "ParamException",
    "ParamCastError",
    "cast_parameter",
    "render_live_params",
    "render_final_params",
    "NONE_MAGIC_VALUE",
]

_ENV = get_environment(strict=True)
_COMPLEX_NAME = re.compile(r'"{{([A-z0-9_-]+)}}"')


class ParamException(PackrunnerError, ValueError):
    """Rendering failed (``st2common/exceptions/param.py``): a missing or cyclic
    dependency, or a template that raised while rendering."""


class ParamCastError(PackrunnerError, ValueError):
    """A rendered value cannot be cast to its declared type (st2 raises the
    cast's own ValueError/SyntaxError here).

    Attributes:
        name: the parameter name.
        type: the declared type.
        error: the original exception.
    """

    def __init__(self, name, param_type, error):
        self.name = name
        self.type = param_type
        self.error = error
        super().__init__('parameter "%s" cannot be cast to %s: %s: %s' % (
            name, param_type, type(error).__name__, error))


# --- casts (st2common/util/casts.py) -------------------------------------------

def _cast_none(x):
    return None if isinstance(x, str) and x == NONE_MAGIC_VALUE else x


def _cast_object(x):
    x = _cast_none(x)
    if isinstance(x, str):
        try:
            return json.loads(x)
        except Exception:
            return ast.literal_eval(x)
    return x


def _cast_boolean(x):
    x = _cast_none(x)
    if isinstance(x, str):
        return ast.literal_eval(x.capitalize())
    return x


def _cast_integer(x):
    x = _cast_none(x)
    return int(x)


def _cast_number(x):
    x = _cast_none(x)
    return float(x)


def _cast_string(x):
    if x is None:
        return x
    if not isinstance(x, str):
        raise ValueError('Value "%s" must either be a string or None. Got "%s".' % (x, type(x).__name__))
    return _cast_none(x)


_CASTS = {
    "array": _cast_object,
    "boolean": _cast_boolean,
    "integer": _cast_integer,
    "number": _cast_number,
    "object": _cast_object,
    "string": _cast_string,
}


def cast_parameter(value, schema):
    """Cast ``value`` to the type declared in a parameter ``schema`` (st2's ``param._cast``).

    Args:
        value: the rendered value.
        schema: the parameter's schema dict (``{"type": ...}``), or None.

    Returns:
        the cast value; None and values of typeless (or unknown-typed)
        parameters are returned unchanged. ``NONE_MAGIC_VALUE`` (``use_none``)
        becomes None for string/boolean/object/array; for integer/number
        st2's casts do ``int(None)``/``float(None)``, a TypeError, and so
        does this.

    Raises:
        ValueError, SyntaxError, TypeError: the value cannot be cast (as in
        st2, e.g. ``int("abc")``, a non-string for a ``string`` parameter).

    Source: ``st2common/util/param.py`` ``_cast`` and ``st2common/util/casts.py``.
    """
    if value is None or not schema or not isinstance(schema, dict):
        return value
    cast = _CASTS.get(schema.get("type")) if isinstance(schema.get("type"), str) else None
    return cast(value) if cast else value


# --- dependency graph (st2common/util/param.py) ---------------------------------

class _Graph:
    """The subset of ``networkx.DiGraph`` that param.py uses: node attribute
    dicts updated in place by ``add_node`` and dependency edges."""

    def __init__(self):
        self.nodes = {}
        self.edges = set()  # (dependency, dependent)

    def add_node(self, name, **attrs):
        self.nodes.setdefault(name, {}).update(attrs)

    def add_edge(self, src, dst):
        self.nodes.setdefault(src, {})
        self.nodes.setdefault(dst, {})
        self.edges.add((src, dst))

    def topological_order(self):
        """Names in dependency order; raises ParamException on cycles."""
        deps = {name: set() for name in self.nodes}
        for src, dst in self.edges:
            deps[dst].add(src)
        order, done, cyclic = [], set(), set()

        def visit(name, stack):
            if name in done:
                return
            if name in stack:
                cyclic.add(name)
                return
            stack.add(name)
            for dep in sorted(deps[name]):
                visit(dep, stack)
            stack.discard(name)
            done.add(name)
            order.append(name)

        for name in sorted(self.nodes):
            visit(name, set())
        if cyclic:
            raise ParamException(
                "Cyclic dependency found in the following variables: %s. Likely the variable is "
                "referencing itself" % ", ".join(sorted(cyclic)))
        return order


@functools.lru_cache(maxsize=512)
def _dependencies(source):
    """The variables template ``source`` reads (``meta.find_undeclared_variables``), in the
    order Jinja gives them; parsed once per source string (the same few for every trigger).

    Raises:
        jinja2.exceptions.TemplateSyntaxError: not valid Jinja (not cached).
    """
    return tuple(meta.find_undeclared_variables(_ENV.parse(source)))


def _process(graph, name, value):
    complex_value_str = str(value) if isinstance(value, (list, dict)) else None
    if is_template(value) or is_template(complex_value_str):
        try:
            dependencies = _dependencies(str(value))
        except jinja2.exceptions.TemplateSyntaxError:
            graph.add_node(name, value=value)  # not Jinja after all (st2 does the same)
            return
        graph.add_node(name, template=value)
        for dependency in dependencies:
            graph.add_edge(dependency, name)
    else:
        graph.add_node(name, value=value)


def _process_defaults(graph, schemas):
    for schema in schemas:
        for name, prop in schema.items():
            prop = prop if isinstance(prop, dict) else {}
            absent = name not in graph.nodes
            is_none = graph.nodes.get(name, {}).get("value") is None
            if absent or is_none or prop.get("immutable", False):
                _process(graph, name, prop.get("default"))


def _render(node, context):
    if "template" in node:
        template = node["template"]
        complex_type = isinstance(template, (list, dict))
        if complex_type:
            template = _COMPLEX_NAME.sub(r"{{\1 | to_complex}}", json.dumps(template))
        result = compiled_template(_ENV, str(template)).render(context)
        return json.loads(result) if complex_type else result
    return node.get("value")


def _resolve(graph):
    for name, node in graph.nodes.items():
        if "value" not in node and "template" not in node:
            raise ParamException('Dependency unsatisfied in variable "%s"' % name)
    context = {}
    for name in graph.topological_order():
        try:
            context[name] = _render(graph.nodes[name], context)
        except Exception as e:
            raise ParamException('Failed to render parameter "%s": %s' % (name, e)) from e
    return context


def _graph(base_context):
    graph = _Graph()
    for name, value in (base_context or {}).items():
        graph.add_node(name, value=value)
    return graph


def _cast_all(names, context, schemas):
    result = {}
    for name in names:
        schema = {}
        for candidate in schemas:
            if name in candidate:
                schema = candidate[name]
        result[name] = _cast_named(name, context[name], schema)
    return result


def _cast_named(name, value, schema):
    try:
        return cast_parameter(value, schema)
    except (ValueError, SyntaxError, TypeError) as e:
        raise ParamCastError(name, (schema or {}).get("type"), e) from e


def render_live_params(runner_parameters, action_parameters, params, base_context):
    """Render the parameters given by a rule or by ``run`` (st2's ``render_live_params``).

    Args:
        runner_parameters: runner parameter schemas (python-script's).
        action_parameters: the action's parameter schemas.
        params: the given (live) parameters, possibly Jinja templates.
        base_context: the rendering context: ``st2kv``, ``config_context``,
            ``action_context`` and, for rules, ``trigger``.

    Returns:
        dict: the given parameters rendered and cast, plus parameters whose
        (non-immutable) default is a template, rendered and cast.

    Raises:
        ParamException: missing/cyclic dependency or render failure.
        ParamCastError: a value cannot be cast (names the parameter).

    Source: ``st2common/util/param.py`` ``render_live_params`` /
    ``_cast_params_from``.
    """
    schemas = [action_parameters or {}, runner_parameters or {}]
    graph = _graph(base_context)
    for name, value in (params or {}).items():
        _process(graph, name, value)
    _process_defaults(graph, schemas)
    context = _resolve(graph)
    result = _cast_all(params or {}, context, schemas)
    for schema in schemas:
        for name, prop in schema.items():
            prop = prop if isinstance(prop, dict) else {}
            if prop.get("immutable") or "default" not in prop or prop.get("default") == context[name]:
                continue
            if not is_template(prop.get("default")) or name in (params or {}):
                continue
            result[name] = _cast_named(name, context[name], prop)
    return result


def render_final_params(runner_parameters, action_parameters, params, base_context):
    """Complete rendered live parameters with every declared parameter (st2's
    ``render_final_params``): given values are not rendered again; absent,
    None and immutable parameters take their (rendered) default, or None.

    Args: as :func:`render_live_params`; ``params`` are its output.

    Returns:
        ``(runner_params, action_params)``: every declared runner and action
        parameter, cast by type (None when unset without default).

    Raises:
        ParamException, ParamCastError: as :func:`render_live_params`.

    Source: ``st2common/util/param.py`` ``render_final_params`` / ``_split_params``.
    """
    runner_parameters = runner_parameters or {}
    action_parameters = action_parameters or {}
    schemas = [action_parameters, runner_parameters]
    graph = _graph(base_context)
    for name, value in (params or {}).items():
        graph.add_node(name, value=value)
    _process_defaults(graph, schemas)
    context = _resolve(graph)
    context = _cast_all(context, context, schemas)
    runner = {k: v for k, v in context.items() if k in runner_parameters}
    action = {k: v for k, v in context.items() if k in action_parameters and k not in runner_parameters}
    return runner, action
