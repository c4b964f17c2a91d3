"""Node-state events: level-triggered comparison of Slurm's node list with the last seen states.

:class:`NodeStateWatcher` is the logic of ``sensors/node_state_sensor.py``. Every poll
reads the whole node list (``GET /nodes``, one request whatever happened) and compares
each node's state (``IDLE``, ``MIXED+DRAIN``, ``DOWN+NOT_RESPONDING``... as ``scontrol
show node`` prints it) with the state last seen, which is persisted as one JSON string
in the datastore (StackStorm's datastore stores strings). So a transition that happened
while the sensor was stopped is emitted at its first poll after a restart, exactly once.

Compared with Slurm's ``strigger`` (used by the StackStorm Exchange ``slurm`` pack),
nothing has to be re-armed, and a missed poll only delays events. The limit of polling:
a state that begins and ends between two polls (e.g. a DOWN node that slurmctld returns
to service within the poll interval with ``ReturnToService``) is not seen.

Order of work per poll: read the nodes, compute the events, hand them to the caller
(who dispatches them), then store the new states. A crash between dispatch and store
re-emits those events at the next poll (at least once, never lost).
"""

import json
import time
from dataclasses import asdict, dataclass
from typing import Optional

#: datastore key (local to the sensor class) holding the last seen states
STATE_KEY = "node_states"
#: ``previous_state`` of a node seen for the first time, ``state`` of a node no longer listed
ABSENT = "NONE"
_FORMAT = 1


@dataclass(frozen=True)
class NodeStateChange:
    """One ``node_state_changed`` payload.

    Attributes:
        node: node name.
        previous_state: the state last seen (``"IDLE"``), or ``"NONE"`` for a new node.
        state: the state now (``"IDLE+DRAIN"``), or ``"NONE"`` when the node is no longer listed.
        reason: the node's reason (``scontrol update ... reason=``), None when empty.
        time: when this sensor saw the change, ISO 8601 UTC (``2026-12-01T10:00:00Z``).
    """

    node: str
    previous_state: str
    state: str
    reason: Optional[str]
    time: str

    def payload(self):
        return asdict(self)


def utc_iso(epoch):
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class NodeStateWatcher:
    """Compare Slurm's nodes with the last seen states kept in a datastore.

    Args:
        operations: a :class:`slurmdeploy.slurm.operations.SlurmOperations`.
        get_value, set_value: the datastore functions (``sensor_service.get_value`` /
            ``set_value``: strings in, strings out; ``get_value`` returns None when unset
            or on error).
        cluster: identifies the cluster the states belong to (the slurmrestd URL): stored
            states of another cluster count as no states.
        clock: returns epoch seconds (``time.time``).
    """

    def __init__(self, operations, get_value, set_value, cluster, clock=time.time):
        self.operations = operations
        self._get = get_value
        self._set = set_value
        self.cluster = cluster
        self._clock = clock

    def load(self):
        """The stored ``{node: {"state", "reason"}}``, or None when nothing usable is stored."""
        raw = self._get(STATE_KEY)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("cluster") != self.cluster:
            return None
        nodes = data.get("nodes")
        return nodes if isinstance(nodes, dict) else None

    def current(self):
        """``{node: {"state", "reason"}}`` as slurmctld reports them now (one ``GET /nodes``)."""
        out = {}
        for record in self.operations.list_nodes():
            state = self.operations.node_state(record)
            out[state["name"]] = {"state": state["state"], "reason": state["reason"]}
        return out

    def poll(self, dispatch):
        """Read the nodes, call ``dispatch(change)`` for every change, then store the states.

        On the first poll with nothing stored (or states of another cluster) the states
        are only recorded: no events, since there is no previous state to compare with.

        Args:
            dispatch: called with each :class:`NodeStateChange`, in node-name order.

        Returns:
            The list of changes dispatched.

        Raises:
            Whatever reading Slurm raises (``SlurmAPIError``...); nothing is stored then.
        """
        now = self.current()
        before = self.load()
        changes = [] if before is None else self.diff(before, now, utc_iso(self._clock()))
        for change in changes:
            dispatch(change)
        self._set(STATE_KEY, json.dumps({"format": _FORMAT, "cluster": self.cluster, "nodes": now},
                                        sort_keys=True))
        return changes

    @staticmethod
    def diff(before, now, when):
        """The :class:`NodeStateChange` list between two ``{node: {"state", "reason"}}`` maps."""
        changes = []
        for name in sorted(set(before) | set(now)):
            old = (before.get(name) or {}).get("state", ABSENT)
            new = (now.get(name) or {}).get("state", ABSENT)
            if old != new:
                reason = (now.get(name) or before.get(name) or {}).get("reason")
                changes.append(NodeStateChange(node=name, previous_state=old, state=new, reason=reason, time=when))
        return changes
