"""Accounts, users and limits in slurmdbd through the pack (issue 17), on real Slurm 24.11 and
26.05 with slurmdbd and MariaDB (the session clusters run accounting): every result is compared
field by field with ``sacctmgr show ... -P`` of the same cluster. 22.05 (REST v0.0.38) has no
``accounts_association``: the pack refuses before sending anything.

The pack's Slurm user (the testbed's ``slurmtest``) is made ``AdminLevel=Operator`` for a test
by the ``operator`` fixture and set back to ``None`` afterwards; ``test_without_admin_level`` runs
without it."""

import uuid

import pytest

import testbed
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import BadRequest, NotFound, UnsupportedOperation
from slurmdeploy.slurm import JobRequest, SlurmClient
from slurmdeploy.slurm.accounting import AccountingUnavailable
from slurmdeploy.slurm.accounts import AccountAdmin, AccountBusy, AdminLevelRequired, LimitRejected

FLAVOURS = ["trixie", "forky"]


def _sacctmgr(cluster, *args):
    """``sacctmgr -n -P show ...`` rows split on ``|``."""
    out = testbed.slurm_exec(cluster["state_dir"], "sacctmgr", "-n", "-P", "show", *args, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def _set_admin_level(cluster, level):
    testbed.slurm_exec(cluster["state_dir"], "sacctmgr", "-i", "modify", "user", cluster["user"], "set",
                       f"adminlevel={level}", check=True)


@pytest.fixture(params=FLAVOURS)
def cluster(request, slurm_cluster_of):
    info = slurm_cluster_of(request.param)
    assert info["accounting"], "the session clusters run slurmdbd (tests/conftest.py)"
    return info


@pytest.fixture
def admin(cluster):
    """An AccountAdmin as the testbed's REST user, without AdminLevel."""
    client = SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]))
    return AccountAdmin(client)


@pytest.fixture
def operator(cluster, admin):
    """``admin`` with the user made AdminLevel=Operator for the test (set back to None after)."""
    _set_admin_level(cluster, "Operator")
    try:
        yield admin
    finally:
        _set_admin_level(cluster, "None")


@pytest.fixture
def names(cluster):
    """Unique account names for the test; whatever is left of them is deleted afterwards."""
    made = {"parent": f"p{uuid.uuid4().hex[:8]}", "child": f"c{uuid.uuid4().hex[:8]}"}
    yield made
    for name in (made["child"], made["parent"]):
        testbed.slurm_exec(cluster["state_dir"], "sacctmgr", "-i", "delete", "account", name)


def test_account_lifecycle_matches_sacctmgr(cluster, operator, names):
    acct, c = names["parent"], cluster["cluster"]
    made = operator.create_account(acct, parent=cluster["account"], description="Project X", organization="ska")
    assert (made["result"], made["account"], made["parent"], made["cluster"]) == ("created", acct, cluster["account"], c)
    assert _sacctmgr(cluster, "account", acct, "format=account,description,organization") == [[acct, "Project X", "ska"]]
    assert _sacctmgr(cluster, "assoc", f"account={acct}", "format=cluster,account,user,parentname") == \
        [[c, acct, "", cluster["account"]]]
    again = operator.create_account(acct, parent=cluster["account"], description="other")
    assert again["result"] == "exists" and again["description"] == "Project X"

    changed = operator.modify_account(acct, description="Project Y", organization="skao")
    assert changed["result"] == "modified"
    assert _sacctmgr(cluster, "account", acct, "format=account,description,organization") == [[acct, "Project Y", "skao"]]
    assert operator.modify_account(acct, description="Project Y")["result"] == "unchanged"

    added = operator.add_user("mallory", acct)
    assert added["result"] == "added"
    assert [c, acct, "mallory"] in _sacctmgr(cluster, "assoc", f"account={acct}", "format=cluster,account,user")
    assert operator.add_user("mallory", acct)["result"] == "exists"

    limits = operator.set_limits(acct, {"GrpTRESMins": "cpu=1000", "GrpTRES": {"cpu": 2}, "MaxJobs": 5,
                                        "MaxWall": 90, "QOS": "normal"})
    assert limits["result"] == "set"
    fmt = "format=account,user,grptresmins,grptres,maxjobs,maxwall,qos"
    assert _sacctmgr(cluster, "assoc", f"account={acct}", "user=", fmt) == \
        [[acct, "", "cpu=1000", "cpu=2", "5", "01:30:00", "normal"]]
    got = limits["limits"]
    assert (got["GrpTRESMins"], got["GrpTRES"], got["MaxJobs"], got["MaxWall"], got["QOS"]) == \
        ({"cpu": 1000}, {"cpu": 2}, 5, 90, ["normal"])

    user_limits = operator.set_limits(acct, {"MaxJobs": 1}, user="mallory")
    assert user_limits["limits"]["MaxJobs"] == 1
    assert _sacctmgr(cluster, "assoc", f"account={acct}", "user=mallory", "format=user,maxjobs") == [["mallory", "1"]]

    cleared = operator.set_limits(acct, {"GrpTRESMins": "cpu=-1", "GrpTRES": "cpu=-1", "MaxJobs": None,
                                         "MaxWall": None})
    assert (cleared["limits"]["GrpTRESMins"], cleared["limits"]["MaxJobs"], cleared["limits"]["MaxWall"]) == ({}, None, None)
    assert _sacctmgr(cluster, "assoc", f"account={acct}", "user=", fmt) == [[acct, "", "", "", "", "", "normal"]]

    child = names["child"]
    operator.create_account(child, parent=cluster["account"])
    moved = operator.modify_account(child, parent=acct)
    assert (moved["result"], moved["parent"]) == ("modified", acct)
    assert _sacctmgr(cluster, "assoc", f"account={child}", "user=", "format=account,parentname") == [[child, acct]]
    assert operator.delete_account(child)["result"] == "deleted"

    assert operator.remove_user("mallory", acct)["result"] == "removed"
    assert operator.remove_user("mallory", acct)["result"] == "absent"
    assert ["mallory"] not in _sacctmgr(cluster, "assoc", f"account={acct}", "format=user")
    assert operator.delete_account(acct)["result"] == "deleted"
    assert operator.delete_account(acct)["result"] == "absent"
    assert _sacctmgr(cluster, "account", acct, "format=account") == []


def test_bad_input_changes_nothing(cluster, operator, names):
    acct, child = names["parent"], names["child"]
    with pytest.raises(NotFound, match="unknown parent account 'nosuchparent'"):
        operator.create_account(acct, parent="nosuchparent")
    assert _sacctmgr(cluster, "account", acct, "format=account") == []
    with pytest.raises(NotFound, match="unknown cluster 'nosuchcluster'"):
        operator.create_account(acct, cluster="nosuchcluster")
    with pytest.raises(BadRequest, match="not a valid name"):
        operator.create_account("bad name")
    with pytest.raises(NotFound, match="unknown account"):
        operator.add_user("mallory", acct)

    operator.create_account(acct, parent=cluster["account"])
    before = _sacctmgr(cluster, "assoc", f"account={acct}", "user=", "format=grptres,maxjobs,qos")
    with pytest.raises(NotFound, match="unknown QOS nosuchqos"):
        operator.set_limits(acct, {"QOS": ["nosuchqos"], "MaxJobs": 3})
    # Slurm drops a TRES it does not track with HTTP 200; the pack refuses it before writing
    with pytest.raises(LimitRejected, match="does not track TRES gres/gpu"):
        operator.set_limits(acct, {"GrpTRES": "gres/gpu=2", "MaxJobs": 3})
    with pytest.raises(BadRequest, match="unknown limit 'MaxCPUs'"):
        operator.set_limits(acct, {"MaxCPUs": 3})
    with pytest.raises(NotFound, match="unknown user 'mallory' in account"):
        operator.set_limits(acct, {"MaxJobs": 3}, user="mallory")
    assert _sacctmgr(cluster, "assoc", f"account={acct}", "user=", "format=grptres,maxjobs,qos") == before

    # a parent with a child account: Slurm would drop the child's association; refused
    operator.create_account(child, parent=acct)
    with pytest.raises(BadRequest, match=f"has child accounts {child}"):
        operator.delete_account(acct)
    assert sorted(r[0] for r in _sacctmgr(cluster, "assoc", f"account={acct},{child}", "user=", "format=account")) == \
        sorted([acct, child])


def test_active_job_blocks_delete(cluster, operator, names):
    acct = names["parent"]
    operator.create_account(acct, parent=cluster["account"])
    operator.add_user(cluster["user"], acct)
    client = SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]))
    body = client.api.submit_body(JobRequest(name="acct-busy", mcs_label="acct_busy", script="#!/bin/bash\nsleep 300\n",
                                             environment={"PATH": "/usr/bin:/bin"}, current_working_directory="/tmp",
                                             standard_output="/dev/null"))
    body["job"].update(hold=True, account=acct)
    _, answer = client.request("POST", client.api.submit_path(), body=body)
    job_id = client.api.submitted_job_id(answer)
    assert job_id, answer
    try:
        with pytest.raises(AccountBusy, match="job\\(s\\) are active"):
            operator.remove_user(cluster["user"], acct)
        with pytest.raises(AccountBusy):
            operator.delete_account(acct)
        assert [cluster["user"]] in _sacctmgr(cluster, "assoc", f"account={acct}", "format=user")
    finally:
        testbed.slurm_exec(cluster["state_dir"], "scancel", str(job_id), check=True)
    assert operator.remove_user(cluster["user"], acct)["result"] == "removed"
    assert operator.delete_account(acct)["result"] == "deleted"


def test_without_admin_level(cluster, admin, names):
    """Without AdminLevel the writes are refused by slurmdbd (error 2002) and nothing exists."""
    level = _sacctmgr(cluster, "user", cluster["user"], "format=adminlevel")
    assert level == [["None"]]
    with pytest.raises(AdminLevelRequired, match=f"needs AdminLevel=Operator .*sacctmgr modify user {cluster['user']}"):
        admin.create_account(names["parent"], parent=cluster["account"])
    assert _sacctmgr(cluster, "account", names["parent"], "format=account") == []
    # reads need no admin level
    assert admin.create_account(cluster["account"], parent="root")["result"] == "exists"


def test_slurm_2205_refused_before_sending(slurm_cluster_of):
    cluster = slurm_cluster_of("bookworm")
    admin = AccountAdmin(SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"])))
    with pytest.raises(UnsupportedOperation, match="23.11") as err:
        admin.create_account("p22", parent=cluster["account"])
    assert err.value.request_sent is False
    assert _sacctmgr(cluster, "account", "p22", "format=account") == []


def test_slurmdbd_down(cluster, operator, names):
    """slurmdbd stopped while slurmctld runs: a clear AccountingUnavailable, nothing created;
    slurmctld still answers; slurmdbd started again, the same call works."""
    state_dir = cluster["state_dir"]
    testbed.slurmdbd(state_dir, "stop")
    try:
        with pytest.raises(AccountingUnavailable, match="slurmdbd did not answer"):
            operator.create_account(names["parent"], parent=cluster["account"])
        client = SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]))
        assert client.request("GET", client.endpoint("ping")[1])[0] == 200
    finally:
        testbed.slurmdbd(state_dir, "start")
    assert operator.create_account(names["parent"], parent=cluster["account"])["result"] == "created"
