"""The sensor's view of the Configuration Database: one read, then an etcd watch.

:class:`DeploymentWatch` reads everything under ``[prefix]/deploy/`` once (a
:class:`slurmdeploy.configdb.Snapshot` at store revision R), watches the prefix from R+1
and applies each event to the snapshot, so an observation after a change costs no etcd
request and a put reaches the sensor in about a millisecond.

etcd3gw's watch runs on its own HTTP client (:meth:`ConfigDB.new_client`: the stream holds
its connection) and calls back from a worker thread (a green thread under StackStorm's
eventlet monkey-patching, where etcd3gw's HTTP watch works and gRPC watches hang). Its
stream neither ends nor raises when etcd dies, so the watch is never trusted alone:

- every ``check_interval`` seconds :meth:`check` asks etcd (one small range request:
  ``keys_only``, ``limit: 1``, ``min_mod_revision``; :meth:`ConfigDB.changed_since`) whether
  any key under the prefix changed after the last revision applied, and which raft term it is in: a new term (etcd
  restarted or a new leader) or a change that the watch has not delivered by the next
  check means the stream is dead. Not ``count_only``: etcd ignores the revision filters
  when it only counts (etcd-io/etcd#18267; docs/design.md, "Watch liveness"), so a count
  would report every key as changed and an idle sensor would re-read everything at every
  other check;
- any failed read marks it dead too;
- :meth:`resync` (the sensor's poll timer, and after a dead stream) reads everything again
  and re-watches from the new revision: nothing is lost, nothing applied twice.
"""

import logging
import threading
import time

from etcd3gw.watch import Watcher

from slurmdeploy.errors import ConfigDBError
from slurmdeploy.jobview import JobView

#: seconds between two liveness checks of the watch stream while nothing happens
CHECK_INTERVAL = 5.0

LOG = logging.getLogger(__name__)


class DeploymentWatch:
    """A Configuration DB snapshot kept current by an etcd watch of the deployment prefix.

    Args:
        configdb: a :class:`slurmdeploy.configdb.ConfigDB`.

    Attributes:
        wake: a ``threading.Event`` set when an event arrives.
        restarts: how many watch streams were opened.
    """

    def __init__(self, configdb):
        self.configdb = configdb
        self.wake = threading.Event()
        self.restarts = 0
        self._lock = threading.Lock()
        self._events = []
        self._snap = None
        self._watcher = None
        self._client = None
        self._applied = 0  # store revision the snapshot is current to
        self._term = None
        self._stale = None  # revision the last check found undelivered changes after
        #: deployment keys the last :meth:`snapshot` applied events for; None when it read
        #: everything afresh (then any key may have changed)
        self.changed = None

    # ----------------------------------------------------------------- the stream
    def _on_event(self, event):
        kv = event.get("kv") or {}
        key = kv.get("key")
        if isinstance(key, (bytes, bytearray)):
            key = key.decode("utf-8", "replace")
        item = (event.get("type") == "DELETE", key, kv.get("value", b""), int(kv.get("create_revision", 0)),
                int(kv.get("mod_revision", 0)))
        with self._lock:
            self._events.append(item)
        self.wake.set()

    def _stop_stream(self):
        watcher, client, self._watcher, self._client = self._watcher, self._client, None, None
        if watcher is not None:
            try:
                watcher.stop()
            except Exception:  # noqa: BLE001 - the stream may already be dead
                pass
        if client is not None:
            client.session.close()

    def _start_stream(self, revision):
        self._stop_stream()
        prefix, end = self.configdb.layout.deploy_range()
        client = self.configdb.new_client()
        try:
            self._watcher = Watcher(client, prefix, self._on_event, start_revision=int(revision) + 1,
                                    range_end=end)
        except Exception as exc:  # requests errors: etcd unreachable
            client.session.close()
            raise ConfigDBError(f"cannot watch {prefix} on etcd at {self.configdb.endpoint}: "
                                f"{type(exc).__name__}") from None
        self._client = client
        self.restarts += 1

    @property
    def alive(self):
        """True while a stream is open (it may still be dead: see :meth:`check`)."""
        return self._watcher is not None

    # ------------------------------------------------------------------- reading
    def resync(self):
        """Read everything again and watch from the read's revision.

        Raises:
            ConfigDBError: etcd cannot be read (the stream is closed; call again later).
        """
        try:
            snap = self.configdb.snapshot()
            with self._lock:
                self._events = []
            self._start_stream(snap.revision)
        except ConfigDBError:
            self._stop_stream()
            self._snap = None
            raise
        self._snap = snap
        self._applied = snap.revision
        self._stale = None
        self._term = None

    def snapshot(self):
        """The current snapshot: the pending events applied (no etcd request), or a fresh
        read when there is no snapshot or no stream. Sets :attr:`changed` (the keys of the
        events applied, or None after a fresh read).

        Returns:
            A :class:`slurmdeploy.configdb.Snapshot`.

        Raises:
            ConfigDBError: a fresh read failed.
        """
        if self._snap is None or self._watcher is None:
            self.resync()
            self.changed = None
            return self._snap
        self.wake.clear()
        with self._lock:
            events, self._events = self._events, []
        changed = set()
        for deleted, path, raw, create_rev, mod_rev in events:
            if mod_rev <= self._applied:
                continue  # already in the snapshot (read after the event was sent)
            key = self._snap.key_of(path)
            if key is not None:
                changed.add(key)
            if deleted:
                self._snap.remove(path)
            else:
                self._snap.apply(path, raw, create_rev, mod_rev)
            self._snap.revision = max(self._snap.revision, mod_rev)
        if events:
            self._applied = max(self._applied, max(e[4] for e in events))
        self.changed = changed
        return self._snap

    def check(self):
        """Liveness check of the stream (one small etcd request).

        Returns:
            True when the stream looks alive; False when it was found dead (it is closed,
            and the next :meth:`snapshot` reads everything again).
        """
        if self._watcher is None:
            return False
        prefix = self.configdb.deploy_prefix
        try:
            # the keys etcd returned, not its "count" (the range's size before the revision
            # filter): ConfigDB.changed_since; tests/integration/test_watch_liveness.py
            undelivered, term = self.configdb.changed_since(self._applied)
        except ConfigDBError as exc:
            LOG.warning("%s; reading everything again once etcd answers", exc)
            self._stop_stream()
            return False
        with self._lock:
            queued = bool(self._events)
        dead = None
        if self._term is not None and term != self._term:
            dead = f"etcd's raft term changed ({self._term} -> {term}: restarted or re-elected)"
        elif undelivered and not queued and self._stale == self._applied:
            dead = f"a change under {prefix} after revision {self._applied} was never delivered"
        self._term = term
        self._stale = self._applied if undelivered and not queued else None
        if dead:
            LOG.warning("the etcd watch of %s is dead (%s); watching again from a fresh read", prefix, dead)
            self._stop_stream()
            return False
        return True

    def close(self):
        """Close the stream."""
        self._stop_stream()
        self._snap = None


class SensorLoop:
    """What the deployment sensor does between two dispatches: wait for an etcd watch event
    or the poll timer, then observe.

    - A watch event: the snapshot is brought up to date from the events (no etcd request)
      and the deployments those events touched are observed (``Observer.poll(incremental=True)``)
      with the jobs already known (:class:`JobView`, no Slurm request unless a
      state names a job not seen yet): a new deployment is dispatched within milliseconds.
      Only those deployments are compared with Slurm; the job view and the job maps are
      still walked in full (O(tracked jobs) per wake, a small constant each).
    - The poll timer (``poll_interval``, the pack's ``loop_interval``): the safety net.
      Everything is read again from etcd, the watch restarted from that read, and the
      tracked jobs' states are asked from Slurm (Slurm job changes are seen at this pace).
    - Every :data:`CHECK_INTERVAL` seconds in between: :meth:`DeploymentWatch.check`; a dead
      stream triggers the poll at once.
    - When an event the last observation still had is due again (:meth:`Observer.next_retry`:
      its action failed or is slow; the observer's backoff starts at 2 s): an observation of
      every deployment with the snapshot and the jobs already known (no etcd request, a Slurm
      request only for a job not seen yet), so a failed action is retried within seconds, not
      at the next poll.

    Args:
        deployer: a :class:`slurmdeploy.deployer.Deployer` (its ``watch`` and ``job_view``
            are set to this loop's).
        poll_interval: seconds.
        resync_interval: seconds between two full listings of Slurm's jobs.
        quiet_period: the longest wait before an event still observed is dispatched again
            (see :class:`Observer`).
        check_interval: seconds between liveness checks of the watch.
        clock: time source in seconds.
    """

    def __init__(self, deployer, poll_interval, resync_interval, quiet_period, check_interval=CHECK_INTERVAL,
                 clock=time.monotonic):
        from slurmdeploy.deployer import Observer

        self.deployer = deployer
        self.poll_interval = poll_interval
        self.check_interval = check_interval
        self.clock = clock
        self.watch = DeploymentWatch(deployer.configdb)
        self.view = JobView(deployer.slurm, deployer.mcs_label, resync_interval, clock=clock)
        deployer.watch, deployer.job_view = self.watch, self.view
        self.observer = Observer(deployer, quiet_period, clock=clock)
        self.stopped = threading.Event()
        self._next_poll = None
        self._busy = 0.0  # seconds the last observation took
        self._last_end = 0.0
        self.polls = self.wakeups = self.retries = 0

    def poll_now(self):
        """Make the next :meth:`step` poll at once."""
        self._next_poll = None

    def step(self, timeout=None):
        """Wait (at most until the next poll) for something to observe; observe it.

        Args:
            timeout: give up waiting after this many seconds and return ``[]`` (default:
                wait until the next poll).

        Returns:
            The :class:`Event` list to dispatch (empty when stopped or nothing happened).

        Raises:
            ConfigDBError, SlurmAPIError: the observation failed; the next step polls.
        """
        give_up = None if timeout is None else self.clock() + timeout
        poll = self._next_poll is None or self.clock() >= self._next_poll
        retry = False  # an event still observed is due again: observe everything, without a poll
        while not poll:
            due = self.observer.next_retry()
            wait = min(self._next_poll - self.clock(), self.check_interval)
            if due is not None:
                wait = min(wait, due - self.clock())
            if give_up is not None:
                wait = min(wait, give_up - self.clock())
            if self.watch.wake.wait(max(wait, 0)):
                break
            if self.stopped.is_set() or (give_up is not None and self.clock() >= give_up):
                return []
            if due is not None and self.clock() >= due:
                retry = True
                break
            poll = self.clock() >= self._next_poll or not self.watch.check()
        if self.stopped.is_set():
            return []
        if not poll and not retry and self._busy:
            # a burst: events keep coming; spend at most about half the time observing (the
            # sensor shares the process with the actions in packrunner) by letting the
            # events of one observation's duration gather first. A lone event waits ~0.
            self.stopped.wait(max(0.0, self._last_end + self._busy - self.clock()))
        self.view.refresh = poll
        if poll:
            self._next_poll = None  # a failed poll is retried at the next step
            self.polls += 1
            self.watch.resync()
            self._next_poll = self.clock() + self.poll_interval
        elif retry:
            self.retries += 1
        else:
            self.wakeups += 1
        started = self.clock()
        try:
            # a watch wake observes only the deployments its events touched; a poll or a retry all
            events = self.observer.poll(incremental=not poll and not retry)
        except Exception:
            if not poll:
                self.poll_now()  # the changes of a failed wake are not lost: the next step polls
            raise
        self._last_end = self.clock()
        self._busy = self._last_end - started
        return events

    def stop(self):
        """Make :meth:`step` return (from another thread) and close the watch."""
        self.stopped.set()
        self.watch.wake.set()
        self.watch.close()
