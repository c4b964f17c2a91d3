"""Settings: pack config wins, then the SKA environment variables, then defaults."""

import pytest

from slurmdeploy.errors import ConfigurationError
from slurmdeploy.settings import Settings


def test_defaults_are_the_original_deployers():
    s = Settings.from_config({}, {})
    assert (s.release_name, s.namespace, s.loop_interval, s.liveness_file) == ("slurm-deployer", "sdp", 60, "/tmp/alive")
    assert (s.config_host, s.config_port, s.config_backend) == ("127.0.0.1", 2379, "etcd3")
    assert s.mcs_label == "sdp_slurm_deployer_slurm-deployer_sdp"


def test_environment_is_the_fallback():
    env = {"SDP_SLURMDEPLOY_SLURM_URL": "http://h:6820", "SDP_SLURMDEPLOY_LOOP_INTERVAL": "5",
           "SDP_SLURMDEPLOY_RELEASE_NAME": "r1", "SDP_SLURMDEPLOY_NAMESPACE": "ns", "SDP_CONFIG_PORT": "12379"}
    s = Settings.from_config({}, env)
    assert s.slurm_url == "http://h:6820" and s.loop_interval == 5 and s.config_port == 12379
    assert s.mcs_label == "sdp_slurm_deployer_r1_ns"


def test_explicit_config_value_wins_over_the_environment():
    s = Settings.from_config({"loop_interval": 7, "namespace": ""}, {"SDP_SLURMDEPLOY_LOOP_INTERVAL": "5",
                                                                    "SDP_SLURMDEPLOY_NAMESPACE": "envns"})
    assert s.loop_interval == 7
    assert s.namespace == "envns"  # an empty config value counts as unset


def test_sdp_slurm_env_variables_are_collected_without_prefix():
    s = Settings.from_config({}, {"SDP_SLURM_ENV_FOO": "1", "SDP_SLURM_ENV_": "x", "OTHER": "2"})
    assert s.env_job_environment == {"FOO": "1"}


def test_bad_number_names_setting_and_variable():
    with pytest.raises(ConfigurationError, match=r"loop_interval.*SDP_SLURMDEPLOY_LOOP_INTERVAL.*'often'"):
        Settings.from_config({}, {"SDP_SLURMDEPLOY_LOOP_INTERVAL": "often"})


def test_unsupported_api_version_lists_the_supported_ones():
    with pytest.raises(ConfigurationError, match="v0.0.40"):
        Settings.from_config({"slurm_api_version": "v0.0.30"}, {})


def test_secrets_are_masked_in_repr_and_public_dict():
    s = Settings.from_config({"slurm_jwt": "tok-SECRET", "client_secret": "cs-SECRET",
                              "config_password": "pw-SECRET"}, {})
    text = repr(s) + repr(s.public_dict())
    assert "SECRET" not in text
    assert s.public_dict()["slurm_jwt"] == "********"


def test_missing_slurm_url_says_how_to_set_it():
    with pytest.raises(ConfigurationError, match="SDP_SLURMDEPLOY_SLURM_URL"):
        Settings.from_config({}, {}).require_slurm_url()


def test_claim_must_outlive_a_submit_request():
    with pytest.raises(ConfigurationError, match=r"claim_ttl \(10 s\) must be longer than connect_timeout \+ read_timeout \(25 s\)"):
        Settings.from_config({"claim_ttl": 10}, {})


def test_token_expiry_margin_defaults_to_30_s_comes_from_the_environment_and_is_not_negative():
    assert Settings.from_config({}, {}).token_expiry_margin == 30.0
    assert Settings.from_config({}, {"SDP_SLURMDEPLOY_TOKEN_EXPIRY_MARGIN": "2.5"}).token_expiry_margin == 2.5
    with pytest.raises(ConfigurationError, match=r"token_expiry_margin \(env SDP_SLURMDEPLOY_TOKEN_EXPIRY_MARGIN\)"):
        Settings.from_config({"token_expiry_margin": -1}, {})
