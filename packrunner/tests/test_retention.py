"""Retention (packrunner.retention): the history tables and the log stay bounded, as
st2garbagecollector bounds StackStorm's (TTL in days, only ended executions), without a benchmark:
rows are written with old timestamps, pruned, counted."""

import logging
import os
import subprocess
import sys
import time

import pytest

from packrunner.datastore import Store
from packrunner.retention import Retention, prune_history

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
DEMO = os.path.join(HERE, "fixtures", "packs", "demo")
DAY = 86400


def _fill(store, n, start, status="succeeded", prefix="e"):
    for i in range(n):
        store.save_execution({"id": "%s%d" % (prefix, i), "action": "p.a", "status": status,
                              "start_time": start + i, "end_time": start + i + 1})
        store.record_trigger_instance("%s%d" % (prefix, i), "p.t", {"i": i}, "processed", occurrence_time=start + i)


def _count(store, table):
    return store._query("SELECT COUNT(*) AS n FROM %s" % table)[0]["n"]


def test_rows_older_than_the_ttl_go_and_newer_ones_stay(tmp_path):
    store = Store(str(tmp_path))
    now = time.time()
    _fill(store, 1200, now - 10 * DAY, prefix="old")
    _fill(store, 30, now - 3600, prefix="new")
    deleted = prune_history(store, Retention(history_ttl_days=7, history_max_rows=None, batch=100), now=now)
    assert deleted == {"executions": 1200, "trigger_instances": 1200}
    assert _count(store, "executions") == 30 and _count(store, "trigger_instances") == 30
    assert store.get_execution("new0") is not None and store.get_execution("old0") is None


def test_at_most_max_rows_are_kept_the_newest(tmp_path):
    store = Store(str(tmp_path))
    now = time.time()
    _fill(store, 1000, now - 1000)
    prune_history(store, Retention(history_ttl_days=None, history_max_rows=250, batch=64), now=now)
    assert _count(store, "executions") == 250 and _count(store, "trigger_instances") == 250
    kept = {r["id"] for r in store.list_executions(limit=1000)}
    assert kept == {"e%d" % i for i in range(750, 1000)}


def test_unfinished_executions_are_never_pruned(tmp_path):
    store = Store(str(tmp_path))
    now = time.time()
    _fill(store, 5, now - 30 * DAY, status="running", prefix="run")
    _fill(store, 5, now - 30 * DAY, status="scheduled", prefix="sch")
    prune_history(store, Retention(history_ttl_days=1, history_max_rows=1), now=now)
    assert _count(store, "executions") == 10
    assert _count(store, "trigger_instances") == 0  # trigger instances have no unfinished state


def test_the_database_file_stops_growing_once_pruned(tmp_path):
    """The bound in bytes: SQLite reuses the pages freed by the pruning."""
    store = Store(str(tmp_path))
    retention = Retention(history_ttl_days=None, history_max_rows=500)
    sizes = []
    for round_ in range(8):
        _fill(store, 500, time.time() + round_ * 1000, prefix="r%d-" % round_)
        prune_history(store, retention)
        store._execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes.append(os.path.getsize(store.path))
    assert _count(store, "executions") == 500
    assert sizes[-1] <= sizes[2] * 1.1, sizes  # flat after the first rounds, not 8x


def test_bad_retention_settings_are_refused():
    with pytest.raises(ValueError, match="history_max_rows must be >= 0"):
        Retention(history_max_rows=-1)
    with pytest.raises(ValueError, match="interval"):
        Retention(interval=0)


def test_a_started_runner_prunes_its_history(make_runner):
    runner = make_runner(retention=Retention(history_ttl_days=1, history_max_rows=None, interval=0.2))
    _fill(runner.datastore, 50, time.time() - 2 * DAY)
    runner.start()
    deadline = time.monotonic() + 10
    # wait for both: the pruner counts a run after its last batch, so the rows can be gone a
    # moment before ``runs`` says so (seen under load in the whole suite)
    while (_count(runner.datastore, "executions") or not runner.pruner.runs) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _count(runner.datastore, "executions") == 0 and runner.pruner.runs >= 1


def test_the_log_file_is_rotated_by_size_and_old_files_dropped(tmp_path):
    log = tmp_path / "runner.log"
    # 'key list' on an empty store logs little; 'run' logs each execution: run several times
    for _ in range(6):
        p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(tmp_path / "s"),
                            "--log-file", str(log), "--log-max-bytes", "400", "--log-backup-count", "2",
                            "--log-level", "DEBUG", "run", "demo.echo", "message=%s" % ("x" * 100), "token=t"],
                           capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=SRC))
        assert p.returncode == 0, p.stderr
        assert "execution" not in p.stderr  # the log went to the file
    files = sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("runner.log"))
    assert files == ["runner.log", "runner.log.1", "runner.log.2"]
    assert all(os.path.getsize(tmp_path / f) <= 400 + 600 for f in files)  # one record may pass the limit


def test_logging_handler_is_the_standard_rotating_one(tmp_path):
    from packrunner.retention import rotating_log_handler

    handler = rotating_log_handler(str(tmp_path / "x.log"), Retention(log_max_bytes=10, log_backup_count=3))
    try:
        assert isinstance(handler, logging.handlers.RotatingFileHandler)
        assert (handler.maxBytes, handler.backupCount) == (10, 3)
    finally:
        handler.close()
