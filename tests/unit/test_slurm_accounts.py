"""slurm/accounts.py without a Slurm: slurmdbd's answers recorded from Slurm 26.05.5 under REST
v0.0.42 and v0.0.45 (scripts/record-slurm-accounts.py, tests/fixtures/slurm/v0.0.4x/accounts_*.json)
replayed through the real transport, and the pure limit helpers. The same behaviour on real
slurmdbd: tests/integration/test_accounts.py."""

import pytest
import requests

from slurm_replay import TOKEN, Replay, recorded
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import BadRequest, NotFound
from slurmdeploy.slurm import SlurmClient
from slurmdeploy.slurm.accounting import AccountingUnavailable
from slurmdeploy.slurm.accounts import (LIMITS, AccountAdmin, AccountBusy, AdminLevelRequired, LimitRejected,
                                        limits_body, limits_of, parse_tres)

VERSIONS = ["v0.0.42", "v0.0.45"]


def admin_replaying(version, *names):
    replay = Replay([recorded(version, n) for n in names])
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version=version,
                         session=session)
    return AccountAdmin(client), replay


def replay_call(version, name):
    """Send the recorded request of ``name`` through AccountAdmin.call."""
    rec = recorded(version, name)
    admin, _ = admin_replaying(version, name)
    req = rec["request"]
    operation = {("POST", "accounts_association/"): "db_accounts_association_add",
                 ("POST", "associations/"): "db_associations_update",
                 ("DELETE", "account/recacct"): "db_account_delete"}[(req["method"], req["path"].split("/", 3)[3])]
    names = {"account_name": "recacct"} if operation == "db_account_delete" else {}
    return admin.call(operation, body=req["body"], **names)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name, error, words", [
    ("accounts_create_denied", AdminLevelRequired, "slurmtest needs AdminLevel=Operator"),
    ("accounts_delete_busy", AccountBusy, "job\\(s\\) are active"),
    ("accounts_create_bad_parent", NotFound, "unknown parent account"),
    ("accounts_limits_bad_qos", NotFound, "unknown QOS"),
    ("accounts_dbd_down", AccountingUnavailable, "slurmdbd did not answer"),
])
def test_recorded_refusals_become_named_errors(version, name, error, words):
    """26.05.5 answers these with HTTP 422 (2002, 7001, 2046, 2066) or 502 (7000); the error type
    comes from Slurm's error number, never from the status alone. 7001 is "Job(s) active", not a
    connection failure (slurm_errno.h: ESLURM_JOBS_RUNNING_ON_ASSOC)."""
    with pytest.raises(error, match=words) as err:
        replay_call(version, name)
    assert err.value.status == recorded(version, name)["status"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["accounts_create_exists", "accounts_delete_absent"])
def test_nothing_to_do_is_http_304_with_an_empty_body(version, name):
    rec = recorded(version, name)
    assert (rec["status"], rec["body"]) == (304, "")
    assert replay_call(version, name) == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_an_untracked_tres_is_accepted_silently(version):
    """Slurm answers a GrpTRES of gres/gpu (not in AccountingStorageTRES) with 200 and no error,
    and sets nothing: hence the pack checks TRES names against GET tres/ before writing."""
    rec = recorded(version, "accounts_limits_untracked_tres")
    assert rec["status"] == 200 and not rec["body"]["errors"]
    tracked = {t["type"] + (f"/{t['name']}" if t["name"] else "") for t in recorded(version, "accounts_tres")["body"]["TRES"]}
    assert "gres/gpu" not in tracked and "cpu" in tracked
    with pytest.raises(LimitRejected, match="does not track TRES gres/gpu"):
        limits_body({"GrpTRES": "gres/gpu=2"}, tracked)


@pytest.mark.parametrize("version", VERSIONS)
def test_limits_read_back_in_sacctmgr_names(version):
    """The recorded association after setting GrpTRESMins=cpu=1000, MaxJobs=5, MaxWall=90 reads
    back as sacctmgr shows it (the REST names differ: max.tres.group.minutes, max.jobs.active,
    max.jobs.per.wall_clock)."""
    (assoc,) = [a for a in recorded(version, "accounts_associations_limits")["body"]["associations"] if not a["user"]]
    got = limits_of(assoc)
    assert (got["GrpTRESMins"], got["MaxJobs"], got["MaxWall"], got["GrpTRES"], got["GrpWall"], got["QOS"]) == \
        ({"cpu": 1000}, 5, 90, {}, None, ["normal"])
    (before,) = [a for a in recorded(version, "accounts_associations")["body"]["associations"] if not a["user"]]
    assert limits_of(before)["MaxJobs"] is None and limits_of(before)["GrpTRESMins"] == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_recorded_limits_body_is_what_limits_body_builds(version):
    body = recorded(version, "accounts_limits_set")["request"]["body"]["associations"][0]
    built, wanted = limits_body({"GrpTRESMins": "cpu=1000", "MaxJobs": 5, "MaxWall": 90})
    assert built["max"] == body["max"]
    assert wanted == {"GrpTRESMins": {"cpu": 1000}, "MaxJobs": 5, "MaxWall": 90}


def test_clearing_uses_infinite_and_minus_one():
    """{"set": false} is ignored by slurmdbd (the old value stays, seen on 24.11.5): a cleared
    number is infinite, a cleared TRES has count -1."""
    body, wanted = limits_body({"MaxJobs": None, "MaxWall": None, "GrpTRES": "cpu=-1,mem=4000"})
    assert body["max"]["jobs"]["active"] == {"set": True, "infinite": True, "number": 0}
    assert body["max"]["jobs"]["per"]["wall_clock"]["infinite"] is True
    assert body["max"]["tres"]["total"] == [{"type": "cpu", "count": -1}, {"type": "mem", "count": 4000}]
    assert wanted == {"MaxJobs": None, "MaxWall": None, "GrpTRES": {"mem": 4000}}


@pytest.mark.parametrize("limits, words", [
    ({"MaxCPUs": 1}, "unknown limit 'MaxCPUs'"),
    ({"MaxJobs": "many"}, "MaxJobs: expected a whole number"),
    ({"MaxJobs": True}, "MaxJobs: expected a whole number"),
    ({"GrpTRES": "cpu"}, "is not name=count"),
    ({"GrpTRES": "cpu=-2"}, "must be >= 0"),
    ({"GrpTRES": None}, "to clear TRES limits give each TRES with -1"),
    ({"QOS": ""}, "at least one QOS"),
    ({}, "non-empty mapping"),
])
def test_bad_limits_are_refused_before_sending(limits, words):
    with pytest.raises(BadRequest, match=words) as err:
        limits_body(limits)
    assert err.value.request_sent is False


def test_tres_forms():
    assert parse_tres("cpu=4, mem=1000,gres/gpu=2", "GrpTRES") == {"cpu": 4, "mem": 1000, "gres/gpu": 2}
    assert parse_tres({"CPU": 4}, "GrpTRES") == {"cpu": 4}
    assert set(LIMITS) >= {"GrpTRESMins", "GrpTRES", "MaxJobs", "MaxWall", "QOS"}


def test_version_2205_is_refused_without_a_request():
    """22.05's REST v0.0.38 has no accounts_association: refused before anything is sent."""
    from slurmdeploy.errors import UnsupportedOperation
    from slurmdeploy.slurm.endpoints import resolve

    for operation in ("db_accounts_association_add", "db_users_association_add", "db_associations_update",
                      "db_account_delete", "db_association_delete"):
        with pytest.raises(UnsupportedOperation, match="23.11"):
            resolve(operation, "v0.0.38")
