"""Slurm 26.05 (REST v0.0.42-v0.0.45, testbed flavour ``forky``): what is new there.

- REST v0.0.43, v0.0.44 and v0.0.45 are detected and answer (the version-parametrised suites
  in test_slurm_client.py and test_operations.py run every job and operations test on them);
- reservations written through REST (``POST /reservation``, ``DELETE /reservation/{name}``),
  each read back and compared with ``scontrol show reservation`` (the testbed's tooling);
- bad reservations (end before start, unknown node or user, overlap, a name that exists) are
  refused with a clear error and nothing is created, checked with scontrol afterwards;
- a version the server does not load fails naming the versions it offers;
- the reservation actions as StackStorm runs them (Exchange ``node.reserve``/``node.unreserve``).

Reservations start days ahead (a different hour per test) so no job of the shared session
cluster is affected and no test's reservation overlaps another's. Node and reservation
writes need a Slurm administrator: a token of root (the testbed's SlurmUser).
"""

import json
import time
import uuid
from datetime import datetime, timezone

import pytest

import testbed
from integration.test_operations import NODE, REPO, Runner, operations, pack_config, root_token
from slurmdeploy.errors import BadRequest, NotFound, SlurmAPIError, SubmitRejected
from slurmdeploy.slurm import JobRequest, SlurmClient
from slurmdeploy.slurm.versions import no_val_number
from slurmdeploy.auth import StaticJWT

WRITERS = ("v0.0.43", "v0.0.44", "v0.0.45")
DAY = 86400


@pytest.fixture
def forky(slurm_cluster_of):
    return slurm_cluster_of("forky")


def start_at(days, hour=0):
    """Epoch seconds ``days`` ahead at a whole minute plus ``hour`` hours."""
    return (int(time.time()) // 60) * 60 + days * DAY + hour * 3600


def resv_name(tag):
    return f"h6-{tag}-{uuid.uuid4().hex[:6]}"


def scontrol_reservations(cluster):
    """``{name: {Key: Value}}`` from ``scontrol -o show reservation`` (one line per reservation)."""
    out = testbed.slurm_exec(cluster["state_dir"], "scontrol", "-o", "show", "reservation", check=True).stdout
    found = {}
    for line in out.splitlines():
        if line.startswith("ReservationName="):
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            found[fields["ReservationName"]] = fields
    return found


def chroot_time(cluster, epoch):
    """``epoch`` as scontrol prints it (the cluster's local time, ``%Y-%m-%dT%H:%M:%S``)."""
    return testbed.slurm_exec(cluster["state_dir"], "date", "-d", f"@{epoch}", "+%Y-%m-%dT%H:%M:%S",
                              check=True).stdout.strip()


def cleanup(cluster, *names):
    for name in names:
        testbed.slurm_exec(cluster["state_dir"], "scontrol", "delete", f"reservationname={name}")


# ----------------------------------------------------------------------------- versions

def test_auto_picks_v0045_and_every_version_answers(forky):
    assert forky["slurm_version"].startswith("26.05.")
    assert operations(forky).api.name == "v0.0.45"
    for version in ("v0.0.42",) + WRITERS:
        ops = operations(forky, admin=False, api_version=version)
        assert ops.ping()["slurm_release"].startswith("26.05.")
        assert ops.client.get_job(999999) is None


@pytest.mark.parametrize("flavour, pinned, offered", [
    ("forky", "v0.0.41", "v0.0.42, v0.0.43, v0.0.44, v0.0.45"),
    ("trixie", "v0.0.45", "v0.0.40, v0.0.41, v0.0.42"),
])
def test_a_version_the_server_does_not_load_names_the_versions_it_offers(slurm_cluster_of, flavour, pinned, offered):
    c = slurm_cluster_of(flavour)
    client = SlurmClient(c["url"], StaticJWT(str(c["jwt"]), c["user"]), api_version=pinned, connect_timeout=2,
                         read_timeout=20)
    with pytest.raises(SlurmAPIError) as err:
        client.list_jobs()
    assert f"does not serve Slurm REST API {pinned} (its data_parser plugin is not loaded); it offers {offered}: " \
           f"set slurm_api_version to one of {offered} or to auto" in str(err.value)
    assert err.value.status == 404 and str(c["jwt"]) not in str(err.value)


def test_a_submit_26_05_creates_but_answers_with_a_warning_is_rejected_naming_the_job(forky):
    """26.05.5 answers a job asking for more CPUs than any node has with HTTP 200, a job id, no
    error and only the warning "Job submission resulted in non-zero return code: Requested
    partition configuration not available now" (24.11.5: 500 + 2014, no job). The job exists."""
    client = SlurmClient(forky["url"], StaticJWT(str(forky["jwt"]), forky["user"]), connect_timeout=2, read_timeout=20)
    req = JobRequest(name=resv_name("cpus"), script="#!/bin/bash\ntrue", environment={"PATH": "/usr/bin:/bin"},
                     mcs_label="h6_cpus", current_working_directory="/tmp", cpus_per_task=999)
    with pytest.raises(SubmitRejected, match="non-zero return code: Requested partition configuration") as err:
        client.submit_job(req)
    assert err.value.job_id and err.value.status == 200
    job = client.get_job(err.value.job_id)
    assert job is not None and job.job_state == "PENDING"
    assert client.cancel_job(err.value.job_id)


# ------------------------------------------------------------------------- reservations

@pytest.mark.parametrize("version", WRITERS)
def test_reservation_written_through_rest_reads_back_in_scontrol(forky, version):
    """Create (nodes, ISO 8601 start, duration, users, MAINT), update (end, users), delete."""
    ops = operations(forky, api_version=version)
    name = resv_name(version[-2:])
    start = start_at(3, hour=WRITERS.index(version))
    iso = datetime.fromtimestamp(start, timezone.utc).isoformat().replace("+00:00", "Z")
    try:
        out = ops.create_reservation(name, nodes=NODE, start_time=iso, duration=10, users=["root"], flags=["MAINT"])
        assert out["created"] and out["record"]["name"] == name
        assert no_val_number(out["record"]["start_time"]) == start
        assert no_val_number(out["record"]["end_time"]) == start + 600
        seen = scontrol_reservations(forky)[name]
        assert (seen["Nodes"], seen["Users"], seen["Duration"]) == (NODE, "root", "00:10:00")
        assert seen["StartTime"] == chroot_time(forky, start) and seen["EndTime"] == chroot_time(forky, start + 600)
        assert "MAINT" in seen["Flags"].split(",")

        out = ops.update_reservation(name, end_time=start + 1800, users=["root", forky["user"]])
        assert no_val_number(out["record"]["end_time"]) == start + 1800
        seen = scontrol_reservations(forky)[name]
        assert seen["EndTime"] == chroot_time(forky, start + 1800) and seen["Duration"] == "00:30:00"
        assert sorted(seen["Users"].split(",")) == sorted(["root", forky["user"]])
        assert seen["StartTime"] == chroot_time(forky, start)  # unchanged

        assert ops.delete_reservation(name) == {"reservation": name, "deleted": True}
        assert name not in scontrol_reservations(forky)
    finally:
        cleanup(forky, name)


def test_reservation_by_node_count_accounts_and_end_time(forky):
    ops = operations(forky)
    name = resv_name("count")
    start = start_at(3, hour=5)
    if forky.get("accounting"):
        # with slurmdbd, slurmctld refuses a reservation for an account slurmdbd does not know
        # (error 2045, docs/slurm-rest-accounting.md): make "ops" one (exits 1 when already there)
        testbed.slurm_exec(forky["state_dir"], "sacctmgr", "-i", "add", "account", "ops")
    try:
        out = ops.create_reservation(name, node_count=1, start_time=start, end_time=start + 3600,
                                     accounts=["ops"], flags=["maint", "IGNORE_JOBS"])
        seen = scontrol_reservations(forky)[name]
        assert (seen["NodeCnt"], seen["Nodes"], seen["Accounts"], seen["Duration"]) == ("1", NODE, "ops", "01:00:00")
        assert {"MAINT", "IGNORE_JOBS"} <= set(seen["Flags"].split(","))
        assert out["record"]["accounts"] == "ops"
    finally:
        cleanup(forky, name)


def test_bad_reservations_are_refused_and_create_nothing(forky):
    ops = operations(forky)
    existing = resv_name("taken")
    start = start_at(4)
    good = dict(nodes=NODE, start_time=start, duration=10, users=["root"])
    before = set(scontrol_reservations(forky))
    try:
        ops.create_reservation(existing, **good)
        before.add(existing)
        cases = [
            (dict(good, end_time=start - 60, duration=None), BadRequest, r"end_time .* is not after start_time"),
            (dict(good, nodes="n017"), BadRequest, r"unknown node\(s\) n017: Slurm has localhost"),
            (dict(good, users=["no-such-user-h6"]), SlurmAPIError,
             r"\(Slurm: no reason given \(error -1\); Slurm answers so when a user in users is unknown"),
            (dict(good, start_time=start + 300), SlurmAPIError,
             r"\(Slurm: Requested reservation overlaps with another reservation\); nothing was created"),
            # 26.05 creates it and only warns "Ignoring unknown field": the pack deletes it again
            (dict(good, start_time=start_at(4, hour=3), fields={"no_such_field": 1}), SlurmAPIError,
             r"slurm warning at #/no_such_field/: Ignoring unknown field .*the reservation Slurm created anyway "
             r"was deleted again|the reservation Slurm created anyway was deleted again.*Ignoring unknown field"),
        ]
        for fields, error, message in cases:
            with pytest.raises(error, match=message):
                ops.create_reservation(resv_name("bad"), **fields)
            assert set(scontrol_reservations(forky)) == before, fields
        for taken in (existing, existing.upper()):  # slurmrestd compares names case-insensitively
            with pytest.raises(BadRequest, match=rf"Slurm reservation '{existing}' already exists"):
                ops.create_reservation(taken, **dict(good, start_time=start_at(5), users=[forky["user"]]))
        seen = scontrol_reservations(forky)
        assert set(seen) == before and seen[existing]["Users"] == "root"  # the existing one was not updated
        with pytest.raises(NotFound, match=r"Slurm reservation 'h6-none' not found"):
            ops.update_reservation("h6-none", duration=5)
        with pytest.raises(BadRequest, match=r"would end .* before it starts"):
            ops.update_reservation(existing, end_time=start - 60)
        assert "h6-none" not in scontrol_reservations(forky)
        assert scontrol_reservations(forky)[existing]["Duration"] == "00:10:00"
    finally:
        cleanup(forky, existing)


def test_a_maint_reservation_does_not_stop_an_overlapping_one(forky):
    """Slurm lets a reservation overlap a MAINT reservation (seen on 26.05.5; 2058 "overlaps"
    without MAINT, see test_bad_reservations_are_refused_and_create_nothing): the pack passes
    that on rather than second-guessing slurmctld."""
    ops = operations(forky)
    maint, other = resv_name("maint"), resv_name("over")
    start = start_at(6)
    try:
        ops.create_reservation(maint, nodes=NODE, start_time=start, duration=10, users=["root"], flags=["MAINT"])
        ops.create_reservation(other, nodes=NODE, start_time=start, duration=10, users=["root"])
        assert {maint, other} <= set(scontrol_reservations(forky))
    finally:
        cleanup(forky, maint, other)


def test_reservation_actions_through_the_runner(forky, tmp_path):
    """reservation_create / _update / _delete as StackStorm runs them (Exchange node.reserve,
    node.unreserve): Slurm's record read back, errors as failed executions, never the token."""
    name = resv_name("act")
    start = start_at(7)
    token = str(root_token(forky))
    try:
        with Runner(str(REPO), config=pack_config(forky), state_dir=str(tmp_path / "state")) as runner:
            created = runner.run_action("slurmdeploy.reservation_create", {
                "name": name, "nodes": NODE, "start_time": str(start), "duration": 15, "users": ["root"],
                "flags": ["MAINT"]})
            updated = runner.run_action("slurmdeploy.reservation_update", {"reservation": name, "duration": 45})
            seen = scontrol_reservations(forky)[name]
            bad = runner.run_action("slurmdeploy.reservation_create", {
                "name": resv_name("act-bad"), "nodes": NODE, "start_time": str(start), "end_time": str(start - 1),
                "users": ["root"]})
            deleted = runner.run_action("slurmdeploy.reservation_delete", {"reservation": name})
            missing = runner.run_action("slurmdeploy.reservation_delete", {"reservation": name})
        assert created["status"] == "succeeded" and created["result"]["record"]["name"] == name
        assert updated["status"] == "succeeded" and seen["Duration"] == "00:45:00" and "MAINT" in seen["Flags"]
        assert bad["status"] == "failed" and bad["result"]["error_type"] == "BadRequest"
        assert "is not after start_time" in bad["result"]["error"]
        assert deleted["status"] == "succeeded" and deleted["result"] == {"reservation": name, "deleted": True}
        assert missing["status"] == "failed" and missing["result"]["error_type"] == "NotFound"
        assert name not in scontrol_reservations(forky)
        assert token not in json.dumps([created, updated, bad, deleted, missing])
    finally:
        cleanup(forky, name)
