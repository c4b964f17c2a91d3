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


def test_broken_deployment_values_are_marked_invalid_not_raised():
    assert not _parse_deployment("k", b"[1]", 5).valid
    dep = _parse_deployment("k", b'{"kind": "slurm", "args": [1]}', 5)
    assert not dep.valid and "'args' must be an object" in dep.problem


def test_key_pattern_is_ska_sdp_configs():
    assert KEY_PATTERN.match("proc-pb-1-abc")
    assert not KEY_PATTERN.match("a/b") and not KEY_PATTERN.match("x" * 97) and not KEY_PATTERN.match("")
