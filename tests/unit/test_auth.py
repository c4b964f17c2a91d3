"""Token sources: static JWT headers, claim decoding, the missing-credentials error."""

import base64
import json

import pytest

from slurmdeploy.auth import StaticJWT, jwt_claims, token_source_from_settings
from slurmdeploy.errors import MissingAuthEnvVar
from slurmdeploy.settings import Settings


def make_jwt(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def test_claims_are_decoded_without_verification():
    assert jwt_claims(make_jwt({"sun": "alice", "exp": 10}))["sun"] == "alice"
    assert jwt_claims("not-a-jwt") == {}


def test_static_jwt_sends_both_slurm_headers_and_takes_the_user_from_sun():
    token = make_jwt({"sun": "alice", "exp": 4102444800})
    headers = StaticJWT(token).headers()
    assert headers == {"X-SLURM-USER-NAME": "alice", "X-SLURM-USER-TOKEN": token}


def test_explicit_user_name_wins():
    assert StaticJWT(make_jwt({"sun": "alice"}), "bob").headers()["X-SLURM-USER-NAME"] == "bob"


def test_static_jwt_cannot_be_renewed_and_reports_expiry():
    source = StaticJWT(make_jwt({"sun": "a", "exp": 1}))
    assert source.invalidate() is False
    assert source.expiring() is True


def test_repr_never_shows_the_token():
    token = make_jwt({"sun": "alice"})
    assert token not in repr(StaticJWT(token))


def test_static_jwt_is_chosen_first():
    s = Settings.from_config({"slurm_jwt": make_jwt({"sun": "a"}), "azure_url": "https://x/t",
                              "client_id": "c", "client_secret": "s"}, {})
    assert isinstance(token_source_from_settings(s), StaticJWT)


def test_no_credentials_names_every_setting_to_provide():
    with pytest.raises(MissingAuthEnvVar) as err:
        token_source_from_settings(Settings.from_config({}, {}))
    text = str(err.value)
    for name in ("SDP_SLURMDEPLOY_SLURM_JWT", "SDP_SLURMDEPLOY_AZURE_URL", "SDP_SLURMDEPLOY_CLIENT_ID",
                 "SDP_SLURMDEPLOY_CLIENT_SECRET"):
        assert name in text


def test_msal_sources_are_shared_per_process_and_settings_and_hide_the_secret():
    from slurmdeploy.auth import MsalClientCredentials

    config = {"azure_url": "https://idp.invalid/tenant", "client_id": "app", "client_secret": "s3cret-value"}
    first = token_source_from_settings(Settings.from_config(config, {}))
    assert isinstance(first, MsalClientCredentials)
    assert token_source_from_settings(Settings.from_config(dict(config), {})) is first
    other = token_source_from_settings(Settings.from_config({**config, "client_secret": "another"}, {}))
    assert other is not first
    assert "s3cret-value" not in repr(first)
    assert first.expiry_margin == 30.0 and first.user_name == "app"  # before any token: the client id
