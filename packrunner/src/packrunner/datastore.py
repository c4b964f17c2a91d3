"""SQLite persistence: key-value datastore, trigger instances and executions.

One file, ``<state-dir>/packrunner.sqlite``, in WAL mode. Each thread gets its
own connection (``threading.local``), so sensors, rule processing and action
workers can use it concurrently. Everything survives restarts.

The key-value semantics imitate StackStorm's datastore
(``st2common/services/datastore.py``, ``st2common/services/keyvalues.py``):
values are strings, a TTL makes a key expire, expired keys behave as missing.
Keys live in the ``system`` scope (shown as ``st2kv.system``) or in the
``user`` scope of one user (``st2kv.user``; stored as ``<user>:<name>`` as
StackStorm stores them). The user is ``$PACKRUNNER_USER``, default ``stanley``
(StackStorm's system user, which runs sensors and rule-triggered actions).
Keys set with ``secret=True`` (``st2 key set --encrypt``) are stored encrypted, as
StackStorm stores them (AES-256-CBC + HMAC-SHA1 in StackStorm's ciphertext format, with a
keyczar JSON key file like ``/etc/st2/keys/datastore_key.json``: :mod:`packrunner.crypto`).
Reads return the ciphertext unless ``decrypt=True`` (``st2 key get --decrypt``,
``get_value(..., decrypt=True)``). The key file is ``<state-dir>/datastore_key.json`` unless
``key_path``/``$PACKRUNNER_DATASTORE_KEY`` names another; it is created 0600 when the first
secret is set.

Files: the state directory is created 0700, the SQLite file 0600 before SQLite opens it (SQLite
gives its ``-wal`` and ``-shm`` files the database file's mode); existing ones that other users
could read are tightened on start, with a WARNING each.
"""

import json
import logging
import os
import sqlite3
import threading
import time

from . import crypto

__all__ = ["Store", "KeyValuePair", "SYSTEM_SCOPE", "USER_SCOPE", "ALL_SCOPE", "current_user", "KEY_FILE_ENV",
           "DEFAULT_KEY_FILE"]

#: environment variable naming the datastore key file (like st2.conf ``[keyvalue] encryption_key_path``)
KEY_FILE_ENV = "PACKRUNNER_DATASTORE_KEY"
#: the key file's name in the state directory when neither ``key_path`` nor the variable is set
DEFAULT_KEY_FILE = "datastore_key.json"
#: ``PRAGMA user_version`` of a state file whose secret values are encrypted (0: older
#: packrunner, secret values in clear text; migrated on open)
_SECRETS_ENCRYPTED_VERSION = 1

SYSTEM_SCOPE, USER_SCOPE, ALL_SCOPE = "system", "user", "all"
_SCOPES = (SYSTEM_SCOPE, USER_SCOPE)


def current_user():
    """The StackStorm user packrunner acts as: ``$PACKRUNNER_USER`` or ``stanley``."""
    return os.environ.get("PACKRUNNER_USER") or "stanley"


def _scope(scope):
    """Accept ``system``/``user`` and StackStorm's full names ``st2kv.system``/``st2kv.user``."""
    scope = (scope or SYSTEM_SCOPE).replace("st2kv.", "")
    if scope not in _SCOPES:
        raise ValueError("scope must be system or user, not %r" % scope)
    return scope

LOG = logging.getLogger("packrunner.datastore")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    scope TEXT NOT NULL DEFAULT 'system',
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    expire_at REAL,
    secret INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS trigger_instances (
    id TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    payload TEXT,
    occurrence_time REAL NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    trace_tag TEXT
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
    rule TEXT,
    runner TEXT,
    trace_tag TEXT
);
"""

#: execution statuses of an execution that has not ended
UNFINISHED_STATUSES = ("scheduled", "running")


def _migrate_executions(conn):
    """Add the ``runner`` column (which runner process owns an execution) and the
    ``trace_tag`` columns to the tables of an older state directory."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(executions)")}
    if "runner" not in columns:
        conn.execute("ALTER TABLE executions ADD COLUMN runner TEXT")
    for table in ("executions", "trigger_instances"):
        if "trace_tag" not in {row[1] for row in conn.execute("PRAGMA table_info(%s)" % table)}:
            conn.execute("ALTER TABLE %s ADD COLUMN trace_tag TEXT" % table)


def _create_indexes(conn):
    """Indexes for the lookups by trace tag and for pruning by age (after the migrations,
    which add the columns to older tables)."""
    conn.execute("CREATE INDEX IF NOT EXISTS executions_trace_tag ON executions(trace_tag)")
    conn.execute("CREATE INDEX IF NOT EXISTS trigger_instances_trace_tag ON trigger_instances(trace_tag)")
    conn.execute("CREATE INDEX IF NOT EXISTS executions_start_time ON executions(start_time)")
    conn.execute("CREATE INDEX IF NOT EXISTS trigger_instances_occurrence_time ON trigger_instances(occurrence_time)")


def _migrate_kv(conn):
    """Bring a ``kv`` table of an older packrunner state directory to the
    ``PRIMARY KEY (scope, name)`` layout, so that the system key
    ``stanley:foo`` and user stanley's key ``foo`` (stored as ``stanley:foo``
    in the user scope, as StackStorm stores it) are two keys. Older tables
    had ``name`` as the only key and possibly no ``scope``/``secret``
    columns; their rows are kept."""
    info = list(conn.execute("PRAGMA table_info(kv)"))
    columns = {r["name"] for r in info}
    key = [r["name"] for r in sorted(info, key=lambda r: r["pk"]) if r["pk"]]
    if key == ["scope", "name"]:
        return
    scope = "scope" if "scope" in columns else "'system'"
    secret = "secret" if "secret" in columns else "0"
    conn.execute("ALTER TABLE kv RENAME TO kv_old")
    conn.executescript(_SCHEMA)
    conn.execute("INSERT OR REPLACE INTO kv(scope, name, value, expire_at, secret) "
                 "SELECT %s, name, value, expire_at, %s FROM kv_old" % (scope, secret))
    conn.execute("DROP TABLE kv_old")
    LOG.info("datastore: migrated the kv table to PRIMARY KEY (scope, name)")


def _migrate_secrets(store, conn):
    """Encrypt the secret values an older packrunner (``PRAGMA user_version`` 0) stored in clear
    text, then rewrite the file (``secure_delete`` + ``VACUUM`` + WAL truncation) so the clear
    text is gone from the SQLite file and its WAL. Logs a WARNING naming the keys (never the
    values) and telling to rotate them when other users could read them before."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= _SECRETS_ENCRYPTED_VERSION:
        return
    rows = conn.execute("SELECT scope, name, value FROM kv WHERE secret = 1").fetchall()
    if rows:
        key = store.datastore_key(create=True)
        for r in rows:
            conn.execute("UPDATE kv SET value = ? WHERE scope = ? AND name = ?",
                         (crypto.encrypt(key, r["value"]), r["scope"], r["name"]))
    conn.execute("PRAGMA user_version = %d" % _SECRETS_ENCRYPTED_VERSION)
    conn.commit()
    if rows:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        LOG.warning("datastore: encrypted %d secret value(s) that an older packrunner stored in clear text in %s "
                    "(%s) with the key file %s; if other users could read the state directory before, treat "
                    "these secrets as disclosed and rotate them", len(rows), store.path,
                    ", ".join("st2kv.%s:%s" % (r["scope"], r["name"]) for r in rows), store.key_path)


class KeyValuePair:
    """A datastore item as returned by ``list_values`` (like st2client's KeyValuePair).

    Attributes: ``name`` (key name; for user keys without the ``<user>:``
    prefix), ``value`` (str), ``expire_timestamp`` (epoch seconds or None),
    ``scope`` (``"st2kv.system"`` or ``"st2kv.user"``, as StackStorm shows
    it), ``user`` (user-scoped keys only), ``secret`` (bool). The ``value`` of a
    secret key is its ciphertext unless it was listed with ``decrypt=True``.
    """

    def __init__(self, name, value, expire_timestamp=None, scope=SYSTEM_SCOPE, user=None, secret=False):
        self.name = name
        self.value = value
        self.expire_timestamp = expire_timestamp
        self.scope = "st2kv." + _scope(scope)
        self.user = user
        self.secret = bool(secret)

    def to_dict(self):
        """Return ``{"name", "value", "scope", "user", "secret", "expire_timestamp"}``
        (a secret value as listed: ciphertext unless listed with ``decrypt=True``)."""
        return {"name": self.name, "value": self.value,
                "scope": self.scope, "user": self.user, "secret": self.secret,
                "expire_timestamp": self.expire_timestamp}

    def __repr__(self):
        return "KeyValuePair(name=%r, value=%r)" % (self.name, self.value)


class Store:
    """Thread-safe SQLite store.

    Args:
        state_dir: directory holding ``packrunner.sqlite`` (created 0700 if missing; an
            existing one other users can read is tightened to 0700 with a WARNING).
        key_path: the datastore key file (default ``$PACKRUNNER_DATASTORE_KEY``, else
            ``<state_dir>/datastore_key.json``); created 0600 when the first secret is set.

    Attributes:
        path: the database file path.
        key_path: the datastore key file path (it may not exist yet).

    Raises:
        crypto.DatastoreKeyError: clear-text secrets of an older state file must be encrypted
            and the key file cannot be read or created.
    """

    def __init__(self, state_dir, key_path=None):
        state_dir = os.path.abspath(state_dir)
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        crypto.tighten_mode(state_dir, state_dir, 0o700, "state directory")
        self.path = os.path.join(state_dir, "packrunner.sqlite")
        self.key_path = os.path.abspath(key_path or os.environ.get(KEY_FILE_ENV)
                                        or os.path.join(state_dir, DEFAULT_KEY_FILE))
        self._key = None
        # Create the file 0600 before SQLite opens it (SQLite would create it with the umask's
        # mode, 0644 by default): SQLite gives the -wal and -shm files the database file's mode
        # (os_unix.c findCreateFileMode).
        os.close(os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o600))
        for path in (self.path, self.path + "-wal", self.path + "-shm"):
            if os.path.exists(path):
                crypto.tighten_mode(path, path, 0o600, "datastore file")
        if os.path.exists(self.key_path):
            crypto.tighten_mode(self.key_path, self.key_path, 0o600, "datastore key file")
        self._local = threading.local()
        self._lock = threading.RLock()
        self._conns = []
        conn = self._conn()
        with self._lock:
            conn.executescript(_SCHEMA)
            _migrate_kv(conn)
            _migrate_executions(conn)
            _create_indexes(conn)
            conn.commit()
            _migrate_secrets(self, conn)

    # -- encryption ------------------------------------------------------------
    def datastore_key(self, create=False):
        """The datastore key (:class:`packrunner.crypto.DatastoreKey`), read once from
        :attr:`key_path`; with ``create``, a missing file is created (0600).

        Raises:
            crypto.DatastoreKeyError: the file is missing (and not ``create``), unreadable or
                malformed; the message names the file and how to fix it.
        """
        with self._lock:
            if self._key is None:
                if create and not os.path.exists(self.key_path):
                    self._key = crypto.create_key(self.key_path)
                else:
                    self._key = crypto.load_key(self.key_path)
            return self._key

    def decrypt_value(self, ciphertext, name=None):
        """Decrypt a secret value read without ``decrypt`` (the ``decrypt_kv`` filter).

        Raises:
            crypto.DecryptionError: not ciphertext, or another key (names ``name``, never the value).
            crypto.DatastoreKeyError: no usable key file.
        """
        return crypto.decrypt(self.datastore_key(), ciphertext, name=name)

    # -- connection handling -------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL (SQLite's recommended pairing, sqlite.org/pragma.html#pragma_synchronous):
            # no fsync per commit, still safe against a crash of this process; only a power
            # loss may drop the last commits. Each trigger and execution commits 3-4 times:
            # with FULL, fsyncs were about a third of a dispatch's latency (bench/reaction.py).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # overwrite deleted content with zeros (sqlite.org/pragma.html#pragma_secure_delete):
            # an old value, e.g. the clear text of a migrated secret, does not linger in free pages
            conn.execute("PRAGMA secure_delete=ON")
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
    @staticmethod
    def _stored_name(name, scope, user):
        return "%s:%s" % (user or current_user(), name) if _scope(scope) == USER_SCOPE else name

    def get(self, name, scope=SYSTEM_SCOPE, user=None, decrypt=False):
        """Return the string value of ``name`` or None when missing/expired.

        Args:
            name: key name (user scope: without the ``<user>:`` prefix).
            scope: ``system`` or ``user`` (also ``st2kv.system``/``st2kv.user``).
            user: owner of a user-scoped key (default :func:`current_user`).
            decrypt: return a secret key's plaintext; without it, its ciphertext (as
                StackStorm's ``st2 key get`` and ``get_value(decrypt=False)``). No effect on
                keys that are not secret.

        Raises:
            crypto.DecryptionError, crypto.DatastoreKeyError: ``decrypt`` and the value cannot
                be decrypted (wrong or missing key file).
        """
        stored = self._stored_name(name, scope, user)
        rows = self._query("SELECT value, expire_at, secret FROM kv WHERE name = ? AND scope = ?",
                           (stored, _scope(scope)))
        if not rows:
            return None
        value, expire_at = rows[0]["value"], rows[0]["expire_at"]
        if expire_at is not None and expire_at <= time.time():
            self._execute("DELETE FROM kv WHERE name = ? AND scope = ? AND expire_at <= ?",
                          (stored, _scope(scope), time.time()))
            return None
        if decrypt and rows[0]["secret"]:
            return crypto.decrypt(self.datastore_key(), value, name=name)
        return value

    def set(self, name, value, ttl=None, scope=SYSTEM_SCOPE, user=None, secret=False, encrypted=False):
        """Store ``str(value)`` under ``name`` (StackStorm stores strings).

        Args:
            name: key name.
            value: any value; non-strings are stored as ``str(value)``.
            ttl: seconds until expiry (None = never; must be > 0).
            scope: ``system`` or ``user``.
            user: owner of a user-scoped key (default :func:`current_user`).
            secret: store it encrypted (``st2 key set --encrypt``); creates the key file on
                first use.
            encrypted: with ``secret``, ``value`` is ciphertext already (``st2 key load`` with
                ``encrypted: true``) and is stored as it is.

        Raises:
            ValueError: on an empty name, a non-positive ttl or an unknown scope.
            crypto.DatastoreKeyError: ``secret`` and the key file cannot be read or created.
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
        if secret and not encrypted:
            value = crypto.encrypt(self.datastore_key(create=True), value)
        self._execute(
            "INSERT INTO kv(name, value, expire_at, scope, secret) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(scope, name) DO UPDATE SET value = excluded.value, expire_at = excluded.expire_at, "
            "secret = excluded.secret",
            (self._stored_name(name, scope, user), value, expire_at, _scope(scope), int(bool(secret))),
        )
        return True

    def delete(self, name, scope=SYSTEM_SCOPE, user=None):
        """Delete ``name``; return True if it existed (and was not expired)."""
        existed = self.get(name, scope, user) is not None
        self._execute("DELETE FROM kv WHERE name = ? AND scope = ?",
                      (self._stored_name(name, scope, user), _scope(scope)))
        return existed

    def list(self, prefix=None, scope=SYSTEM_SCOPE, user=None, limit=None, offset=0, decrypt=False):
        """Return non-expired :class:`KeyValuePair` items, sorted by name.

        Args:
            limit: at most this many items (None: all), after skipping
                ``offset`` items (st2's ``keys.get_all(limit=, offset=)``).
            prefix: only names starting with this (plain string prefix; user
                keys: without the ``<user>:`` prefix).
            scope: ``system``, ``user`` (the keys of ``user``) or ``all``
                (like ``st2 key list --scope``).
            user: for user scope (default :func:`current_user`).
            decrypt: secret values in plaintext (else ciphertext, as ``st2 key list``).

        Raises:
            crypto.DecryptionError, crypto.DatastoreKeyError: ``decrypt`` and a value cannot
                be decrypted.
        """
        now = time.time()
        user = user or current_user()
        scopes = _SCOPES if scope == ALL_SCOPE else (_scope(scope),)
        out = []
        for sc in scopes:
            full_prefix = ("%s:" % user if sc == USER_SCOPE else "") + (prefix or "")
            escaped = full_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._query(
                "SELECT name, value, expire_at, secret FROM kv WHERE scope = ? AND name LIKE ? ESCAPE '\\' "
                "ORDER BY name", (sc, escaped + "%"))
            for r in rows:
                if r["expire_at"] is not None and r["expire_at"] <= now:
                    continue
                name = r["name"][len(user) + 1:] if sc == USER_SCOPE else r["name"]
                value = r["value"]
                if decrypt and r["secret"]:
                    value = crypto.decrypt(self.datastore_key(), value, name=name)
                out.append(KeyValuePair(name, value, r["expire_at"], sc, user if sc == USER_SCOPE else None,
                                        r["secret"]))
        out = out[int(offset or 0):]
        return out if limit is None else out[:int(limit)]

    # -- trigger instances ---------------------------------------------------
    def record_trigger_instance(self, instance_id, ref, payload, status, reason=None, occurrence_time=None,
                                trace_tag=None):
        """Insert one trigger instance row (payload stored as JSON; ``trace_tag`` as dispatched)."""
        self._execute(
            "INSERT OR REPLACE INTO trigger_instances(id, ref, payload, occurrence_time, status, reason, trace_tag) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (instance_id, ref, _dumps(payload), occurrence_time or time.time(), status, reason, trace_tag),
        )

    def list_trigger_instances(self, limit=50, trace_tag=None):
        """Return the newest trigger instances as dicts (only those of ``trace_tag`` when given)."""
        where, args = ("WHERE trace_tag = ? ", (trace_tag,)) if trace_tag is not None else ("", ())
        rows = self._query(
            "SELECT * FROM trigger_instances %sORDER BY occurrence_time DESC LIMIT ?" % where, args + (int(limit),)
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
            "start_time, end_time, trigger_instance_id, rule, runner, trace_tag) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                record.get("runner"),
                record.get("trace_tag"),
            ),
        )

    def abandon_executions(self, is_alive, now=None):
        """Mark executions left ``scheduled``/``running`` by a runner that is gone as
        ``abandoned`` (e.g. after ``kill -9``: nobody else would ever end them).

        Args:
            is_alive: ``runner id -> True/False/None`` (None: cannot tell, e.g. another
                host; such executions are left alone). Executions without a runner id
                (written by an older packrunner) count as gone.
            now: end time to record (epoch seconds; default now).

        Returns:
            The ids of the executions marked abandoned.
        """
        rows = self._query("SELECT id, runner FROM executions WHERE status IN (?, ?)", UNFINISHED_STATUSES)
        gone = [(r["id"], r["runner"]) for r in rows if not r["runner"] or is_alive(r["runner"]) is False]
        for execution_id, runner in gone:
            self._execute(
                "UPDATE executions SET status = 'abandoned', error = ?, end_time = ? WHERE id = ? AND status IN (?, ?)",
                ("the runner running it (%s) is gone; its outcome is unknown" % (runner or "unknown"),
                 now or time.time(), execution_id) + UNFINISHED_STATUSES,
            )
        return [execution_id for execution_id, _ in gone]

    def list_trace_tags(self, limit=50, trace_tag=None):
        """The newest traces: ``[{"trace_tag", "start_time", "end_time", "trigger_instances",
        "executions"}]`` (epoch seconds; counts), newest last activity first."""
        where, args = ("AND trace_tag = ? ", (trace_tag,)) if trace_tag is not None else ("", ())
        rows = self._query(
            "SELECT trace_tag, MIN(t) AS start_time, MAX(t) AS end_time, SUM(ti) AS trigger_instances, "
            "SUM(ex) AS executions FROM ("
            "  SELECT trace_tag, occurrence_time AS t, 1 AS ti, 0 AS ex FROM trigger_instances "
            "  WHERE trace_tag IS NOT NULL %s"
            "  UNION ALL SELECT trace_tag, start_time, 0, 1 FROM executions WHERE trace_tag IS NOT NULL %s"
            ") GROUP BY trace_tag ORDER BY end_time DESC LIMIT ?" % (where, where), args + args + (int(limit),))
        return [dict(r) for r in rows]

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

    def list_executions(self, limit=50, trace_tag=None):
        """Return the newest executions (by start time) as dicts (only those of ``trace_tag``
        when given: the executions its trigger instances caused, ``st2 trace get``)."""
        where, args = ("WHERE trace_tag = ? ", (trace_tag,)) if trace_tag is not None else ("", ())
        rows = self._query(
            "SELECT * FROM executions %sORDER BY start_time DESC, rowid DESC LIMIT ?" % where, args + (int(limit),)
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
