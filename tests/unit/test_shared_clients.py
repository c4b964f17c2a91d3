"""Deployer.from_config(share_clients=True): the actions' HTTP clients are shared per
process and settings (no request is sent: building clients does not touch the network)."""

import base64
import json

from slurmdeploy import deployer as deployer_module
from slurmdeploy.deployer import Deployer


def make_jwt(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def config(**extra):
    return dict({"slurm_url": "http://127.0.0.1:1", "slurm_jwt": make_jwt({"sun": "alice"}),
                 "config_host": "127.0.0.1", "config_port": 1}, **extra)


def test_same_settings_share_clients_and_a_new_secret_gets_new_ones():
    first = Deployer.from_config(config(), environ={})
    second = Deployer.from_config(config(), environ={}, share_clients=True)
    third = Deployer.from_config(config(), environ={}, share_clients=True)
    assert first.configdb is not second.configdb and first.slurm is not second.slurm  # sensor's: own clients
    assert third.configdb is second.configdb and third.slurm is second.slurm
    assert third is not second  # the deployer itself (log-once state) is per execution
    rotated = Deployer.from_config(config(slurm_jwt=make_jwt({"sun": "bob"})), environ={}, share_clients=True)
    assert rotated.slurm is not second.slurm and rotated.configdb is not second.configdb
    assert rotated.slurm.token_source.headers()["X-SLURM-USER-NAME"] == "bob"
    other_etcd = Deployer.from_config(config(config_port=2), environ={}, share_clients=True)
    assert other_etcd.configdb.endpoint.endswith(":2") and other_etcd.configdb is not second.configdb


def test_only_the_last_settings_are_kept():
    kept = deployer_module.SHARED_CLIENTS_KEPT
    built = [Deployer.from_config(config(config_port=100 + i), environ={}, share_clients=True)
             for i in range(kept + 2)]
    assert len(deployer_module._SHARED_CLIENTS) == kept
    again = Deployer.from_config(config(config_port=100), environ={}, share_clients=True)
    assert again.configdb is not built[0].configdb  # dropped, rebuilt
    newest = Deployer.from_config(config(config_port=100 + kept + 1), environ={}, share_clients=True)
    assert newest.configdb is built[-1].configdb
