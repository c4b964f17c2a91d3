"""The job_accounted decision row by row, and the sensor's hook (AccountedJobs) over accounting
answers recorded from real Slurm (tests/fixtures/slurm/<version>/accounting_*.json)."""

import json

import pytest
import requests

from slurm_replay import TOKEN, Replay, recorded
from slurmdeploy.accounted import (DROP, EMIT, TRIGGER, WAIT, AccountedJobs, accounted_decision, accounted_payload,
                                   record_complete, terminal_job)
from slurmdeploy.auth import StaticJWT
from slurmdeploy.decisions import Event
from slurmdeploy.slurm import SlurmClient
from slurmdeploy.slurm.accounting import Accounting, parse_job
from test_accounting import VERSIONS, sacct_meta

KEY = "proc-pb-test-20250101-00000-test"


def record(version, name):
    return parse_job(recorded(version, name)["body"]["jobs"][0], version)


def changed(job_id, status="FINISHED", job_state="COMPLETED", reason=None, key=KEY):
    return Event("job_state_changed", {"key": key, "job_id": job_id, "job_state": job_state,
                                       "previous_status": "RUNNING", "status": status, "state_reason": reason,
                                       "state_description": None}, f"{key}@7")


@pytest.mark.parametrize("version", VERSIONS)
def test_decision_rows(version):
    done, failed, running = (record(version, n) for n in ("accounting_job_steps", "accounting_job_failed",
                                                           "accounting_job_running"))
    assert record_complete(done) and record_complete(failed) and not record_complete(running)
    # no record yet: wait, then give up (dropped, logged) after max_wait
    assert accounted_decision(KEY, 1, None, 100, 150, "slurmtest", 600) == (WAIT, None)
    assert accounted_decision(KEY, 1, None, 100, 700, "slurmtest", 600)[0] == DROP
    # the record still says RUNNING (slurmdbd lags): wait; reported incomplete after max_wait
    assert accounted_decision(KEY, 3, running, 100, 150, "slurmtest", 600) == (WAIT, None)
    verdict, payload = accounted_decision(KEY, 3, running, 100, 700, "slurmtest", 600)
    assert verdict == EMIT and payload["complete"] is False
    # complete: emitted at once
    verdict, payload = accounted_decision(KEY, done["job_id"], done, 100, 101, "slurmtest", 600)
    assert verdict == EMIT and payload == accounted_payload(KEY, done, True)
    assert payload["steps"] == len(done["steps"]) and payload["max_rss"] == done["max_rss"] > 0
    # another user's record (or an unknown pack user) is never reported
    assert accounted_decision(KEY, 1, done, 100, 101, "mallory", 600)[0] == DROP
    assert accounted_decision(KEY, 1, done, 100, 101, None, 600)[0] == DROP


def test_only_terminal_job_state_changed_events_are_noted():
    assert terminal_job(changed(5)) == (KEY, 5, f"{KEY}@7")
    assert terminal_job(changed(5, status="FAILED", job_state="FAILED", reason="NonZeroExitCode")) is not None
    assert terminal_job(changed(5, status="RUNNING", job_state="RUNNING")) is None
    assert terminal_job(changed(5, status="FAILED", job_state="UNKNOWN", reason="JobVanished")) is None
    assert terminal_job(Event("deployment_removed", {"key": KEY, "job_id": 5, "job_state": "RUNNING"})) is None


def hook(version, names, clock, store):
    replay = Replay([recorded(version, n) for n in names])
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version=version,
                         session=session)
    accounting = Accounting(client, clock=clock)
    return AccountedJobs(accounting, "slurmtest", load=lambda: store.get("v"), save=lambda v: store.update(v=v),
                         clock=clock, check_interval=10, max_wait=600), replay


@pytest.mark.parametrize("version", VERSIONS)
def test_hook_reports_each_job_once_and_survives_a_restart(version):
    ids = sacct_meta(version)["job_ids"]
    now = [1000.0]
    store = {}
    accounted, replay = hook(version, ["accounting_job_steps"], lambda: now[0], store)
    accounted.note([changed(ids[0])])
    assert json.loads(store["v"])["pending"][str(ids[0])]["key"] == KEY
    # a restarted sensor loads what was pending
    accounted, replay = hook(version, ["accounting_job_steps"], lambda: now[0], store)
    assert list(accounted.pending) == [ids[0]]
    events = accounted.check(force=True)
    assert [(e.trigger, e.payload["job_id"], e.payload["complete"], e.trace_tag) for e in events] == [
        (TRIGGER, ids[0], True, f"{KEY}@7")]
    # a late duplicate job_state_changed does not report it again
    accounted.note([changed(ids[0])])
    now[0] += 11
    assert accounted.check() == [] and accounted.pending == {}
    assert ids[0] in json.loads(store["v"])["reported"]


@pytest.mark.parametrize("version", VERSIONS)
def test_hook_waits_while_slurmdbd_is_down_and_checks_at_its_pace(version):
    ids = sacct_meta(version)["job_ids"]
    now = [1000.0]
    store = {}
    accounted, replay = hook(version, ["accounting_jobs_dbd_down"], lambda: now[0], store)
    # the job endpoint answers like the listing when slurmdbd is down (error 7000)
    down = recorded(version, "accounting_jobs_dbd_down")
    down["request"]["path"] = f"/slurmdb/{version}/job/{ids[1]}"
    accounted, replay = hook(version, [], lambda: now[0], store)
    replay.queue[("GET", down["request"]["path"])] = [down]
    accounted.note([changed(ids[1], status="FAILED", job_state="FAILED", reason="NonZeroExitCode")])
    assert accounted.check(force=True) == []
    assert list(accounted.pending) == [ids[1]]
    sent = len(replay.sent)
    now[0] += 5
    assert accounted.check() == [] and len(replay.sent) == sent  # not before check_interval
