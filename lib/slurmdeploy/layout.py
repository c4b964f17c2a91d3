"""The Configuration Database layout: the one module that knows every etcd path, prefix,
range end and the deployment marker format (build and parse).

ska-sdp-config's layout under an optional global prefix (its ``--prefix``, the pack's
``config_prefix``), plus this pack's own submit-attempt trace. :data:`LAYOUT` is the table
``docs/design.md`` ("Configuration Database layout") mirrors; ``tests/unit/test_layout.py``
parses that table and compares it with :data:`LAYOUT`, so the doc cannot go stale.

Everything else (configdb, watch, jobs, decisions, scripts, tests) asks this module for a
path (:class:`Layout`) or a marker (:func:`deployment_marker`, :func:`parse_marker`) and
never spells one.
"""

import re
from dataclasses import dataclass
from typing import Optional

#: Deployment keys accepted by ska-sdp-config (``ska_sdp_config.entity.deployment``).
KEY_PATTERN = re.compile(r"^[A-Za-z0-9\-]{1,96}$")

#: the child entries of a deployment this layout knows (``/deploy/<key>/<child>``)
STATE, OWNER, ATTEMPT = "state", "owner", "attempt"
CHILDREN = (STATE, OWNER, ATTEMPT)


@dataclass(frozen=True)
class Entry:
    """One row of the layout table.

    Attributes:
        path: the path template, relative to the global prefix (``/deploy/<key>/state``).
        value: what the JSON value holds.
        written_by: who writes (and deletes) it.
    """

    path: str
    value: str
    written_by: str


#: The layout table (docs/design.md, "Configuration Database layout", mirrors it row by row).
LAYOUT = (
    Entry("/deploy/<key>", '`{"key", "kind", "args"}` (ska-sdp-config 0.x: `id`/`type`; both are read)',
          "SDP components with ska-sdp-config; the actions deployment_create / deployment_delete"),
    Entry("/deploy/<key>/state", "the deployer's state: `status`, `jobs` -> `{key: {slurm_job_id, ...}}` "
          "(README, \"State mapping and format\")",
          "this pack (submit, update_state; compare-and-swap on its mod_revision and the deployment's "
          "create_revision)"),
    Entry("/deploy/<key>/owner", '`{"pid", "hostname", "command"}`, attached to an etcd lease (the claim)',
          "this pack's submit (created only if absent, on a new lease); deleted by the transaction that "
          "writes the final submit state, its lease then expires unused"),
    Entry("/deploy/<key>/attempt", '`{"revision", "pid", "hostname"}`: a submit for incarnation `revision` '
          "may have reached Slurm without its job id recorded",
          "this pack's submit, in the claiming transaction; deleted with the owner when the state holds "
          "the job id"),
)

#: the job comment that ties a Slurm job to one deployment incarnation
MARKER_PREFIX = "sdp-deployment:"
_MARKER = re.compile(r"^" + re.escape(MARKER_PREFIX) + r"(?P<key>[A-Za-z0-9\-]{1,96})@(?P<revision>\d+)$")


def deployment_marker(key, revision):
    """The job comment that ties a job to one deployment incarnation.

    Args:
        key: deployment key.
        revision: the deployment's etcd create_revision (``Deployment.revision``).

    Returns:
        ``"sdp-deployment:<key>@<revision>"`` (str).
    """
    return f"{MARKER_PREFIX}{key}@{int(revision)}"


def parse_marker(comment):
    """``(key, revision)`` of a job comment that is a deployment marker, else None.

    Args:
        comment: the Slurm job's ``comment`` (str or None).
    """
    match = _MARKER.match(comment or "")
    return (match["key"], int(match["revision"])) if match else None


def prefix_end(prefix):
    """etcd's ``range_end`` for every key starting with ``prefix``: the prefix with its last
    byte incremented (etcd's ``clientv3.GetPrefixRangeEnd``).

    Args:
        prefix: a str ending in an ASCII character (every prefix here ends in ``/``).

    Returns:
        str.

    Raises:
        ValueError: an empty prefix or one ending in a non-ASCII character (its byte + 1 is
            no valid UTF-8).
    """
    if not prefix or ord(prefix[-1]) >= 0x7F:
        raise ValueError(f"a range prefix must end in an ASCII character, got {prefix!r}")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class Path:
    """Where a path sits in the layout (:meth:`Layout.split`).

    Attributes:
        key: the deployment key, or None when the path has no place in the layout.
        child: ``None`` for the deployment itself, else one of :data:`CHILDREN`.
        problem: why a path under the deployment prefix has no place (key is None), or None
            (also for a path outside the prefix: not ours to judge).
    """

    key: Optional[str]
    child: Optional[str] = None
    problem: Optional[str] = None


class Layout:
    """Paths of the Configuration Database under one global prefix.

    Args:
        prefix: ska-sdp-config's global prefix, ``""`` for none (a trailing ``/`` is dropped).
    """

    def __init__(self, prefix=""):
        self.prefix = (prefix or "").rstrip("/")

    @property
    def deploy_prefix(self):
        """``[prefix]/deploy/``: where all deployments live."""
        return f"{self.prefix}/deploy/"

    def deploy_range(self):
        """``(start, range_end)`` of everything under :attr:`deploy_prefix`."""
        return self.deploy_prefix, prefix_end(self.deploy_prefix)

    def deployment(self, key):
        """``[prefix]/deploy/<key>``."""
        return f"{self.deploy_prefix}{key}"

    def child(self, key, child):
        """``[prefix]/deploy/<key>/<child>`` for a child of :data:`CHILDREN`.

        Raises:
            ValueError: an unknown child.
        """
        if child not in CHILDREN:
            raise ValueError(f"{child!r} is not a deployment child of the layout ({', '.join(CHILDREN)})")
        return f"{self.deployment(key)}/{child}"

    def state(self, key):
        """``[prefix]/deploy/<key>/state``."""
        return self.child(key, STATE)

    def owner(self, key):
        """``[prefix]/deploy/<key>/owner``."""
        return self.child(key, OWNER)

    def attempt(self, key):
        """``[prefix]/deploy/<key>/attempt``."""
        return self.child(key, ATTEMPT)

    def children_range(self, key):
        """``(start, range_end)`` of every child of a deployment: ``/deploy/<key>/`` up to
        ``/deploy/<key>0`` (``'0'`` follows ``'/'``), so a sibling ``<key>-x`` is not in it."""
        start = f"{self.deployment(key)}/"
        return start, prefix_end(start)

    def relative(self, path):
        """The part of ``path`` after :attr:`deploy_prefix` (for messages), or None outside it."""
        return path[len(self.deploy_prefix):] if path.startswith(self.deploy_prefix) else None

    def split(self, path):
        """Where ``path`` sits in the layout.

        Returns:
            A :class:`Path`: ``key`` and ``child`` for a deployment or one of its children;
            key None with a ``problem`` for an entry under :attr:`deploy_prefix` that
            ska-sdp-config's layout has no place for (a key it rejects, a deeper path, an
            unknown child); key and problem None outside :attr:`deploy_prefix`.
        """
        rest = self.relative(path)
        if rest is None:
            return Path(None)
        parts = rest.split("/")
        if not KEY_PATTERN.match(parts[0]):
            return Path(None, problem=f"deployment key {_shown(rest)} does not match {KEY_PATTERN.pattern} "
                                      f"(ska-sdp-config rejects it)")
        if len(parts) == 1:
            return Path(parts[0])
        if len(parts) == 2 and parts[1] in CHILDREN:
            return Path(parts[0], parts[1])
        return Path(None, problem=f"deployment key {_shown(rest)} contains '/' (ska-sdp-config rejects it; "
                                  f"keys match {KEY_PATTERN.pattern})")


def _shown(key, limit=60):
    """A key for a log line: repr, cut to ``limit`` characters with its length."""
    shown = repr(key)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(key)} characters)"
