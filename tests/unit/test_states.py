"""The Slurm -> SDP status table and the SKA deployment-state format."""

import pytest

from slurmdeploy import states
from slurmdeploy.states import DeploymentState


@pytest.mark.parametrize(
    "job_state, status",
    [
        ("PENDING", "PENDING"), ("RUNNING", "RUNNING"), ("SUSPENDED", "PENDING"),
        ("COMPLETED", "FINISHED"), ("CANCELLED", "CANCELLED"), ("FAILED", "FAILED"),
        ("TIMEOUT", "FAILED"), ("NODE_FAIL", "FAILED"), ("PREEMPTED", "FAILED"),
        ("BOOT_FAIL", "FAILED"), ("DEADLINE", "FAILED"), ("OUT_OF_MEMORY", "FAILED"),
    ],
)
def test_every_slurm_base_state_maps_to_the_documented_sdp_status(job_state, status):
    assert states.sdp_status(job_state) == status


def test_unknown_slurm_state_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'REVOKED'"):
        states.sdp_status("REVOKED")


@pytest.mark.parametrize("flag", sorted(states.SLURM_FLAG_TO_SDP))
def test_a_flag_shown_instead_of_the_base_state_maps_to_a_provisional_status(flag):
    # v0.0.38 shows e.g. COMPLETING instead of the base state: never a terminal status,
    # so nothing irreversible is written before the base state is visible
    assert states.sdp_status(flag) in {states.PENDING, states.RUNNING}


def test_finished_slurm_states_are_exactly_those_that_never_change():
    assert states.SLURM_FINISHED_STATES == set(states.SLURM_TO_SDP) - {"PENDING", "RUNNING", "SUSPENDED"}


def test_state_dict_has_the_ska_deployer_shape():
    state = DeploymentState("dep-1", 42, "RUNNING", "None", "running on node1")
    assert state.to_dict() == {
        "num_job": 1,
        "jobs": {"dep-1": {"slurm_job_id": 42, "status": "RUNNING", "state_reason": "None",
                           "state_description": "running on node1"}},
    }


def test_failed_state_carries_error_state():
    state = DeploymentState("dep-1", 7, "FAILED", "NonZeroExitCode", None, error_state="exit code 3")
    data = state.to_dict()
    assert data["error_state"] == "exit code 3"
    assert data["jobs"]["dep-1"]["status"] == "FAILED"


def test_failed_state_without_explicit_error_state_explains_itself():
    data = DeploymentState("dep-1", 7, "FAILED", "NonZeroExitCode").to_dict()
    assert "7" in data["error_state"] and "NonZeroExitCode" in data["error_state"]


def test_rejected_deployment_has_no_job():
    data = DeploymentState("bad", None, "FAILED", "InvalidDeployment", "args.script is required").to_dict()
    assert data["num_job"] == 0
    assert data["jobs"]["bad"]["slurm_job_id"] is None
    assert data["error_state"] == "args.script is required"


def test_round_trip_keeps_everything():
    state = DeploymentState("k", 3, "FAILED", "JobVanished", "gone", "gone for good")
    assert DeploymentState.from_dict("k", state.to_dict()) == state


@pytest.mark.parametrize("data", [None, [], "x", {"jobs": {}}, {"jobs": {"k": "x"}}])
def test_missing_or_malformed_state_is_unset(data):
    state = DeploymentState.from_dict("k", data)
    assert state.status == states.UNSET and state.job_id is None and not state.terminal


@pytest.mark.parametrize("status, terminal", [("FINISHED", True), ("CANCELLED", True), ("FAILED", True),
                                              ("PENDING", False), ("RUNNING", False), ("UNSET", False)])
def test_terminal_statuses(status, terminal):
    assert DeploymentState("k", 1, status).terminal is terminal
