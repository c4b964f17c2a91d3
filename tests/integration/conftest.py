"""Fixtures for integration tests of the pack on the real testbed."""

import time
import uuid

import pytest

from slurmdeploy.configdb import ConfigDB
from slurmdeploy.deployer import Deployer


@pytest.fixture
def deployer_cluster(request, slurm_cluster_of):
    """The Slurm cluster the test's pack config points at: ``slurm_cluster`` (24.11), or
    the flavour a test picks with ``@pytest.mark.parametrize("deployer_cluster",
    ["trixie", "bookworm"], indirect=True)``."""
    if not hasattr(request, "param"):
        return request.getfixturevalue("slurm_cluster")
    return slurm_cluster_of(request.param)


@pytest.fixture
def pack_config(etcd_server, deployer_cluster, configdb_prefix, tmp_path):
    """A pack config (as StackStorm passes it) for the testbed, isolated per test:
    its own Configuration DB prefix and its own namespace, hence its own mcs_label."""
    return make_pack_config(etcd_server, configdb_prefix, tmp_path, slurm_url=deployer_cluster["url"],
                            client_id=deployer_cluster["user"], slurm_jwt=str(deployer_cluster["jwt"]))


def make_pack_config(etcd_server, configdb_prefix, tmp_path, **auth):
    """The pack config of :func:`pack_config` with ``auth`` (``slurm_url`` and the credential
    settings) filled in by the caller."""
    return {
        **auth,
        "config_host": etcd_server["host"],
        "config_port": etcd_server["port"],
        "config_prefix": configdb_prefix,
        "namespace": f"t{uuid.uuid4().hex[:8]}",
        "loop_interval": 1,
        "claim_ttl": 15,
        "connect_timeout": 2,
        "read_timeout": 10,
        "liveness_file": str(tmp_path / "alive"),
        "job_working_directory": "/tmp",
    }


@pytest.fixture
def deployer(pack_config):
    return Deployer.from_config(pack_config, environ={"PATH": "/usr/bin:/bin", "SDP_SLURM_ENV_SITE_NAME": "lab"})


def wait_for(predicate, timeout=90, interval=0.3, what="condition"):
    """Call ``predicate`` until it returns something true (returned); AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_actions(deployer, events):
    """Run the action each event's rule routes it to (as the pack's rules do); returns ``events``."""
    for event in events:
        p = event.payload
        if event.trigger == "deployment_new":
            deployer.submit(p["key"])
        elif event.trigger == "deployment_removed":
            deployer.cancel(p["key"], p["job_id"])
        else:
            deployer.update_state(p["key"], p["job_id"])
    return events


def settle(deployer, keys, timeout=90, on_status=None):
    """Run the sensor's observation and the rules' actions (as the rules route them) until
    every deployment in ``keys`` has a terminal state. Returns {key: [statuses seen]}."""
    seen = {k: [] for k in keys}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_actions(deployer, deployer.observe())
        done = True
        for key in keys:
            state, _ = deployer.configdb.get_state(key)
            if not seen[key] or seen[key][-1] != state.status:
                seen[key].append(state.status)
                if on_status:
                    on_status(key, state)
            done = done and state.terminal
        if done:
            return seen
        time.sleep(0.3)
    raise AssertionError(f"deployments did not settle in {timeout}s: {seen}")


@pytest.fixture
def configdb(pack_config):
    from slurmdeploy.settings import Settings

    return ConfigDB.from_settings(Settings.from_config(pack_config, {}))
