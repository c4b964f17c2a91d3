"""Values are written exactly as ska-sdp-config writes them."""

import json

from slurmdeploy.configdb import KEY_PATTERN, _parse_deployment, dumps, loads


def test_dumps_matches_ska_sdp_config_format():
    value = {"kind": "slurm", "key": "dep-1", "args": {"script": "#!/bin/sh\necho é"}}
    expected = json.dumps(value, ensure_ascii=False, indent=2, separators=(",", ": "), sort_keys=True)
    assert dumps(value) == expected.encode("utf-8")
    assert dumps(value).decode("utf-8").startswith('{\n  "args": {')
    assert loads(dumps(value)) == value


def test_undecodable_values_load_as_none():
    assert loads(b"\xff\xfe") is None and loads(b"{nope") is None


def test_deployment_parsing_accepts_0x_field_names():
    dep = _parse_deployment("k", b'{"id": "k", "type": "slurm", "args": {"script": "#!"}}', 5)
    assert dep.kind == "slurm" and dep.args == {"script": "#!"} and dep.revision == 5


def test_a_deployment_knows_its_stored_key_and_whether_it_was_updated_in_place():
    fresh = _parse_deployment("k", b'{"key": "k", "kind": "slurm", "args": {}}', 5, 5)
    assert (fresh.stored_key, fresh.updated_in_place) == ("k", False)
    updated = _parse_deployment("k", b'{"key": "k", "kind": "slurm", "args": {"a": 1}}', 5, 9)
    assert updated.updated_in_place
    assert _parse_deployment("k", b'{"id": "other", "type": "slurm"}', 5, 5).stored_key == "other"
    assert _parse_deployment("k", b'{"kind": "slurm"}', 5, 5).stored_key is None
    assert not _parse_deployment("k", b'{"kind": "slurm"}', 5).updated_in_place  # mod_revision unknown


def test_broken_deployment_values_are_marked_invalid_not_raised():
    assert not _parse_deployment("k", b"[1]", 5).valid
    dep = _parse_deployment("k", b'{"kind": "slurm", "args": [1]}', 5)
    assert not dep.valid and "'args' must be an object" in dep.problem


def test_key_pattern_is_ska_sdp_configs():
    assert KEY_PATTERN.match("proc-pb-1-abc")
    assert not KEY_PATTERN.match("a/b") and not KEY_PATTERN.match("x" * 97) and not KEY_PATTERN.match("")


def test_a_watched_snapshot_applies_puts_and_deletes_of_the_layout_only():
    from slurmdeploy.configdb import Snapshot
    from slurmdeploy.layout import Layout
    from slurmdeploy.states import DeploymentState

    L = Layout("/p")
    snap = Snapshot({}, {}, {}, 0, layout=L)
    snap.apply(L.deployment("d-1"), dumps({"key": "d-1", "kind": "slurm", "args": {}}), 7, 7)
    snap.apply(L.owner("d-1"), dumps({"pid": 1}), 8, 8)
    snap.apply(L.attempt("d-1"), dumps({"revision": 7}), 8, 8)
    snap.apply(L.deploy_prefix + "d-1/other", b"{}", 9, 9)  # unknown child: ignored
    snap.apply(L.deploy_prefix + "bad key", b"{}", 9, 9)  # not a deployment key: ignored
    snap.apply(Layout("/q").deployment("d-2"), b"{}", 9, 9)  # another prefix: ignored
    assert set(snap.deployments) == {"d-1"} and snap.deployments["d-1"].revision == 7
    assert snap.attempts == {"d-1": 7}
    assert not snap.attempt_pending("d-1")  # its submitter still owns it
    snap.remove(L.owner("d-1"))
    assert snap.attempt_pending("d-1")  # owner gone, no job recorded: the job may exist unrecorded
    snap.apply(L.state("d-1"), dumps(DeploymentState("d-1", 42, "PENDING").to_dict()), 7, 10)
    assert not snap.attempt_pending("d-1") and snap.states["d-1"][1] == 10
    snap.apply(L.deployment("d-1"), dumps({"key": "d-1", "kind": "slurm", "args": {}}), 11, 11)  # re-created
    assert not snap.attempt_pending("d-1")  # the trace is of the earlier incarnation
    snap.remove(L.deployment("d-1"))
    assert snap.deployments == {} and "d-1" in snap.states


def test_a_watched_snapshot_reads_an_earlier_incarnations_state_as_none_whatever_the_event_order():
    # issue 9 (a state older than its deployment is stale) on issue 10's watched snapshot: the
    # state and the deployment may arrive in either order; a re-creation makes the state stale
    from slurmdeploy.configdb import Snapshot
    from slurmdeploy.layout import Layout
    from slurmdeploy.states import DeploymentState

    old = dumps(DeploymentState("d-1", 42, "CANCELLED").to_dict())
    dep = dumps({"key": "d-1", "kind": "slurm", "args": {}})
    L = Layout()
    for order in ("state first", "deployment first"):
        snap = Snapshot({}, {}, {}, 0, layout=L)
        events = [(L.state("d-1"), old, 5, 6), (L.deployment("d-1"), dep, 9, 9)]
        for path, raw, create_rev, mod_rev in (events if order == "state first" else events[::-1]):
            snap.apply(path, raw, create_rev, mod_rev)
        state, mod = snap.states["d-1"]
        assert (state.status, state.job_id, mod) == ("UNSET", None, 6), order  # real mod_revision kept
    snap.apply(L.state("d-1"), dumps(DeploymentState("d-1", 43, "PENDING").to_dict()), 5, 10)
    assert snap.states["d-1"][0].job_id == 43  # written for this incarnation
    snap.apply(L.deployment("d-1"), dep, 11, 11)  # deleted alone and created again
    assert snap.states["d-1"][0].status == "UNSET"


def test_a_watched_snapshot_lists_ignored_entries_and_orphans_and_forgets_them_on_delete():
    from slurmdeploy.configdb import Snapshot
    from slurmdeploy.layout import Layout
    from slurmdeploy.states import DeploymentState

    L = Layout()
    snap = Snapshot({}, {}, {}, 0, layout=L)
    snap.apply(L.deploy_prefix + "bad key", b"{}", 3, 3)
    snap.apply(L.deploy_prefix + "d-1/sub/key", b"{}", 4, 4)
    assert [(path, rev) for path, rev, _ in snap.ignored] == [(L.deploy_prefix + "bad key", 3),
                                                               (L.deploy_prefix + "d-1/sub/key", 4)]
    assert "ska-sdp-config rejects it" in snap.ignored[0][2]
    snap.remove(L.deploy_prefix + "bad key")
    assert [path for path, _, _ in snap.ignored] == [L.deploy_prefix + "d-1/sub/key"]
    # leftovers of deployments deleted alone: our state format, our owner, an attempt trace
    snap.apply(L.state("s-1"), dumps(DeploymentState("s-1", 7, "FINISHED").to_dict()), 5, 5)
    snap.apply(L.owner("o-1"), dumps({"command": ["slurmdeploy", "submit", "o-1"]}), 6, 6)
    snap.apply(L.attempt("a-1"), dumps({"revision": 2}), 7, 7)
    snap.apply(L.state("h-1"), dumps({"status": "RUNNING"}), 8, 8)  # another deployer's: not ours
    snap.apply(L.owner("x-1"), dumps({"command": ["helm-deployer"]}), 9, 9)  # not ours
    assert snap.orphans == ["a-1", "o-1", "s-1"]
    snap.apply(L.deployment("s-1"), dumps({"key": "s-1", "kind": "slurm", "args": {}}), 10, 10)
    assert snap.orphans == ["a-1", "o-1"]  # s-1 has a deployment again
