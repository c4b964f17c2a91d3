"""SQLite persistence: key-value datastore, trigger instances and executions.

One file, ``<state-dir>/packrunner.sqlite``, in WAL mode. Each thread gets its
own connection (``threading.local``), so sensors, rule processing and action
workers can use it concurrently. Everything survives restarts.

The key-value semantics imitate StackStorm's datastore
(``st2common/services/datastore.py``): values are strings, a TTL makes a key
expire, expired keys behave as missing.
"""

import json
import logging
import os
import sqlite3
import threading
import time

__all__ = ["Store", "KeyValuePair"]

LOG = logging.getLogger("packrunner.datastore")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expire_at REAL
);
CREATE TABLE IF NOT EXISTS trigger_instances (
    id TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    payload TEXT,
    occurrence_time REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    parameters TEXT,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    start_time REAL,
    end_time REAL,
    trigger_instance_id TEXT,
    rule TEXT
);
"""


class KeyValuePair:
    """A datastore item as returned by ``list_values`` (like st2client's KeyValuePair).

    Attributes: ``name`` (full key name), ``value`` (str), ``expire_timestamp``
    (epoch seconds or None), ``scope`` (always ``"system"``).
    """

    def __init__(self, name, value, expire_timestamp=None):
        self.name = name
        self.value = value
        self.expire_timestamp = expire_timestamp
        self.scope = "system"

    def to_dict(self):
        """Return ``{"name", "value", "expire_timestamp"}``."""
        return {"name": self.name, "value": self.value, "expire_timestamp": self.expire_timestamp}

    def __repr__(self):
        return "KeyValuePair(name=%r, value=%r)" % (self.name, self.value)


class Store:
    """Thread-safe SQLite store.

    Args:
        state_dir: directory holding ``packrunner.sqlite`` (created if missing).

    Attributes:
        path: the database file path.
    """

    def __init__(self, state_dir):
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(os.path.abspath(state_dir), "packrunner.sqlite")
        self._local = threading.local()
        self._lock = threading.RLock()
        self._conns = []
        conn = self._conn()
        with self._lock:
            conn.executescript(_SCHEMA)
            conn.commit()

    # -- connection handling -------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _execute(self, sql, args=()):
        conn = self._conn()
        with self._lock:
            cur = conn.execute(sql, args)
            conn.commit()
            return cur

    def _query(self, sql, args=()):
        conn = self._conn()
        with self._lock:
            return conn.execute(sql, args).fetchall()

    def close(self):
        """Close every connection opened by this store."""
        with self._lock:
            for conn in self._conns:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - closing from another thread
                    pass
            self._conns = []
        self._local = threading.local()

    # -- key-value -----------------------------------------------------------
    def get(self, name):
        """Return the string value of ``name`` or None when missing/expired."""
        rows = self._query("SELECT value, expire_at FROM kv WHERE name = ?", (name,))
        if not rows:
            return None
        value, expire_at = rows[0]["value"], rows[0]["expire_at"]
        if expire_at is not None and expire_at <= time.time():
            self._execute("DELETE FROM kv WHERE name = ? AND expire_at <= ?", (name, time.time()))
            return None
        return value

    def set(self, name, value, ttl=None):
        """Store ``str(value)`` under ``name`` (StackStorm stores strings).

        Args:
            name: full key name.
            value: any value; non-strings are stored as ``str(value)``.
            ttl: seconds until expiry (None = never; must be > 0).

        Raises:
            ValueError: on an empty name or a non-positive ttl.
        """
        if not name:
            raise ValueError("key name must not be empty")
        if not isinstance(value, str):
            value = str(value)
        expire_at = None
        if ttl is not None:
            ttl = float(ttl)
            if ttl <= 0:
                raise ValueError("ttl must be a positive number of seconds")
            expire_at = time.time() + ttl
        self._execute(
            "INSERT INTO kv(name, value, expire_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value, expire_at = excluded.expire_at",
            (name, value, expire_at),
        )
        return True

    def delete(self, name):
        """Delete ``name``; return True if it existed (and was not expired)."""
        existed = self.get(name) is not None
        self._execute("DELETE FROM kv WHERE name = ?", (name,))
        return existed

    def list(self, prefix=None):
        """Return non-expired :class:`KeyValuePair` items, sorted by name.

        Args:
            prefix: only names starting with this (plain string prefix).
        """
        now = time.time()
        if prefix:
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._query(
                "SELECT name, value, expire_at FROM kv WHERE name LIKE ? ESCAPE '\\' ORDER BY name",
                (escaped + "%",),
            )
        else:
            rows = self._query("SELECT name, value, expire_at FROM kv ORDER BY name")
        return [
            KeyValuePair(r["name"], r["value"], r["expire_at"])
            for r in rows
            if r["expire_at"] is None or r["expire_at"] > now
        ]

    # -- trigger instances ---------------------------------------------------
    def record_trigger_instance(self, instance_id, ref, payload, status, reason=None, occurrence_time=None):
        """Insert one trigger instance row (payload stored as JSON)."""
        self._execute(
            "INSERT OR REPLACE INTO trigger_instances(id, ref, payload, occurrence_time, status, reason) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (instance_id, ref, _dumps(payload), occurrence_time or time.time(), status, reason),
        )

    def list_trigger_instances(self, limit=50):
        """Return the newest trigger instances as dicts."""
        rows = self._query(
            "SELECT * FROM trigger_instances ORDER BY occurrence_time DESC LIMIT ?", (int(limit),)
        )
        return [_trigger_row(r) for r in rows]

    def get_trigger_instance(self, instance_id):
        """Return one trigger instance dict (payload decoded) or None.
        A unique id prefix is accepted."""
        rows = self._query("SELECT * FROM trigger_instances WHERE id = ?", (instance_id,))
        if not rows:
            rows = self._query("SELECT * FROM trigger_instances WHERE id LIKE ? LIMIT 2",
                               (instance_id.replace("%", "") + "%",))
            if len(rows) != 1:
                return None
        return _trigger_row(rows[0])

    # -- executions ----------------------------------------------------------
    def save_execution(self, record):
        """Insert or replace an execution record (dict as built by the runner)."""
        self._execute(
            "INSERT OR REPLACE INTO executions(id, action, parameters, status, result, error, "
            "start_time, end_time, trigger_instance_id, rule) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["id"],
                record["action"],
                _dumps(record.get("parameters")),
                record["status"],
                _dumps(record.get("result")),
                record.get("error"),
                record.get("start_time"),
                record.get("end_time"),
                record.get("trigger_instance_id"),
                record.get("rule"),
            ),
        )

    def get_execution(self, execution_id):
        """Return one execution dict or None. A unique id prefix is accepted."""
        rows = self._query("SELECT * FROM executions WHERE id = ?", (execution_id,))
        if not rows:
            rows = self._query(
                "SELECT * FROM executions WHERE id LIKE ? LIMIT 2", (execution_id.replace("%", "") + "%",)
            )
            if len(rows) != 1:
                return None
        return _execution_row(rows[0])

    def list_executions(self, limit=50):
        """Return the newest executions (by start time) as dicts."""
        rows = self._query(
            "SELECT * FROM executions ORDER BY start_time DESC, rowid DESC LIMIT ?", (int(limit),)
        )
        return [_execution_row(r) for r in rows]


def _trigger_row(row):
    d = dict(row)
    d["payload"] = _loads(d["payload"])
    return d


def _execution_row(row):
    d = dict(row)
    d["parameters"] = _loads(d["parameters"])
    d["result"] = _loads(d["result"])
    if d.get("start_time") and d.get("end_time"):
        d["elapsed"] = round(d["end_time"] - d["start_time"], 3)
    else:
        d["elapsed"] = None
    return d


def _dumps(value):
    return json.dumps(value, default=str, sort_keys=True)


def _loads(text):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
