"""Reservations as operators write them: validation of the fields before anything is sent.

:class:`~slurmdeploy.slurm.operations.SlurmOperations` writes reservations through
slurmrestd (REST v0.0.43+, Slurm 25.05+: ``POST /slurm/<v>/reservation``,
``DELETE /slurm/<v>/reservation/{name}``); this module turns the fields operators use
into a ``reservation_desc_msg`` (``src/plugins/data_parser/v0.0.4x/parsers.c``,
``RESERVATION_DESC_MSG``) and refuses what cannot be right before any request:

- ``name`` (required), ``nodes`` (node names or a hostlist expression such as
  ``n[01-04]``) or ``node_count``, ``start_time`` and ``end_time`` or ``duration``
  (minutes), ``users`` or ``accounts``, ``flags`` (``["MAINT"]``, ``["IGNORE_JOBS"]``...);
- times are epoch seconds, ``"now"``, or ISO 8601 with a UTC offset
  (``2026-12-04T10:00:00Z``): a time without an offset is refused, since slurmctld and the
  operator may not share a time zone;
- an end not after the start is refused (Slurm would refuse it too, but with a less
  precise message).

What only slurmctld can know (unknown users or accounts, overlapping reservations, busy
nodes) is left to it; :mod:`slurmdeploy.slurm.operations` checks afterwards that a refused
request created nothing.
"""

import re
import time
from datetime import datetime, timezone

from slurmdeploy.errors import BadRequest
from slurmdeploy.slurm.versions import no_val_number

#: the operator-facing fields of :func:`reservation_fields`, in the order they are documented
OPERATOR_FIELDS = ("nodes", "node_count", "start_time", "end_time", "duration", "users", "accounts", "flags")
#: reservation_desc_msg fields those operator fields become (``extra`` may not set them again)
SLURM_FIELDS = ("name", "node_list", "node_count", "start_time", "end_time", "duration", "users", "accounts",
                "flags")
_NAME_RE = re.compile(r"^[^\s,]+$")


def parse_time(value, what, now=None):
    """Read a reservation time as epoch seconds.

    Args:
        value: an int (epoch seconds), a string of digits, ``"now"``, or ISO 8601 with a
            UTC offset (``"2026-12-04T10:00:00Z"``, ``"2026-12-04T11:00:00+01:00"``).
        what: the parameter's name, for the error message.
        now: epoch seconds used for ``"now"`` (default: the current time).

    Returns:
        int epoch seconds.

    Raises:
        BadRequest: anything else, naming the accepted forms.
    """
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "now":
            return int(now if now is not None else time.time())
        if text.isdigit():
            return int(text)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return int(parsed.timestamp())
        if parsed is not None:
            raise BadRequest(f"{what} {value!r} has no UTC offset: write e.g. {text}Z (UTC) or {text}+01:00")
    raise BadRequest(f"{what} must be epoch seconds, 'now' or ISO 8601 with a UTC offset "
                     f"(e.g. 2026-12-04T10:00:00Z), got {value!r}")


def name_list(value, what):
    """A list of names from a list or a comma-separated string; None stays None.

    Raises:
        BadRequest: not a string or a list of non-empty strings.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadRequest(f"{what} must be a list of names or a comma-separated string, got {value!r}")
    return [v.strip() for v in value]


def _positive_int(value, what, unit=""):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{what} must be a positive integer{unit}, got {value!r}")
    return value


def check_name(name):
    """Return a reservation name, or raise BadRequest (empty, or with spaces or commas)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BadRequest(f"reservation name must be a non-empty string without spaces or commas, got {name!r}")
    return name


def reservation_fields(name, *, nodes=None, node_count=None, start_time=None, end_time=None, duration=None,
                       users=None, accounts=None, flags=None, extra=None, current=None, now=None):
    """Validate what an operator asked for and return the reservation_desc_msg fields.

    Args:
        name: the reservation name.
        nodes: node names (list, or a comma-separated string or hostlist expression such as
            ``n[01-04]``), or None.
        node_count: a number of nodes Slurm picks, or None. A new reservation needs
            ``nodes`` or ``node_count`` (not both).
        start_time, end_time: see :func:`parse_time`. A new reservation needs
            ``start_time`` and one of ``end_time`` or ``duration``.
        duration: minutes.
        users, accounts: lists of names or comma-separated strings; a new reservation
            needs at least one of them.
        flags: list of Slurm reservation flags (``MAINT``, ``IGNORE_JOBS``, ``OVERLAP``...;
            to remove a flag on update write ``NO_<flag>``), upper-cased here.
        extra: other reservation_desc_msg fields as Slurm spells them (``partition``,
            ``features``, ``comment``, ``licenses``...), sent as given.
        current: None to validate a new reservation; for an update, the existing
            reservation's record (``start_time``/``end_time`` epoch seconds) so that the
            resulting start and end are compared.
        now: epoch seconds for ``"now"`` (tests).

    Returns:
        dict of reservation_desc_msg fields (numbers as plain ints: the version adapter
        wraps them).

    Raises:
        BadRequest: what is wrong and how to fix it.
    """
    check_name(name)
    fields = {"name": name}
    node_names = None
    if nodes is not None:
        if isinstance(nodes, str) and "[" in nodes:
            node_names = [nodes.strip()]  # a hostlist expression: Slurm expands it
        else:
            node_names = name_list(nodes, "nodes")
        if not node_names:
            raise BadRequest("nodes must name at least one node")
        # a list: a string is accepted too but warned about ("Expected OpenAPI type=array",
        # Slurm 26.05.5, v0.0.45)
        fields["node_list"] = node_names
    if _positive_int(node_count, "node_count") is not None:
        fields["node_count"] = node_count
    if nodes is not None and node_count is not None:
        raise BadRequest("give nodes or node_count, not both")
    start = parse_time(start_time, "start_time", now) if start_time is not None else None
    end = parse_time(end_time, "end_time", now) if end_time is not None else None
    _positive_int(duration, "duration", " (minutes)")
    if end is not None and duration is not None:
        raise BadRequest("give end_time or duration (minutes), not both")
    for key, value in (("start_time", start), ("end_time", end), ("duration", duration)):
        if value is not None:
            fields[key] = value
    for key, value in (("users", name_list(users, "users")), ("accounts", name_list(accounts, "accounts"))):
        if value is not None:
            fields[key] = value
    if flags is not None:
        names = name_list(flags, "flags")
        fields["flags"] = [f.upper() for f in names]
    if extra:
        if not isinstance(extra, dict):
            raise BadRequest(f"fields must be a mapping of reservation field -> value, got {type(extra).__name__}")
        clash = sorted(set(extra) & set(SLURM_FIELDS))
        if clash:
            raise BadRequest(f"fields may not set {', '.join(clash)}: use the action's own parameters "
                             f"({', '.join(OPERATOR_FIELDS)})")
        fields.update(extra)
    if current is None:
        _check_new(fields, start, end)
    else:
        _check_update(fields, current, start, end)
    return fields


def _check_new(fields, start, end):
    if "node_list" not in fields and "node_count" not in fields and not {"partition", "core_count", "tres"} & set(
            fields):
        raise BadRequest("a new reservation needs nodes (names or a hostlist expression) or node_count")
    if start is None:
        raise BadRequest("a new reservation needs start_time (epoch seconds, 'now' or ISO 8601 with an offset)")
    if end is None and "duration" not in fields:
        raise BadRequest("a new reservation needs end_time or duration (minutes)")
    if end is not None and end <= start:
        raise BadRequest(f"end_time {_iso(end)} is not after start_time {_iso(start)}: nothing was created")
    if "users" not in fields and "accounts" not in fields and "groups" not in fields:
        raise BadRequest("a new reservation needs users or accounts (who may run jobs in it)")


def _check_update(fields, current, start, end):
    if len(fields) == 1:
        raise BadRequest(f"give at least one field to change ({', '.join(OPERATOR_FIELDS)} or fields)")
    new_start = start if start is not None else no_val_number(current.get("start_time"))
    if end is None and "duration" in fields and new_start is not None:
        end = new_start + 60 * fields["duration"]
    new_end = end if end is not None else no_val_number(current.get("end_time"))
    if new_start is not None and new_end is not None and new_end <= new_start:
        raise BadRequest(f"the reservation would end ({_iso(new_end)}) before it starts ({_iso(new_start)}): "
                         "nothing was changed")


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
