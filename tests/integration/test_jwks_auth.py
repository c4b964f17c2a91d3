"""JWKS auth end to end: the pack gets JWTs with MSAL's client-credentials flow from a real local
OIDC identity provider (testbed/idp.sh, npm oidc-provider) and a real slurmctld (Slurm 24.11 and 26.05)
checks them against that provider's JWKS (``AuthAltParameters=...,jwks=``).

Token counts come from the provider itself (``/__stats``: ``tokens_issued``, ``token_errors``);
the deltas are exact because the tests of this module run one after another.
"""

import json
import time
from pathlib import Path

import pytest

import testbed
from integration.conftest import make_pack_config
from integration.test_pack_runner import wait_for
from slurmdeploy.auth import MsalClientCredentials, jwt_claims, token_source_from_settings
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.errors import SlurmAuthError
from slurmdeploy.settings import Settings
from slurmdeploy.slurm.client import SlurmClient
from slurmdeploy.slurm.versions import ADAPTERS

# packrunner is its own package (scripts/setup.sh installs it); st2-run-pack-tests does not
Runner = pytest.importorskip("packrunner.runner", reason="needs packrunner (pip install -e ./packrunner)").Runner
REPO = Path(__file__).resolve().parents[2]
SHORT_MARGIN = 2  # token_expiry_margin paired with the short-TTL IdP (6 s): a token serves ~3-4 s


def msal_config(idp, cluster, etcd_server, configdb_prefix, tmp_path, **overrides):
    """A pack config in JWKS mode: azure_url/client_id/client_secret/token_scope, no slurm_jwt;
    the IdP's CA only through the pack's ``ca_bundle`` setting."""
    config = make_pack_config(
        etcd_server, configdb_prefix, tmp_path, slurm_url=cluster["url"], azure_url=idp["authority"],
        client_id=idp["client_id"], client_secret=str(idp["client_secret"]), token_scope=idp["scope"],
        ca_bundle=idp["ca_file"],
    )
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def newest_supported(cluster):
    """The newest REST version both the cluster serves and this library speaks (26.05 serves
    v0.0.42-v0.0.45; the library may stop at v0.0.42)."""
    return max((v for v in cluster["api_versions"] if v in ADAPTERS), key=lambda v: tuple(map(int, v[1:].split("."))))


def issued(idp):
    stats = testbed.idp_stats(idp)
    return stats["tokens_issued"], stats["token_errors"]


@pytest.fixture
def no_auth_env(monkeypatch):
    """The machine's environment must not supply credentials or a CA bundle behind the tests' back."""
    for name in ("SDP_SLURMDEPLOY_SLURM_JWT", "SDP_SLURMDEPLOY_CLIENT_ID", "SDP_SLURMDEPLOY_CLIENT_SECRET",
                 "SDP_SLURMDEPLOY_AZURE_URL", "SDP_SLURMDEPLOY_TOKEN_SCOPE", "SDP_SLURMDEPLOY_CA_BUNDLE",
                 "SDP_SLURMDEPLOY_TOKEN_EXPIRY_MARGIN"):
        monkeypatch.delenv(name, raising=False)


def test_submit_action_with_an_msal_token_runs_the_job_to_finished(
        oidc_provider, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path, no_auth_env, caplog):
    config = msal_config(oidc_provider, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path)
    assert "slurm_jwt" not in config
    settings = Settings.from_config(config, {})
    db = ConfigDB.from_settings(settings)
    db.create_deployment("jwks-1", "slurm", {"script": "#!/bin/bash\nsleep 1\n"})
    before, errors_before = issued(oidc_provider)
    caplog.set_level("DEBUG")
    with Runner(str(REPO), config=config, state_dir=str(tmp_path / "state")) as runner:
        submit = runner.run_action("submit", {"key": "jwks-1"})
        assert submit["status"] == "succeeded", submit
        assert submit["result"]["outcome"] == "submitted", submit["result"]
        job_id = submit["result"]["job_id"]
        wait_for(lambda: runner.run_action("update_state", {"key": "jwks-1", "job_id": job_id})["status"] == "succeeded"
                 and db.get_state("jwks-1")[0].status == "FINISHED", timeout=60, what="jwks-1 FINISHED")
        executions = runner.datastore.list_executions(limit=100)
    after, errors_after = issued(oidc_provider)
    assert len(executions) >= 2 and all(e["status"] == "succeeded" for e in executions), executions
    # the token came from the IdP, and one MSAL application served every action of the process
    source = token_source_from_settings(settings)
    assert isinstance(source, MsalClientCredentials) and source.tokens_fetched >= 1
    assert after - before <= 1 and errors_after == errors_before
    # slurmctld ran the job as the token's `sun` user, the one X-SLURM-USER-NAME named
    assert source.user_name == oidc_provider["slurm_user"] != oidc_provider["client_id"]
    shown = testbed.slurm_exec(slurm_cluster_jwks["state_dir"], "scontrol", "show", "job", str(job_id), check=True)
    assert f"UserId={oidc_provider['slurm_user']}(" in shown.stdout
    secret = str(oidc_provider["client_secret"])
    text = json.dumps(executions, default=str) + caplog.text + repr(settings) + repr(source)
    assert secret not in text
    assert source.headers()["X-SLURM-USER-TOKEN"] not in text


def test_wrong_client_secret_fails_the_action_with_an_auth_error_without_the_secret(
        oidc_provider, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path, no_auth_env, caplog):
    wrong = "wrong-" + str(oidc_provider["client_secret"])[::-1]
    config = msal_config(oidc_provider, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path,
                         client_secret=wrong)
    db = ConfigDB.from_settings(Settings.from_config(config, {}))
    db.create_deployment("jwks-wrong", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    _, errors_before = issued(oidc_provider)
    with Runner(str(REPO), config=config, state_dir=str(tmp_path / "state")) as runner:
        record = runner.run_action("submit", {"key": "jwks-wrong"})
    assert record["status"] == "failed"  # with the pack's one failure result (README "Errors")
    failure = record["result"]
    assert failure["error_type"] == "SlurmAuthError" and failure["request_sent"] is False, failure
    assert failure["error"].startswith("MSAL could not obtain a token"), failure["error"]
    assert "invalid_client" in failure["error"] and oidc_provider["client_id"] in failure["error"]
    assert issued(oidc_provider)[1] > errors_before  # the IdP refused the client
    assert wrong not in json.dumps(record, default=str) + caplog.text
    assert db.get_state("jwks-wrong")[0].job_id is None


def test_settings_without_jwt_or_msal_fail_with_missing_auth_env_var(
        slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path, no_auth_env):
    config = make_pack_config(etcd_server, configdb_prefix, tmp_path, slurm_url=slurm_cluster_jwks["url"],
                                 azure_url="https://127.0.0.1:1/tenant", client_id="some-app")
    with Runner(str(REPO), config=config, state_dir=str(tmp_path / "state")) as runner:
        record = runner.run_action("submit", {"key": "jwks-none"})
    assert record["status"] == "failed"
    failure = record["result"]
    assert failure["error_type"] == "MissingAuthEnvVar", failure
    assert failure["error"].startswith("no Slurm REST credentials configured"), failure["error"]
    for name in ("SDP_SLURMDEPLOY_SLURM_JWT", "SDP_SLURMDEPLOY_AZURE_URL", "SDP_SLURMDEPLOY_CLIENT_SECRET"):
        assert name in failure["error"]
    assert "missing: slurm_jwt, or client_secret" in failure["error"]


def test_the_idp_ca_is_trusted_only_through_the_ca_bundle_setting(
        oidc_provider, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path, no_auth_env, monkeypatch):
    # REQUESTS_CA_BUNDLE naming the IdP's CA must not matter: the pack ignores it (trust_env=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", oidc_provider["ca_file"])
    config = msal_config(oidc_provider, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path,
                         ca_bundle=None)
    source = token_source_from_settings(Settings.from_config(config, {}))
    with pytest.raises(SlurmAuthError) as err:
        source.headers()
    assert f"MSAL could not reach the authority {oidc_provider['authority']}" in str(err.value)
    assert "SSLError" in str(err.value)
    trusted = token_source_from_settings(Settings.from_config({**config, "ca_bundle": oidc_provider["ca_file"]}, {}))
    assert jwt_claims(trusted.headers()["X-SLURM-USER-TOKEN"])["iss"] == oidc_provider["issuer"]


def test_a_token_slurm_never_accepts_is_retried_exactly_once(oidc_provider, slurm_cluster_jwks):
    """Entra-like tokens (no `sun`): the user name falls back to the client id; a cluster
    without userclaimfield rejects them, and the client asks for exactly one fresh token."""
    client = oidc_provider["no_sun_client"]
    source = MsalClientCredentials(oidc_provider["authority"], client["client_id"], str(client["client_secret"]),
                                   oidc_provider["scope"], oidc_provider["ca_file"])
    headers = source.headers()
    assert "sun" not in jwt_claims(headers["X-SLURM-USER-TOKEN"])
    assert headers["X-SLURM-USER-NAME"] == client["client_id"]
    before, _ = issued(oidc_provider)
    slurm = SlurmClient(slurm_cluster_jwks["url"], source, api_version=newest_supported(slurm_cluster_jwks))
    with pytest.raises(SlurmAuthError) as err:
        slurm.diag()
    assert err.value.status == 511 and 1007 in err.value.error_numbers
    assert issued(oidc_provider)[0] - before == 1  # the retry's fresh token, and no third one
    assert source.tokens_fetched == 2 and source.invalidations == 1
    assert str(client["client_secret"]) not in str(err.value) and "eyJ" not in str(err.value)


def test_tokens_are_renewed_before_expiry_across_a_run_longer_than_two_ttls(
        oidc_provider_short_ttl, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path, no_auth_env):
    """The whole pack (sensor, rules, actions) on tokens living a few seconds (the short-TTL IdP)."""
    idp = oidc_provider_short_ttl
    ttl = idp["ttl"]
    config = msal_config(idp, slurm_cluster_jwks, etcd_server, configdb_prefix, tmp_path,
                         token_expiry_margin=SHORT_MARGIN)
    settings = Settings.from_config(config, {})
    db = ConfigDB.from_settings(settings)
    seconds = 2 * ttl + 2
    db.create_deployment("jwks-long", "slurm", {"script": f"#!/bin/bash\nsleep {seconds}\n"})
    before, errors_before = issued(idp)
    # the MSAL source is shared per (authority, client, scope) within the process, so the same
    # test on the other flavour already counted its own tokens in it: compare the increase
    source_before = token_source_from_settings(settings).tokens_fetched
    t0 = time.monotonic()
    with Runner(str(REPO), config=config, state_dir=str(tmp_path / "state")) as runner:
        runner.start()
        wait_for(lambda: db.get_state("jwks-long")[0].status == "FINISHED", timeout=seconds + 60, what="jwks-long FINISHED")
        runner.wait_idle(30)
        executions = runner.datastore.list_executions(limit=200)
        triggers = runner.datastore.list_trigger_instances(limit=200)
    elapsed = time.monotonic() - t0
    after, errors_after = issued(idp)
    assert elapsed > 2 * ttl
    assert {"slurmdeploy.submit", "slurmdeploy.update_state"} <= {e["action"] for e in executions}
    assert all(e["status"] == "succeeded" for e in executions), [(e["action"], e["error"], e["result"]) for e in executions]
    assert triggers and all(t["status"] != "dropped" for t in triggers)
    # renewed: several tokens over the run; reused: at most one per (TTL - margin - 1 s of exp rounding)
    fetched = after - before
    assert fetched >= elapsed // ttl, (fetched, elapsed)
    assert fetched <= elapsed / (ttl - SHORT_MARGIN - 1) + 2, (fetched, elapsed)
    assert errors_after == errors_before
    source = token_source_from_settings(settings)
    assert source.tokens_fetched - source_before == fetched
    # renewed before use: slurmctld never saw an expired token (no rejection, no retry)
    assert source.invalidations == 0


def test_an_expired_token_rejected_by_slurmctld_is_replaced_once_and_the_request_succeeds(
        oidc_provider_short_ttl, slurm_cluster_jwks):
    """The reactive path: a client that keeps using its token past ``exp`` (negative margin, as a
    client whose clock lags slurmctld's would) gets HTTP 511 and retries once with a fresh token."""
    idp = oidc_provider_short_ttl
    source = MsalClientCredentials(idp["authority"], idp["client_id"], str(idp["client_secret"]), idp["scope"],
                                   idp["ca_file"], expiry_margin=-3600)
    slurm = SlurmClient(slurm_cluster_jwks["url"], source, api_version=newest_supported(slurm_cluster_jwks))
    before, _ = issued(idp)
    assert "statistics" in slurm.diag()
    first = source.headers()["X-SLURM-USER-TOKEN"]
    time.sleep(max(0.0, source.expires_at - time.time()) + 1.5)
    assert source.expiring(0) and source.headers()["X-SLURM-USER-TOKEN"] == first  # still the expired one
    assert "statistics" in slurm.diag()
    assert source.headers()["X-SLURM-USER-TOKEN"] != first
    assert source.tokens_fetched == 2 and issued(idp)[0] - before == 2
    assert source.invalidations == 1
    assert not source.expiring(0)
