"""The pack config: loaded, rendered (``{{ st2kv.system.x }}``) and validated against
config.schema.yaml, as StackStorm's ``ContentPackConfigLoader`` and config validation do."""

import copy
import logging
import os

from .crypto import DatastoreKeyError, DecryptionError
from .errors import ConfigError
from .pack import PackError, load_yaml
from .schema import (
    SchemaConversionError,
    ValidationFailed,
    cast_value,
    fill_defaults,
    properties_schema,
    validate_with_defaults,
)
from .templating import TemplateRenderError, build_context, is_template, render_value

__all__ = ["load_config"]

LOG = logging.getLogger("packrunner.runner")


def load_config(pack, config, store=None, strict=None):
    """Load, render and validate the pack config.

    Args:
        pack: :class:`packrunner.pack.Pack`.
        config: a dict, a path to a YAML file, or None (no config: ``{}``).
        store: datastore for ``{{ st2kv.system.x }}`` values.
        strict: validate required keys; default True when a config was given,
            False for None (StackStorm does not validate a missing config; the
            action just sees the defaults). Missing required keys are then
            only logged.

    Returns:
        the config dict with defaults filled.

    Raises:
        ConfigError: file unreadable, not a mapping, or schema violation
            (message names the key).
    """
    if strict is None:
        strict = config is not None
    if isinstance(config, (str, os.PathLike)):
        try:
            data = load_yaml(config)
        except PackError as e:
            raise ConfigError("config: %s" % e) from e
        config = data or {}
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError("config must be a mapping, got %s" % type(config).__name__)
    props = pack.config_schema or {}
    config = copy.deepcopy(config)
    # Render {{ st2kv.system.x }} string values (st2's ContentPackConfigLoader
    # _get_datastore_value_for_expression): a secret key renders as its ciphertext; the rendered
    # value of a property marked `secret: true` is then decrypted (deserialize_key_value), so it
    # must be exactly one key set with --encrypt, without `| decrypt_kv`.
    context = build_context(store=store)
    for key, value in list(config.items()):
        if is_template(value):
            prop = props.get(key) or {}
            try:
                rendered = render_value(value, context)
            except TemplateRenderError as e:
                raise ConfigError("config key %r: %s" % (key, e)) from e
            if isinstance(prop, dict) and prop.get("secret") is True and rendered not in (None, ""):
                try:
                    rendered = store.decrypt_value(str(rendered), name="config key %s" % key)
                except (DecryptionError, DatastoreKeyError) as e:
                    raise ConfigError(
                        "config key %r is marked secret, so its rendered value is decrypted (as StackStorm "
                        "does): it must be one datastore key set with --encrypt, without '| decrypt_kv' "
                        "(%s)" % (key, e)) from e
            config[key] = cast_value(rendered, prop.get("type")) if isinstance(prop, dict) else rendered
    schema = properties_schema(props, additional_properties=True)
    if strict:
        try:
            return validate_with_defaults(config, schema, what="config", secret_properties=props)
        except ValidationFailed as e:
            raise ConfigError("config key '%s' invalid: %s" % (e.path, e.message)) from e
        except SchemaConversionError as e:
            raise ConfigError(str(e)) from e
    fill_defaults(config, schema)
    missing = [k for k, p in schema["properties"].items() if isinstance(p, dict) and p.get("required") is True
               and k not in config]
    if missing:
        LOG.warning("no config given; required config keys missing: %s", ", ".join(missing))
    return config
