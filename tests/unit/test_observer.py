"""When the sensor dispatches an event again (issue 15, item 5), row by row with a fake clock.

An event that an observation still has after its dispatch means the action failed, was lost
or is slow: it is dispatched again after 2 s, then after twice the previous wait, up to the
quiet period; the backoff is per event identity and starts afresh once the event has not been
observed for a quiet period. Before issue 15 the only wait was the quiet period (120 s with
the default loop_interval of 60 s), so a submit that failed while etcd was frozen waited
that long.
"""

import pytest

from slurmdeploy.deployer import Event, Observer

QUIET = 30.0
NEW = Event("deployment_new", {"key": "a", "kind": "slurm", "args": {}})
OTHER = Event("deployment_new", {"key": "b", "kind": "slurm", "args": {}})
CHANGED = Event("job_state_changed", {"key": "a", "job_id": 7, "status": "RUNNING"})


class Observations:
    """Stands in for the Deployer: observe() returns the events of the current row."""

    def __init__(self):
        self.events, self.observed_keys = [], None

    def observe(self, incremental=False):
        return list(self.events)


def run(rows, quiet=QUIET):
    """Feed ``(time, events observed[, observed keys])`` rows; returns the keys-and-triggers
    dispatched per row and the observer."""
    now = [0.0]
    deployer = Observations()
    observer = Observer(deployer, quiet, clock=lambda: now[0])
    out = []
    for row in rows:
        now[0], deployer.events = row[0], row[1]
        deployer.observed_keys = row[2] if len(row) > 2 else None
        out.append([(e.trigger, e.payload["key"]) for e in observer.poll()])
    return out, observer


N = [("deployment_new", "a")]

TABLE = {
    # a failed action: retried after 2, 4, 8, 16 s, then every quiet period (30 s)
    "backoff up to the quiet period": (
        [(0, [NEW]), (1, [NEW]), (2, [NEW]), (5.9, [NEW]), (6, [NEW]), (14, [NEW]), (29.9, [NEW]), (30, [NEW]),
         (59.9, [NEW]), (60, [NEW]), (90, [NEW])],
        [N, [], N, [], N, N, [], N, [], N, N]),
    # the original defect: a retry held back for the whole quiet period (here the first at 2 s)
    "a failed submit is retried within seconds": ([(0, [NEW]), (2.5, [NEW])], [N, N]),
    # an action that worked: the event is gone; back after a quiet period: dispatched at once
    "a new event after the old one was gone a quiet period": (
        [(0, [NEW]), (1, []), (31, []), (32, [NEW])], [N, [], [], N]),
    # gone only for a moment (a submit holds the claim, then fails): keeps its backoff
    "an event hidden by a claim keeps its backoff": (
        [(0, [NEW]), (2, [NEW]), (3, []), (4, [NEW]), (6, [NEW]), (7, []), (13, [NEW]), (14, [NEW])],
        [N, N, [], [], N, [], [], N]),
    # per identity: another deployment's event, or another status of the same one, is new
    "identities are independent": (
        [(0, [NEW]), (1, [NEW, OTHER]), (2, [NEW, OTHER]), (3, [NEW, OTHER, CHANGED])],
        [N, [("deployment_new", "b")], N, [("deployment_new", "b"), ("job_state_changed", "a")]]),
    # an incremental observation of other keys says nothing about "a": its backoff is kept
    "an observation of other deployments keeps the backoff": (
        [(0, [NEW]), (1, [], {"b"}), (2, [NEW]), (3, [], {"b"}), (5.9, [NEW]), (6, [NEW])],
        [N, [], N, [], [], N]),
}


@pytest.mark.parametrize("rows, dispatched", TABLE.values(), ids=TABLE.keys())
def test_when_an_event_is_dispatched_again(rows, dispatched):
    assert run(rows)[0] == dispatched


def test_a_zero_quiet_period_dispatches_at_every_observation_and_sets_no_retry_timer():
    dispatched, observer = run([(0, [NEW]), (0, [NEW]), (0.1, [NEW])], quiet=0)
    assert dispatched == [N, N, N]
    assert observer.next_retry() is None  # else the sensor loop would observe without pause


def test_next_retry_tells_the_sensor_loop_when_to_observe_again():
    _, observer = run([(0, [NEW])])
    assert observer.next_retry() == 2
    _, observer = run([(0, [NEW]), (2, [NEW])])
    assert observer.next_retry() == 6
    _, observer = run([(0, [NEW]), (1, [])])
    assert observer.next_retry() is None  # done: nothing to retry, the loop waits for the poll
    _, observer = run([(0, [NEW]), (1, [OTHER])])
    assert observer.next_retry() == 3
