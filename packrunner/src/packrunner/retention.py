"""Retention of packrunner's history and log, as ``st2garbagecollector`` does for StackStorm.

StackStorm deletes action executions and trigger instances older than a TTL in days
(``[garbagecollector] action_executions_ttl``, ``trigger_instances_ttl``; checked every
``collection_interval`` = 600 s, ``sleep_delay`` 2 s between object types; only executions that
have ended are purged: ``st2reactor/garbage_collector/base.py``,
``st2common/garbage_collection/executions.py``). Its TTLs are off by default and its log files
are rotated by the system's logrotate. packrunner is one process that writes a trigger
instance and 1-3 executions per event (~170 MiB of SQLite and ~160 MiB of log an hour at 50
deployments/s, issue 18), so both are bounded by default here:

- the history (tables ``executions`` and ``trigger_instances``): rows older than
  ``history_ttl_days`` (default 7, StackStorm's smallest allowed TTL) and, beyond that, all but
  the newest ``history_max_rows`` per table (default 100,000) are deleted every
  ``interval`` seconds (default 60), in batches of ``batch`` rows (default 500), each its own
  short transaction, so sensors and actions never wait long for the write lock. Executions
  still ``scheduled`` or ``running`` are never deleted. SQLite reuses the freed pages, so the
  file stops growing once the bound is reached (it does not shrink);
- the log (``--log-file``): rotated by size with :class:`logging.handlers.RotatingFileHandler`
  (``log_max_bytes`` default 50 MiB, ``log_backup_count`` default 5 files kept).
"""

import logging
import logging.handlers
import threading
import time
from dataclasses import dataclass
from typing import Optional

from .datastore import UNFINISHED_STATUSES

__all__ = ["Retention", "HistoryPruner", "prune_history", "rotating_log_handler"]

LOG = logging.getLogger("packrunner.retention")

DAY = 86400.0

#: table -> its time column
_TABLES = {"executions": "start_time", "trigger_instances": "occurrence_time"}


@dataclass(frozen=True)
class Retention:
    """How much history and log packrunner keeps (see the module docstring for the defaults).

    Attributes:
        history_ttl_days: delete history rows older than this many days (None or 0: no age limit).
        history_max_rows: keep at most this many rows per history table (None or 0: no limit).
        interval: seconds between two prunings of a running runner.
        batch: rows deleted per transaction.
        log_max_bytes: rotate the log file when it would exceed this size (0: never).
        log_backup_count: rotated log files kept (``FILE.1`` ... ``FILE.<n>``).
    """

    history_ttl_days: Optional[float] = 7.0
    history_max_rows: Optional[int] = 100_000
    interval: float = 60.0
    batch: int = 500
    log_max_bytes: int = 50 * 1024 * 1024
    log_backup_count: int = 5

    def __post_init__(self):
        for name in ("history_ttl_days", "history_max_rows", "log_max_bytes", "log_backup_count"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError("%s must be >= 0, got %r" % (name, value))
        if self.interval <= 0 or self.batch < 1:
            raise ValueError("retention interval must be > 0 s and batch >= 1 (got %r, %r)"
                             % (self.interval, self.batch))


def _delete_batches(store, table, where, args, limit=None, batch=500, pause=0.0):
    """Delete the oldest rows of ``table`` matching ``where`` (at most ``limit``), ``batch`` rows
    per transaction. Returns the number deleted."""
    time_column = _TABLES[table]
    deleted = 0
    while limit is None or deleted < limit:
        size = batch if limit is None else min(batch, limit - deleted)
        # store._execute: one statement, one commit (the store's connection handling)
        cur = store._execute(
            "DELETE FROM %s WHERE rowid IN (SELECT rowid FROM %s WHERE %s ORDER BY %s LIMIT ?)"
            % (table, table, where, time_column), tuple(args) + (size,))
        deleted += cur.rowcount
        if cur.rowcount < size:
            break
        if pause:
            time.sleep(pause)  # let other writers in between batches
    return deleted


def prune_history(store, retention, now=None, pause=0.0):
    """Delete what ``retention`` does not keep from ``store``'s history tables.

    Args:
        store: :class:`packrunner.datastore.Store`.
        retention: a :class:`Retention`.
        now: epoch seconds (default: now).
        pause: seconds to sleep between two batches.

    Returns:
        ``{"executions": n, "trigger_instances": n}``: rows deleted.
    """
    now = time.time() if now is None else now
    finished = "status NOT IN (%s)" % ", ".join("?" * len(UNFINISHED_STATUSES))
    counts = {}
    for table, time_column in _TABLES.items():
        only_ended = table == "executions"
        where, args = (finished, UNFINISHED_STATUSES) if only_ended else ("1", ())
        deleted = 0
        if retention.history_ttl_days:
            cutoff = now - retention.history_ttl_days * DAY
            deleted += _delete_batches(store, table, "%s < ? AND %s" % (time_column, where), (cutoff,) + tuple(args),
                                       batch=retention.batch, pause=pause)
        if retention.history_max_rows:
            (row,) = store._query("SELECT COUNT(*) AS n FROM %s" % table)
            excess = row["n"] - retention.history_max_rows
            if excess > 0:
                deleted += _delete_batches(store, table, where, args, limit=excess, batch=retention.batch,
                                           pause=pause)
        counts[table] = deleted
    if any(counts.values()):
        LOG.info("history pruned: %d execution(s), %d trigger instance(s) deleted (ttl %s days, max %s rows)",
                 counts["executions"], counts["trigger_instances"], retention.history_ttl_days,
                 retention.history_max_rows)
    return counts


class HistoryPruner:
    """Runs :func:`prune_history` at start and then every ``retention.interval`` seconds in a
    daemon thread until :meth:`stop`. Errors are logged and retried at the next interval."""

    def __init__(self, store, retention):
        self.store = store
        self.retention = retention
        self.runs = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="history-pruner", daemon=True)
            self._thread.start()

    def _loop(self):
        while True:
            try:
                prune_history(self.store, self.retention, pause=0.01)
            except Exception:  # noqa: BLE001 - keep pruning at the next interval
                LOG.exception("history pruning failed; retrying in %s s", self.retention.interval)
            self.runs += 1
            if self._stop.wait(self.retention.interval):
                return

    def stop(self, timeout=5):
        """Stop the thread (waits at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def rotating_log_handler(path, retention):
    """A handler writing ``path``, rotated at ``retention.log_max_bytes`` with
    ``retention.log_backup_count`` old files kept (standard library's
    :class:`logging.handlers.RotatingFileHandler`)."""
    return logging.handlers.RotatingFileHandler(path, maxBytes=retention.log_max_bytes,
                                                backupCount=retention.log_backup_count, encoding="utf-8")
