"""Reservation writes (REST v0.0.43-45) and the "version not loaded" error, against answers
recorded from Slurm 26.05.5 (tests/fixtures/slurm/v0.0.4[345], see its README), replayed
through the client's real transport. Behaviour on the running cluster, compared with
`scontrol show reservation`: tests/integration/test_slurm_2605.py."""

import pytest

from slurm_replay import recorded
from slurmdeploy.errors import BadRequest, NotFound, SlurmAPIError, UnsupportedOperation
from slurmdeploy.slurm.operations import SlurmOperations
from slurmdeploy.slurm.reservations import parse_time, reservation_fields
from slurmdeploy.slurm.versions import adapter, no_val_number
from test_slurm_recorded import replay_client

WRITERS = ("v0.0.43", "v0.0.44", "v0.0.45")
NODE, USER, NAME = "localhost", "root", "rec-resv"


def ops_for(version, *names, api_version=None):
    client, replay = replay_client([recorded(version, n) for n in names], api_version=api_version or version)
    return SlurmOperations(client), replay


def recorded_start(version):
    return recorded(version, "reservation_create")["request"]["body"]["start_time"]["number"]


def sent(replay):
    return [(method, path) for method, path, _, _ in replay.sent]


# ------------------------------------------------------------------------- validation

@pytest.mark.parametrize("value, expected", [
    (1796424344, 1796424344), ("1796424344", 1796424344), ("now", 1000),
    ("2026-12-04T10:00:00Z", 1796378400), ("2026-12-04T11:00:00+01:00", 1796378400),
])
def test_times_operators_write(value, expected):
    assert parse_time(value, "start_time", now=1000) == expected


@pytest.mark.parametrize("value, message", [
    ("2026-12-04T10:00:00", r"has no UTC offset: write e\.g\. 2026-12-04T10:00:00Z"),
    ("tomorrow", r"start_time must be epoch seconds, 'now' or ISO 8601"),
    (True, r"start_time must be"),
])
def test_times_without_an_offset_or_unreadable_are_refused(value, message):
    with pytest.raises(BadRequest, match=message):
        parse_time(value, "start_time")


GOOD = dict(nodes=NODE, start_time=2000, duration=10, users=[USER])


@pytest.mark.parametrize("change, message", [
    (dict(end_time=1999, duration=None), r"end_time 1970-01-01T00:33:19Z is not after start_time "
                                         r"1970-01-01T00:33:20Z: nothing was created"),
    (dict(end_time=2000, duration=None), r"is not after start_time"),
    (dict(end_time=3000), r"give end_time or duration \(minutes\), not both"),
    (dict(duration=None), r"needs end_time or duration"),
    (dict(start_time=None), r"needs start_time"),
    (dict(nodes=None), r"needs nodes \(names or a hostlist expression\) or node_count"),
    (dict(node_count=2), r"give nodes or node_count, not both"),
    (dict(users=None), r"needs users or accounts"),
    (dict(duration=0), r"duration must be a positive integer \(minutes\)"),
    (dict(users=[""]), r"users must be a list of names"),
    (dict(extra={"start_time": 5}), r"fields may not set start_time: use the action's own parameters"),
])
def test_a_new_reservation_is_checked_before_any_request(change, message):
    with pytest.raises(BadRequest, match=message):
        reservation_fields(NAME, **dict(GOOD, **change))


@pytest.mark.parametrize("name", ["", "two words", "a,b", None])
def test_bad_reservation_names(name):
    with pytest.raises(BadRequest, match="reservation name must be a non-empty string"):
        reservation_fields(name, **GOOD)


@pytest.mark.parametrize("version", WRITERS)
def test_the_body_built_is_the_body_slurm_accepted(version):
    accepted = recorded(version, "reservation_create")["request"]["body"]
    fields = reservation_fields(NAME, nodes=NODE, start_time=recorded_start(version), duration=10, users=USER)
    assert adapter(version).reservation_body(fields) == accepted
    # flags are upper-cased; a hostlist expression goes to Slurm unexpanded; node_count is a NO_VAL number
    fields = reservation_fields(NAME, nodes="n[01-04]", start_time=1, end_time=2, accounts="a,b", flags=["maint"])
    assert fields["node_list"] == ["n[01-04]"] and fields["accounts"] == ["a", "b"] and fields["flags"] == ["MAINT"]
    body = adapter(version).reservation_body(reservation_fields(NAME, node_count=2, start_time=1, duration=5,
                                                                users=[USER]))
    assert body["node_count"] == {"set": True, "infinite": False, "number": 2}


# ------------------------------------------------------------------- writes, replayed

@pytest.mark.parametrize("version", WRITERS)
def test_create_reads_first_writes_once_and_returns_the_record_read_back(version):
    ops, replay = ops_for(version, "reservations_none", "nodes", "reservation_create", "reservations")
    out = ops.create_reservation(NAME, nodes=NODE, start_time=recorded_start(version), duration=10, users=[USER])
    assert out["created"] is True and out["reservation"] == NAME
    assert out["record"]["name"] == NAME and out["record"]["node_list"] == NODE and out["record"]["users"] == USER
    assert no_val_number(out["record"]["start_time"]) == recorded_start(version)
    assert sent(replay) == [("GET", f"/slurm/{version}/reservations"), ("GET", f"/slurm/{version}/nodes"),
                            ("POST", f"/slurm/{version}/reservation"), ("GET", f"/slurm/{version}/reservations")]


@pytest.mark.parametrize("version", WRITERS)
def test_create_of_an_existing_name_sends_no_write(version):
    """POST /reservation of an existing name would *update* that reservation (reservations.c)."""
    ops, replay = ops_for(version, "reservations")
    with pytest.raises(BadRequest, match=r"Slurm reservation 'rec-resv' already exists \(names are compared "
                                         r"case-insensitively\)"):
        ops.create_reservation("REC-RESV", nodes=NODE, start_time="now", duration=10, users=[USER])
    assert sent(replay) == [("GET", f"/slurm/{version}/reservations")]


@pytest.mark.parametrize("version", WRITERS)
def test_create_on_unknown_nodes_sends_no_write(version):
    ops, replay = ops_for(version, "reservations_none", "nodes")
    with pytest.raises(BadRequest, match=r"unknown node\(s\) n017: Slurm has localhost"):
        ops.create_reservation(NAME, nodes=[NODE, "n017"], start_time="now", duration=10, users=[USER])
    assert ("POST", f"/slurm/{version}/reservation") not in sent(replay)


@pytest.mark.parametrize("version", WRITERS)
@pytest.mark.parametrize("recording, number, says", [
    ("reservation_overlap", 2058, r"Slurm did not create reservation 'rec-resv' \(Slurm: Requested reservation "
                                  r"overlaps with another reservation\); nothing was created"),
    ("reservation_unknown_user", -1, r"Slurm did not create reservation 'rec-resv' \(Slurm: no reason given "
                                     r"\(error -1\); Slurm answers so when a user in users is unknown"),
])
def test_a_refused_create_names_slurms_reason_and_checks_nothing_was_created(version, recording, number, says):
    ops, replay = ops_for(version, "reservations_none", "nodes", recording)
    with pytest.raises(SlurmAPIError, match=says) as err:
        ops.create_reservation(NAME, nodes=NODE, start_time="now", duration=10, users=[USER])
    assert err.value.error_numbers == [number]
    # the reservations were read again after the refusal (and nothing of that name was there)
    assert sent(replay)[-1] == ("GET", f"/slurm/{version}/reservations")


@pytest.mark.parametrize("version", WRITERS)
def test_slurms_own_end_before_start_refusal_is_reported(version):
    # reservation_fields refuses this first; Slurm's answer if it got there: 422, 2053
    rec = recorded(version, "reservation_end_before_start")
    assert rec["status"] == 422 and rec["body"]["errors"][0]["error_number"] == 2053
    assert "Start time cannot be after end time" in rec["body"]["errors"][0]["description"]


@pytest.mark.parametrize("version", WRITERS)
def test_update_of_an_unknown_reservation_sends_no_write(version):
    """POST /reservation of an unknown name would *create* one."""
    ops, replay = ops_for(version, "reservations_none")
    with pytest.raises(NotFound, match=r"Slurm reservation 'rec-resv' not found \(reservations: none\)"):
        ops.update_reservation(NAME, duration=20)
    assert sent(replay) == [("GET", f"/slurm/{version}/reservations")]


@pytest.mark.parametrize("version", WRITERS)
def test_update_sends_only_the_change_and_checks_the_resulting_times(version):
    ops, replay = ops_for(version, "reservations", "reservation_update")
    out = ops.update_reservation(NAME, duration=20)
    assert out["updated"] == {"duration": 20}
    assert replay.sent[1][3] is not None and b'"duration": {"set": true, "infinite": false, "number": 20}' in \
        replay.sent[1][3]
    with pytest.raises(BadRequest, match=r"the reservation would end .* before it starts .*: nothing was changed"):
        ops.update_reservation(NAME, end_time=recorded_start(version) - 60)
    with pytest.raises(BadRequest, match="give at least one field to change"):
        ops.update_reservation(NAME)


@pytest.mark.parametrize("version", WRITERS)
def test_delete_checks_the_reservation_is_gone(version):
    ops, replay = ops_for(version, "reservations", "reservation_delete")
    replay.queue[("GET", f"/slurm/{version}/reservations")].append(recorded(version, "reservations_none"))
    assert ops.delete_reservation(NAME) == {"reservation": NAME, "deleted": True}
    assert sent(replay) == [("GET", f"/slurm/{version}/reservations"),
                            ("DELETE", f"/slurm/{version}/reservation/{NAME}"),
                            ("GET", f"/slurm/{version}/reservations")]


@pytest.mark.parametrize("version", WRITERS)
def test_slurms_answer_to_deleting_an_unknown_reservation(version):
    rec = recorded(version, "reservation_delete_unknown")
    assert rec["status"] == 422 and rec["body"]["errors"][0]["error_number"] == 2053
    ops, replay = ops_for(version, "reservations_none")
    with pytest.raises(NotFound):
        ops.delete_reservation(NAME)
    assert len(replay.sent) == 1


@pytest.mark.parametrize("version", ["v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42"])
def test_older_versions_refuse_every_write_before_any_request(version):
    ops, replay = ops_for(version)
    for call in (lambda: ops.create_reservation(NAME, **GOOD), lambda: ops.update_reservation(NAME, duration=5),
                 lambda: ops.delete_reservation(NAME)):
        with pytest.raises(UnsupportedOperation, match=rf"not supported by Slurm REST {version}, needs Slurm >= "
                                                       r"25\.05 \(REST v0\.0\.43\)"):
            call()
    assert replay.sent == []


# ------------------------------------------------------------------ version not loaded

def openapi_document(version):
    """GET /openapi/v3 of Slurm 26.05.5 as its recorded paths (the document's ``paths`` keys)."""
    rec = recorded(version, "openapi_v3_paths")
    return dict(rec, body={"paths": {path: {"get": {}} for path in rec["body"]}})


def test_a_version_the_server_does_not_load_names_the_versions_it_offers():
    client, replay = replay_client([recorded("v0.0.45", "version_not_loaded"), openapi_document("v0.0.45")],
                                   api_version="v0.0.39")
    with pytest.raises(SlurmAPIError) as err:
        client.ping()
    assert str(err.value).startswith(
        "slurmrestd at http://slurm.test:6820 does not serve Slurm REST API v0.0.39 (its data_parser plugin is "
        "not loaded); it offers v0.0.42, v0.0.43, v0.0.44, v0.0.45: set slurm_api_version to one of v0.0.42, "
        "v0.0.43, v0.0.44, v0.0.45 or to auto")
    assert err.value.status == 404 and err.value.endpoint == "/slurm/v0.0.39/ping"
    assert sent_paths(replay) == ["/slurm/v0.0.39/ping", "/openapi/v3"]


def sent_paths(replay):
    return [path for _, path, _, _ in replay.sent]


@pytest.mark.parametrize("version", WRITERS)
def test_served_openapi_has_exactly_the_reservation_endpoints_of_the_table(version):
    from slurmdeploy.slurm.endpoints import ENDPOINTS, path_pattern

    served = {tuple(op.split(" ", 1)) for op in recorded(version, "openapi_v3_operations")["body"]}
    served = {(m, p.rstrip("/")) for m, p in served}
    api = adapter(version)
    for op, endpoint in ENDPOINTS.items():
        if endpoint.plugin != "slurm":
            continue  # slurmdbd's paths: not served by the recorded slurmrestd (no openapi/slurmdbd)
        assert ((endpoint.method, path_pattern(op, version).rstrip("/")) in served) is api.supports(op), op
