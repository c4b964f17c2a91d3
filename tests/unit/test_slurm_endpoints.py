"""The one endpoint table (lib/slurmdeploy/slurm/endpoints.py): every Slurm REST path comes from
it, and nothing else in the library spells one."""

import io
import re
import tokenize
from pathlib import Path

import pytest

from slurmdeploy.errors import UnsupportedOperation
from slurmdeploy.slurm import endpoints
from slurmdeploy.slurm.endpoints import ENDPOINTS, SLURM_RELEASE, Endpoint, path_pattern, resolve
from slurmdeploy.slurm.versions import ADAPTERS

LIB = Path(__file__).resolve().parents[2] / "lib" / "slurmdeploy"
#: a string literal (not a docstring sentence) that starts with a Slurm REST path
PATH_LITERAL = re.compile(r"""^[rRbBuUfF]*(['"]|'''|\"\"\")/slurm(db)?/""")


def test_the_release_table_lists_exactly_the_versions_spoken():
    assert list(SLURM_RELEASE) == list(ADAPTERS)


def test_no_module_but_the_table_spells_a_slurm_rest_path():
    offenders = []
    for path in sorted(LIB.rglob("*.py")):
        if path == LIB / "slurm" / "endpoints.py":
            continue
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if tok.type == tokenize.STRING and PATH_LITERAL.match(tok.string):
                offenders.append(f"{path.relative_to(LIB)}:{tok.start[0]}: {tok.string}")
    assert offenders == []


def test_the_path_check_sees_a_spelled_path():
    # the check above would fail on what client.py spelled before the table existed
    assert PATH_LITERAL.match('f"{self.prefix}"') is None
    assert PATH_LITERAL.match('"/slurm/v0.0.42/jobs"') and PATH_LITERAL.match("f'/slurmdb/{v}/jobs'")


def test_resolve_fills_version_and_quotes_parameters():
    assert resolve("job_get", "v0.0.42", job_id=7) == ("GET", "/slurm/v0.0.42/job/7")
    assert resolve("node_update", "v0.0.40", node_name="n[1-2]") == ("POST", "/slurm/v0.0.40/node/n%5B1-2%5D")
    assert resolve("reservation_get", "v0.0.43", reservation_name="a/b")[1] == "/slurm/v0.0.43/reservation/a%2Fb"
    assert resolve("reservation_delete", "v0.0.45") == ("DELETE", "/slurm/v0.0.45/reservation/{reservation_name}")
    assert path_pattern("node_update", "v0.0.38") == "/slurm/v0.0.38/node/{node_name}"
    assert ADAPTERS["v0.0.40"].path("job_state_list") == "/slurm/v0.0.40/jobs/state/"
    assert ADAPTERS["v0.0.38"].jobs_state_path() is None


@pytest.mark.parametrize("operation, version, needs", [
    ("job_state_list", "v0.0.39", r"needs Slurm >= 23\.11 \(REST v0\.0\.40\)"),
    ("slurm_conf", "v0.0.44", r"needs Slurm >= 26\.05 \(REST v0\.0\.45\)"),
])
def test_an_operation_the_version_lacks_is_refused_before_sending(operation, version, needs):
    with pytest.raises(UnsupportedOperation, match=needs) as err:
        resolve(operation, version)
    assert err.value.operation == operation and err.value.api_version == version


def test_a_slurmdbd_entry_is_one_line(monkeypatch):
    monkeypatch.setitem(ENDPOINTS, "db_job_get", Endpoint("GET", "/slurmdb/{version}/job/{job_id}", "v0.0.39"))
    assert ENDPOINTS["db_job_get"].plugin == "slurmdb"
    assert resolve("db_job_get", "v0.0.41", job_id="12") == ("GET", "/slurmdb/v0.0.41/job/12")
    assert ADAPTERS["v0.0.45"].supports("db_job_get") and not ADAPTERS["v0.0.38"].supports("db_job_get")
    with pytest.raises(UnsupportedOperation, match=r"db_job_get \(GET /job/\{job_id\}\) is not supported by Slurm "
                                                   r"REST v0\.0\.38, needs Slurm >= 23\.02"):
        resolve("db_job_get", "v0.0.38", job_id=1)


def test_an_endpoint_removed_in_a_later_version():
    ended = Endpoint("GET", "/slurm/{version}/x", "v0.0.38", last="v0.0.40")
    assert [v for v in ADAPTERS if ended.served_by(v)] == ["v0.0.38", "v0.0.39", "v0.0.40"]
    assert endpoints.template("job_get") == "/job/{job_id}"
