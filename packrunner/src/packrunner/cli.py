"""Command line interface: ``python -m packrunner [global options] COMMAND ...``.

Exit codes: 0 ok, 1 action failed / key or execution not found / rule does
not match, 2 usage, config, parameter or validation error.
"""

import argparse
import datetime
import json
import logging
import os
import signal
import sys
import threading

from .crypto import DatastoreKeyError, DecryptionError
from .errors import PackrunnerError
from .pack import Pack, PackError
from .runner import DEFAULT_WORKERS, ActionNotFound, ConfigError, ParameterError, Runner
from .retention import Retention, rotating_log_handler
from .schema import PYTHON_RUNNER_PARAMETERS, RUNNER_PARAMETER_SUPPORT, cast_value

__all__ = ["main", "build_parser", "parse_kv_args"]

LOG = logging.getLogger("packrunner.cli")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(PackrunnerError):
    """Bad command line input (exit code 2)."""


def _iso(ts):
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _format_record(rec):
    out = dict(rec)
    out.pop("future", None)
    for key in ("start_time", "end_time"):
        if out.get(key) is not None:
            out[key] = _iso(out[key])
    return out


def _print_json(value):
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def parse_kv_args(items, params_meta=None):
    """Parse ``key=value`` arguments like ``st2 run``.

    Values of parameters declared as integer/number/boolean/object/array are
    cast (JSON for objects/arrays); strings stay strings; undeclared
    parameters try JSON for objects/arrays only and otherwise stay strings.

    Raises:
        UsageError: an item without ``=``.
    """
    params = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError("argument %r is not key=value" % item)
        key, value = item.split("=", 1)
        meta = (params_meta or {}).get(key)
        ptype = meta.get("type") if isinstance(meta, dict) else None
        if ptype and ptype != "string":
            if ptype == "array" and not value.strip().startswith("["):
                params[key] = [v.strip() for v in value.split(",")] if value else []
            else:
                params[key] = cast_value(value, ptype)
        elif ptype is None and value.strip()[:1] in ("{", "["):
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        else:
            params[key] = value
    return params


def build_parser():
    """Return the argparse parser (all commands have help text)."""
    parser = argparse.ArgumentParser(
        prog="python -m packrunner",
        description="Run a StackStorm pack locally (sensors, rules, python-script actions, datastore) "
                    "without a StackStorm installation.",
    )
    parser.add_argument("--pack", default=os.getcwd(), metavar="DIR",
                        help="pack directory holding pack.yaml (default: current directory)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="YAML pack config, validated against config.schema.yaml (default: none, "
                             "schema defaults only)")
    parser.add_argument("--state-dir", metavar="DIR",
                        default=os.environ.get("PACKRUNNER_STATE_DIR") or os.path.join(os.getcwd(), ".state"),
                        help="directory of packrunner.sqlite (default: $PACKRUNNER_STATE_DIR or ./.state); "
                             "created 0700")
    parser.add_argument("--datastore-key", metavar="FILE", default=None,
                        help="datastore key file encrypting secret values (StackStorm's datastore_key.json "
                             "format; default: $PACKRUNNER_DATASTORE_KEY or STATE_DIR/datastore_key.json, "
                             "created 0600 when the first secret is set)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="logging level (default INFO); logs go to stderr unless --log-file")
    parser.add_argument("--log-file", metavar="FILE", default=None,
                        help="write the log to FILE instead of stderr, rotated by size (see --log-max-bytes)")
    parser.add_argument("--log-max-bytes", type=int, default=Retention.log_max_bytes, metavar="BYTES",
                        help="rotate --log-file when it would exceed BYTES (default %d = 50 MiB; 0: never)"
                             % Retention.log_max_bytes)
    parser.add_argument("--log-backup-count", type=int, default=Retention.log_backup_count, metavar="N",
                        help="rotated log files kept, FILE.1 ... FILE.N (default %d)" % Retention.log_backup_count)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("start", help="run the pack (sensors, rules, actions) until SIGTERM/SIGINT",
                       description="Start all sensors, process their triggers through the rules and run "
                                   "actions until SIGTERM or SIGINT; then stop gracefully and exit 0.")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                   help="size of the action thread pool (default %d)" % DEFAULT_WORKERS)
    p.add_argument("--stop-timeout", type=float, default=30.0,
                   help="seconds to wait for running actions on shutdown (default 30)")
    p.add_argument("--history-ttl-days", type=float, default=Retention.history_ttl_days, metavar="DAYS",
                   help="delete recorded executions and trigger instances older than DAYS (default %g, "
                        "StackStorm's smallest garbage-collector TTL; 0: no age limit)" % Retention.history_ttl_days)
    p.add_argument("--history-max-rows", type=int, default=Retention.history_max_rows, metavar="N",
                   help="keep at most the newest N executions and N trigger instances (default %d; 0: no limit)"
                        % Retention.history_max_rows)
    p.add_argument("--prune-interval", type=float, default=Retention.interval, metavar="S",
                   help="seconds between two prunings of the history (default %g)" % Retention.interval)

    p = sub.add_parser("run", help="run one action, like 'st2 run'", add_help=False,
                       description="Run one action and print the execution as JSON. Exit 0 if it "
                                   "succeeded, 1 if it failed or timed out, 2 on bad parameters. "
                                   "'run ACTION -h' lists the action's parameters, like 'st2 run ACTION -h'.")
    p.add_argument("-h", "--help", action="store_true",
                   help="without ACTION: this help; with ACTION: the action's description and parameters")
    p.add_argument("action", nargs="?", help="action ref (pack.name) or bare name")
    p.add_argument("params", nargs="*", metavar="key=value",
                   help="parameters; values are cast to the declared type (JSON for object/array)")
    p.add_argument("--trace-tag", default=None, help="record the execution under this trace tag (st2 run --trace-tag)")
    p.set_defaults(print_run_help=p.print_help)

    p = sub.add_parser("action", help="inspect the pack's actions, like 'st2 action'")
    asub = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    asub.required = True
    asub.add_parser("list", help="list the pack's actions as JSON (ref, enabled, runner_type, description)")

    p = sub.add_parser("execution", help="inspect recorded executions")
    esub = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    esub.required = True
    q = esub.add_parser("list", help="list the newest executions")
    q.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    q.add_argument("--trace-tag", default=None, help="only the executions of this trace")
    q = esub.add_parser("get", help="show one execution (id or unique id prefix)")
    q.add_argument("id", help="execution id")

    p = sub.add_parser("trace", help="follow trigger instances and their executions by trace tag, like 'st2 trace'",
                       description="A trace groups the trigger instances dispatched with one trace tag "
                                   "(sensor_service.dispatch(trigger, payload, trace_tag)) and the executions "
                                   "they caused, like 'st2 trace list --trace-tag' / 'st2 trace get'.")
    trsub = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    trsub.required = True
    q = trsub.add_parser("list", help="the newest traces (trace tag, first and last time, counts)")
    q.add_argument("--trace-tag", default=None, help="only this trace")
    q.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    q = trsub.add_parser("get", help="one trace: its trigger instances and executions, oldest first")
    q.add_argument("trace_tag", help="the trace tag")

    p = sub.add_parser("key", help="manage the datastore, like 'st2 key'",
                       description="Read and write the key-value datastore like 'st2 key'. Scopes: system "
                                   "(default) and user (keys of $PACKRUNNER_USER, default stanley). Local keys "
                                   "of sensors and actions are system keys named <pack>.<ClassName>:<name>.")
    ksub = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    ksub.required = True

    def scope_arg(q, all_allowed=False):
        q.add_argument("--scope", default="system", choices=["system", "user"] + (["all"] if all_allowed else []),
                       help="key scope (default system)%s" % (", 'all' lists both" if all_allowed else ""))

    q = ksub.add_parser("get", help="print the value of a key (exit 1 if missing); a secret key's ciphertext "
                                    "unless --decrypt")
    q.add_argument("name", help="full key name (local sensor keys: <pack>.<Class>:<name>)")
    q.add_argument("--decrypt", action="store_true", help="print a secret key's plaintext")
    scope_arg(q)
    q = ksub.add_parser("set", help="set a key")
    q.add_argument("name", help="full key name")
    q.add_argument("value", help="value (stored as a string)")
    q.add_argument("--ttl", type=float, default=None, help="expire after S seconds")
    q.add_argument("--encrypt", action="store_true",
                   help="store the value encrypted with the datastore key file (AES-256, StackStorm's "
                        "format); 'key get'/'key list' show its ciphertext unless --decrypt")
    scope_arg(q)
    q = ksub.add_parser("load", help="set the keys of a JSON/YAML file, like 'st2 key load' (a secret never on "
                                     "a command line)",
                        description="Set keys from a JSON or YAML file, like 'st2 key load': a list of (or one) "
                                    "{name, value, scope, user, secret, encrypted, ttl}. secret: store encrypted; "
                                    "secret + encrypted: the value is ciphertext already (e.g. from 'st2 key list "
                                    "--json' with the same key file) and is checked to decrypt. Prints the loaded "
                                    "keys without their values.")
    q.add_argument("file", help="JSON/YAML file")
    q.add_argument("-c", "--convert", action="store_true",
                   help="store non-string values as JSON strings (else they are an error)")
    q = ksub.add_parser("delete", help="delete a key (exit 1 if missing)")
    q.add_argument("name", help="full key name")
    scope_arg(q)
    q = ksub.add_parser("list", help="list keys as JSON (name, value, scope, user, secret, expire_timestamp)")
    q.add_argument("--prefix", default=None, help="only names starting with P")
    q.add_argument("--decrypt", action="store_true", help="show the plaintext of secret keys (else ciphertext)")
    scope_arg(q, all_allowed=True)

    p = sub.add_parser("trigger", help="inspect the pack's triggers")
    tsub = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    tsub.required = True
    tsub.add_parser("list", help="list trigger types with their payload schema properties")
    q = tsub.add_parser("instances", help="list the newest recorded trigger instances")
    q.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    p = sub.add_parser("rule", help="inspect and test the pack's rules (like st2-rule-tester)")
    rsub = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    rsub.required = True
    rsub.add_parser("list", help="list the pack's rules (ref, enabled, trigger, action)")
    q = rsub.add_parser(
        "test", help="does a rule match a trigger instance? (like st2-rule-tester)",
        description="Evaluate one rule against one trigger instance, like st2-rule-tester: the rule's "
                    "trigger type must equal the instance's trigger, every criterion must match and the "
                    "action parameters must render. Prints a JSON report (matches, reason, failed "
                    "criterion, rendered action parameters, the parameters the runner would pass, "
                    "warnings) and exits 0 if the rule matches, 1 if it does not, 2 on bad input. "
                    "Nothing is executed. A rule given as a file is treated as enabled (as st2 does); "
                    "a rule given by ref keeps its own 'enabled'.",
        epilog="Trigger instance file (JSON or YAML): {\"trigger\": \"pack.name\", \"payload\": {...}}")
    q.add_argument("--rule", required=True, metavar="FILE_OR_REF",
                   help="rule YAML file, or rule ref (pack.name) / name of a rule of the pack")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--trigger-instance", metavar="FILE",
                     help="JSON/YAML file with 'trigger' (ref) and 'payload'")
    src.add_argument("--trigger-instance-id", metavar="ID",
                     help="id (or unique prefix) of a trigger instance recorded by the runner "
                          "(see 'trigger instances')")

    sub.add_parser("validate", help="check pack metadata like StackStorm's registration; exit 2 on problems",
                   description="Static checks with StackStorm's registration rules: pack.yaml (required keys, "
                               "semver version, ref, python_versions), config.schema.yaml (keys, action-"
                               "parameter schema), actions (unknown keys, single parameter types, unknown "
                               "parameter keys, immutable needs a default, unique contiguous positions, "
                               "runner-parameter overrides), sensors and trigger types (unknown keys, "
                               "poll_interval, payload schemas valid for StackStorm), rules (unknown keys, "
                               "explicit enabled, criteria with known type and a pattern, search "
                               "conditions, Jinja syntax, action and trigger refs, action parameters). "
                               "Prints 'file: key: problem' per problem; exit 0 if none, 2 otherwise.")
    return parser


def _setup_logging(args):
    if args.log_file:
        retention = Retention(log_max_bytes=args.log_max_bytes, log_backup_count=args.log_backup_count)
        handler = rotating_log_handler(args.log_file, retention)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.basicConfig(level=getattr(logging, args.log_level), handlers=[handler], force=True)
    else:
        logging.basicConfig(level=getattr(logging, args.log_level), format=LOG_FORMAT, stream=sys.stderr, force=True)


def _cmd_start(args):
    try:
        retention = Retention(history_ttl_days=args.history_ttl_days, history_max_rows=args.history_max_rows,
                              interval=args.prune_interval)
    except ValueError as e:
        raise UsageError(str(e)) from e
    runner = Runner(args.pack, config=args.config, state_dir=args.state_dir, workers=args.workers,
                    datastore_key=args.datastore_key, retention=retention)
    stop = threading.Event()

    def handler(signum, _frame):
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    runner.start()
    LOG.info("running pack %s from %s; state in %s (Ctrl-C or SIGTERM to stop)",
             runner.pack.ref, runner.pack.path, runner.state_dir)
    LOG.info("history kept: %s days, at most %s executions and trigger instances, pruned every %s s; log: %s",
             retention.history_ttl_days or "no limit of", retention.history_max_rows or "no limit of",
             retention.interval, "%s (rotated at %d bytes, %d kept)" % (args.log_file, args.log_max_bytes,
                                                                        args.log_backup_count)
             if args.log_file else "stderr (not rotated)")
    while not stop.wait(0.5):
        pass
    runner.stop(timeout=args.stop_timeout)
    runner.datastore.close()
    return EXIT_OK


def action_help(meta):
    """The text ``st2 run ACTION -h`` prints for an action (st2client ``ActionRunCommand``): the
    description, then the required and the optional parameters (runner parameters included), each
    with its description, type, default and accepted values; secret ones are marked, and each runner
    parameter says whether packrunner honours or ignores it (:data:`RUNNER_PARAMETER_SUPPORT`).

    Args:
        meta: :class:`packrunner.pack.ActionMeta`.

    Returns:
        the text (str).
    """
    params = meta.all_parameters
    lines = [meta.ref, "", meta.description or "(no description)", ""]

    def order(name):
        position = params[name].get("position") if isinstance(params[name], dict) else None
        return (position is None, position if position is not None else 0, name)

    for title, required in (("Required Parameters:", True), ("Optional Parameters:", False)):
        names = sorted((n for n, p in params.items() if bool((p or {}).get("required")) == required), key=order)
        if not names:
            continue
        lines.append(title)
        for name in names:
            spec = params[name] or {}
            lines.append("    %s%s" % (name, " (secret)" if spec.get("secret") else ""))
            if spec.get("description"):
                lines.append("        %s" % spec["description"])
            lines.append("        Type: %s" % spec.get("type", "any"))
            if "default" in spec:
                lines.append("        Default: %s" % json.dumps(spec["default"]))
            if spec.get("enum"):
                lines.append("        Enum: %s" % ", ".join(str(v) for v in spec["enum"]))
            if name in PYTHON_RUNNER_PARAMETERS:
                lines.append("        Runner parameter, %s" % RUNNER_PARAMETER_SUPPORT[name])
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cmd_action(args):
    pack = Pack(args.pack)
    _print_json([{"ref": a.ref, "enabled": a.enabled, "runner_type": a.runner_type, "description": a.description}
                 for _ref, a in sorted(pack.actions.items())])
    return EXIT_OK


def _cmd_run(args):
    if not args.action:
        args.print_run_help(sys.stdout if args.help else sys.stderr)
        return EXIT_OK if args.help else EXIT_USAGE
    if args.help:
        try:
            meta = Pack(args.pack).resolve_action(args.action)
        except KeyError as e:
            raise ActionNotFound(e.args[0]) from e
        sys.stdout.write(action_help(meta))
        return EXIT_OK
    runner = Runner(args.pack, config=args.config, state_dir=args.state_dir, workers=1,
                    datastore_key=args.datastore_key)
    try:
        try:
            meta = runner.pack.resolve_action(args.action)
        except KeyError as e:
            raise ActionNotFound(e.args[0]) from e
        params = parse_kv_args(args.params, meta.all_parameters)
        record = runner.run_action(meta.ref, params, trace_tag=args.trace_tag)
        _print_json(_format_record(record))
        return EXIT_OK if record["status"] == "succeeded" else EXIT_FAILED
    finally:
        runner.stop(timeout=1)
        runner.datastore.close()


def _store(args):
    from .datastore import Store

    return Store(args.state_dir, key_path=args.datastore_key)


def _cmd_execution(args):
    store = _store(args)
    if args.subcommand == "list":
        rows = store.list_executions(limit=args.limit, trace_tag=args.trace_tag)
        _print_json([
            {k: v for k, v in _format_record(r).items() if k in (
                "id", "action", "status", "start_time", "elapsed", "rule", "trigger_instance_id", "trace_tag")}
            for r in rows
        ])
        return EXIT_OK
    rec = store.get_execution(args.id)
    if rec is None:
        print("execution %s not found" % args.id, file=sys.stderr)
        return EXIT_FAILED
    _print_json(_format_record(rec))
    return EXIT_OK


def trace_view(store, trace_tag, limit=1000):
    """One trace as ``st2 trace get`` shows it: ``{"trace_tag", "trigger_instances": [{id, ref,
    status, occurrence_time}], "executions": [{id, action, status, rule, trigger_instance_id,
    start_time, elapsed}]}``, oldest first; None when nothing carries the tag."""
    instances = store.list_trigger_instances(limit=limit, trace_tag=trace_tag)
    executions = store.list_executions(limit=limit, trace_tag=trace_tag)
    if not instances and not executions:
        return None
    return {
        "trace_tag": trace_tag,
        "trigger_instances": [{"id": r["id"], "ref": r["ref"], "status": r["status"],
                               "occurrence_time": _iso(r["occurrence_time"])} for r in reversed(instances)],
        "executions": [{k: v for k, v in _format_record(r).items() if k in (
            "id", "action", "status", "rule", "trigger_instance_id", "start_time", "elapsed")}
            for r in reversed(executions)],
    }


def _cmd_trace(args):
    store = _store(args)
    if args.subcommand == "get":
        trace = trace_view(store, args.trace_tag)
        if trace is None:
            print("trace %s not found" % args.trace_tag, file=sys.stderr)
            return EXIT_FAILED
        _print_json(trace)
        return EXIT_OK
    tags = store.list_trace_tags(limit=args.limit, trace_tag=args.trace_tag)
    _print_json([dict(t, start_time=_iso(t["start_time"]), end_time=_iso(t["end_time"])) for t in tags])
    return EXIT_OK


def _cmd_key(args):
    store = _store(args)
    if args.subcommand == "get":
        value = store.get(args.name, scope=args.scope, decrypt=args.decrypt)
        if value is None:
            print("key %s not found in scope %s" % (args.name, args.scope), file=sys.stderr)
            return EXIT_FAILED
        print(value)
        return EXIT_OK
    if args.subcommand == "set":
        try:
            store.set(args.name, args.value, ttl=args.ttl, scope=args.scope, secret=args.encrypt)
        except ValueError as e:
            raise UsageError(str(e)) from e
        return EXIT_OK
    if args.subcommand == "load":
        _print_json(_load_keys(store, args.file, args.convert))
        return EXIT_OK
    if args.subcommand == "delete":
        if not store.delete(args.name, scope=args.scope):
            print("key %s not found in scope %s" % (args.name, args.scope), file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK
    _print_json([kv.to_dict() for kv in store.list(prefix=args.prefix, scope=args.scope, decrypt=args.decrypt)])
    return EXIT_OK


def _load_keys(store, path, convert):
    """``key load``: st2client's ``KeyValuePairLoadCommand`` (st2client/commands/keyvalue.py).

    Returns:
        ``[{"name", "scope", "user", "secret", "ttl"}]`` of the keys set (never their values).

    Raises:
        UsageError: unreadable file, bad JSON/YAML (reported by line only: the text may hold a
            secret), an item without name/value, a non-string value without ``convert``, or an
            ``encrypted`` value that does not decrypt with the key file.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            items = yaml.safe_load(f)
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror)) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise UsageError("%s is not valid JSON/YAML%s" % (path, " (line %d)" % (mark.line + 1) if mark else "")) from None
    if not items:
        return []
    loaded = []
    for i, item in enumerate(items if isinstance(items, list) else [items]):
        if not isinstance(item, dict) or "name" not in item or "value" not in item:
            raise UsageError("%s: item %d needs 'name' and 'value'" % (path, i))
        name, value = item["name"], item["value"]
        if not isinstance(value, str):
            if not convert:
                raise UsageError("%s: item %r has a value that is not a string; pass -c/--convert to store it as "
                                 "JSON" % (path, name))
            value = json.dumps(value)
        scope = str(item.get("scope") or "system").replace("st2kv.", "")
        secret, encrypted = bool(item.get("secret")), bool(item.get("encrypted"))
        try:
            if encrypted:
                store.decrypt_value(value, name=name)  # ciphertext of this key file, or refuse
            store.set(name, value, ttl=item.get("ttl") or None, scope=scope, user=item.get("user"),
                      secret=secret or encrypted, encrypted=encrypted)
        except ValueError as e:
            raise UsageError("%s: item %r: %s" % (path, name, e)) from e
        loaded.append({"name": name, "scope": "st2kv." + scope, "user": item.get("user"),
                       "secret": secret or encrypted, "ttl": item.get("ttl")})
    return loaded


def _cmd_trigger(args):
    if args.subcommand == "instances":
        rows = _store(args).list_trigger_instances(limit=args.limit)
        for r in rows:
            r["occurrence_time"] = _iso(r["occurrence_time"])
        _print_json(rows)
        return EXIT_OK
    pack = Pack(args.pack)
    out = []
    for ref, tt in sorted(pack.triggers.items()):
        props = (tt.payload_schema or {}).get("properties", {}) if isinstance(tt.payload_schema, dict) else {}
        out.append({
            "ref": ref,
            "description": tt.description,
            "payload_properties": {
                name: {k: v for k, v in (p or {}).items() if k in ("type", "required", "description", "enum")}
                for name, p in props.items()
            },
            "schema_error": tt.schema_error,
        })
    _print_json(out)
    return EXIT_OK


def _cmd_validate(args):
    from .validate import validate_pack

    problems = validate_pack(args.pack)
    for path, key, msg in problems:
        print("%s: %s: %s" % (path, key or "-", msg))
    if problems:
        print("%d problem(s)" % len(problems), file=sys.stderr)
        return EXIT_USAGE
    print("OK: no problems found")
    return EXIT_OK


def _cmd_rule(args):
    if args.subcommand == "list":
        pack = Pack(args.pack)
        _print_json([{"ref": r.ref, "enabled": r.enabled, "trigger": r.trigger_type, "action": r.action_ref,
                      "file": os.path.relpath(r.path, pack.path) if r.path else None} for r in pack.rules])
        return EXIT_OK
    from .tester import RuleTestError, evaluate_rule, load_rule, load_trigger_instance

    runner = Runner(args.pack, config=args.config, state_dir=args.state_dir, workers=1,
                    datastore_key=args.datastore_key)
    try:
        try:
            rule, enabled = load_rule(runner.pack, args.rule)
            trigger, payload = load_trigger_instance(args.trigger_instance, runner.datastore,
                                                     args.trigger_instance_id)
        except RuleTestError as e:
            raise UsageError(str(e)) from e
        report = evaluate_rule(runner, rule, enabled, trigger, payload)
    finally:
        runner.stop(timeout=1)
        runner.datastore.close()
    _print_json(report)
    for warning in report["warnings"]:
        LOG.warning("%s", warning)
    LOG.info("=== RULE MATCHES ===" if report["matches"] else "=== RULE DOES NOT MATCH ===")
    return EXIT_OK if report["matches"] else EXIT_FAILED


COMMANDS = {
    "action": _cmd_action,
    "rule": _cmd_rule,
    "start": _cmd_start,
    "run": _cmd_run,
    "execution": _cmd_execution,
    "key": _cmd_key,
    "trace": _cmd_trace,
    "trigger": _cmd_trigger,
    "validate": _cmd_validate,
}


def main(argv=None):
    """Entry point; returns the exit code (0 ok, 1 action failed, 2 usage/validation error)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 on usage errors
    try:
        _setup_logging(args)
    except ValueError as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, ParameterError, ActionNotFound, PackError, DatastoreKeyError,
            DecryptionError) as e:
        print("error: %s" % e, file=sys.stderr)
        return EXIT_USAGE
