"""Operations without a server: the endpoint table's errors, job/node criteria matching, and
the node-state comparison. Behaviour against real Slurm: tests/integration/test_operations.py."""

import json

import pytest

from slurmdeploy.errors import BadRequest, UnsupportedOperation
from slurmdeploy.node_events import ABSENT, STATE_KEY, NodeStateChange, NodeStateWatcher
from slurmdeploy.slurm.operations import field_matches, match_records
from slurmdeploy.slurm.versions import ADAPTERS, ENDPOINTS, SLURM_RELEASE


def test_node_update_needs_v0039_and_reservation_writes_need_v0043():
    assert [v for v in ADAPTERS if ADAPTERS[v].supports("node_update")] == [
        "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44", "v0.0.45"]
    with pytest.raises(UnsupportedOperation) as err:
        ADAPTERS["v0.0.38"].require("node_update")
    assert str(err.value) == ("node_update (POST /node/{node_name}) is not supported by Slurm REST v0.0.38, "
                              "needs Slurm >= 23.02 (REST v0.0.39)")
    for op in ("reservation_create", "reservation_update", "reservation_delete"):
        assert [v for v in ADAPTERS if ADAPTERS[v].supports(op)] == ["v0.0.43", "v0.0.44", "v0.0.45"]
        for name in ("v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42"):
            with pytest.raises(UnsupportedOperation) as err:
                ADAPTERS[name].require(op)
            assert str(err.value).endswith(f"is not supported by Slurm REST {name}, needs Slurm >= 25.05 (REST v0.0.43)")
    assert ADAPTERS["v0.0.45"].require("reservation_delete") == ("DELETE", "/slurm/v0.0.45/reservation/{reservation_name}")
    assert ADAPTERS["v0.0.43"].require("reservation_create") == ("POST", "/slurm/v0.0.43/reservation")


def test_every_endpoint_names_a_known_first_version():
    for op, (method, path, first, last) in ENDPOINTS.items():
        assert method in ("GET", "POST", "DELETE") and path.startswith(("/slurm/{version}/", "/slurmdb/{version}/")), op
        assert first in SLURM_RELEASE and (last is None or last in SLURM_RELEASE), op
    assert ADAPTERS["v0.0.42"].require("job_update") == ("POST", "/slurm/v0.0.42/job/{job_id}")


@pytest.mark.parametrize("value, wanted, expected", [
    ("PENDING", "PENDING", True),                       # v0.0.38 job_state
    (["PENDING"], "PENDING", True),                     # v0.0.40+ job_state
    (["IDLE", "DRAIN"], "DRAIN", True),                 # node flag
    (["IDLE"], "DRAIN", False),
    ({"set": True, "infinite": False, "number": 30}, 30, True),
    ({"set": True, "infinite": False, "number": 30}, "30", True),
    ({"set": False, "infinite": True, "number": 0}, 0, False),
    ("debug", ["batch", "debug"], True),               # any of
    ("Debug", "debug", False),                          # Slurm names are case-sensitive
    (True, "true", True),
    (None, "x", False),
])
def test_field_matches(value, wanted, expected):
    assert field_matches(value, wanted) is expected


def test_criteria_on_an_unknown_field_name_the_known_ones():
    records = [{"job_id": 1, "name": "a"}, {"job_id": 2, "name": "b"}]
    assert match_records(records, {"name": "b"}, "job") == [records[1]]
    with pytest.raises(BadRequest, match=r"unknown job field\(s\) nmae in criteria; job records of this Slurm have: "
                                         r"job_id, name"):
        match_records(records, {"nmae": "b"}, "job")
    with pytest.raises(BadRequest, match="criteria must be a mapping"):
        match_records(records, ["name"], "job")


class DictStore:
    """The datastore's contract as StackStorm has it: strings in, strings out."""

    def __init__(self):
        self.values = {}

    def get(self, name):
        return self.values.get(name)

    def set(self, name, value):
        assert isinstance(value, str)
        self.values[name] = value


def test_diff_reports_changes_new_and_removed_nodes():
    before = {"n1": {"state": "IDLE", "reason": None}, "n2": {"state": "ALLOCATED", "reason": None}}
    now = {"n1": {"state": "IDLE+DRAIN", "reason": "disk"}, "n3": {"state": "IDLE", "reason": None}}
    changes = NodeStateWatcher.diff(before, now, "2026-12-01T10:00:00Z")
    assert changes == [
        NodeStateChange("n1", "IDLE", "IDLE+DRAIN", "disk", "2026-12-01T10:00:00Z"),
        NodeStateChange("n2", "ALLOCATED", ABSENT, None, "2026-12-01T10:00:00Z"),
        NodeStateChange("n3", ABSENT, "IDLE", None, "2026-12-01T10:00:00Z"),
    ]
    assert NodeStateWatcher.diff(now, now, "t") == []


def test_stored_states_of_another_cluster_or_format_count_as_none():
    store = DictStore()
    watcher = NodeStateWatcher(None, store.get, store.set, cluster="http://a:6820")
    assert watcher.load() is None
    store.set(STATE_KEY, "not json")
    assert watcher.load() is None
    store.set(STATE_KEY, json.dumps({"format": 1, "cluster": "http://b:6820", "nodes": {"n1": {"state": "IDLE"}}}))
    assert watcher.load() is None
    store.set(STATE_KEY, json.dumps({"format": 1, "cluster": "http://a:6820", "nodes": {"n1": {"state": "IDLE"}}}))
    assert watcher.load() == {"n1": {"state": "IDLE"}}
