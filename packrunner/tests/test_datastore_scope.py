"""Datastore scopes and names as StackStorm shows them (st2common/services/datastore.py, st2 key)."""

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

from packrunner.datastore import Store
from packrunner.services import DatastoreService
from packrunner.templating import build_context, render_value

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
DEMO = os.path.join(HERE, "fixtures", "packs", "demo")


def test_local_keys_are_named_pack_class_colon_name(tmp_path):
    store = Store(str(tmp_path))
    svc = DatastoreService(store, "demo", "QueueSensor")
    svc.set_value("cursor", 5)
    assert store.get("demo.QueueSensor:cursor") == "5"  # str(value), like StackStorm
    assert [kv.name for kv in svc.list_values()] == ["demo.QueueSensor:cursor"]
    assert svc.list_values()[0].scope == "st2kv.system"
    assert svc.get_value("cursor") == "5" and svc.get_value("cursor", local=False) is None


def test_user_scope_is_separate_from_system(tmp_path, monkeypatch):
    monkeypatch.setenv("PACKRUNNER_USER", "alice")
    store = Store(str(tmp_path))
    store.set("token", "sys")
    store.set("token", "mine", scope="user")
    assert store.get("token") == "sys"
    assert store.get("token", scope="st2kv.user") == "mine"
    assert store.get("token", scope="user", user="bob") is None
    assert [(kv.name, kv.scope, kv.user) for kv in store.list(scope="all")] == [
        ("token", "st2kv.system", None), ("token", "st2kv.user", "alice")]
    ctx = build_context(store=store)
    assert render_value("{{ st2kv.system.token }}/{{ st2kv.user.token }}", ctx) == "sys/mine"
    assert store.delete("token", scope="user") and store.get("token") == "sys"


def test_old_state_directory_is_migrated(tmp_path):
    db = tmp_path / "packrunner.sqlite"
    conn = sqlite3.connect(str(db))
    conn.execute("CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL, expire_at REAL)")
    conn.execute("INSERT INTO kv VALUES ('old', 'v', NULL)")
    conn.commit()
    conn.close()
    store = Store(str(tmp_path))
    assert store.get("old") == "v"
    assert store.list()[0].to_dict()["scope"] == "st2kv.system"


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(tmp_path / "s"),
                           "key", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=SRC, PACKRUNNER_USER="carol"))


def test_cli_key_scope_and_encrypt(tmp_path):
    assert _cli(tmp_path, "set", "api_key", "hunter2", "--encrypt").returncode == 0
    assert _cli(tmp_path, "set", "pref", "dark", "--scope", "user").returncode == 0
    listed = json.loads(_cli(tmp_path, "list").stdout)
    assert [(k["name"], k["scope"], k["secret"]) for k in listed] == [("api_key", "st2kv.system", True)]
    # as `st2 key list`: a secret's ciphertext (StackStorm's format: upper-case hex), never its plaintext
    assert re.fullmatch("[0-9A-F]{64,}", listed[0]["value"]) and "hunter2" not in listed[0]["value"]
    p = _cli(tmp_path, "list", "--scope", "all")
    assert "hunter2" not in p.stdout
    assert [(k["name"], k["scope"], k["user"]) for k in json.loads(p.stdout)] == [
        ("api_key", "st2kv.system", None), ("pref", "st2kv.user", "carol")]
    assert json.loads(_cli(tmp_path, "list", "--decrypt").stdout)[0]["value"] == "hunter2"
    assert _cli(tmp_path, "get", "pref").returncode == 1
    p = _cli(tmp_path, "get", "pref", "--scope", "user")
    assert p.returncode == 0 and p.stdout.strip() == "dark"
    assert _cli(tmp_path, "list", "--scope", "bogus").returncode == 2


def test_system_key_with_colon_does_not_collide_with_user_key(tmp_path, monkeypatch):
    """kv is keyed by (scope, name): system "stanley:foo" and user stanley's "foo" are two keys."""
    monkeypatch.delenv("PACKRUNNER_USER", raising=False)
    store = Store(str(tmp_path))
    store.set("stanley:foo", "system-value")
    store.set("foo", "user-value", scope="user")
    assert store.get("stanley:foo") == "system-value"
    assert store.get("foo", scope="user") == "user-value"
    assert store.delete("foo", scope="user") is True
    assert store.get("stanley:foo") == "system-value"


def test_old_state_file_migrated_to_scope_name_key(tmp_path):

    conn = sqlite3.connect(str(tmp_path / "packrunner.sqlite"))
    conn.executescript("CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL, expire_at REAL);"
                       "INSERT INTO kv VALUES ('kept', 'v1', NULL);")
    conn.commit()
    conn.close()
    store = Store(str(tmp_path))
    assert store.get("kept") == "v1"
    store.set("stanley:kept", "sys")
    store.set("kept", "usr", scope="user", user="stanley")
    assert (store.get("stanley:kept"), store.get("kept", scope="user", user="stanley")) == ("sys", "usr")
    pk = [r[1] for r in sorted(store._query("PRAGMA table_info(kv)"), key=lambda r: r[5]) if r[5]]
    assert pk == ["scope", "name"]


def test_services_signature_ttl_zero_and_scope_like_st2(tmp_path):
    """st2common/services/datastore.py: list_values(local, prefix, limit, offset); `if ttl:`;
    any scope but 'system' raises ValueError('Scope %s is unsupported.')."""
    store = Store(str(tmp_path))
    svc = DatastoreService(store, "demo", "QueueSensor")
    for i in range(4):
        assert svc.set_value("k%d" % i, i, ttl=0) is True
    assert store.list()[0].expire_timestamp is None
    assert [kv.name for kv in svc.list_values(local=True, prefix=None, limit=2, offset=1)] == [
        "demo.QueueSensor:k1", "demo.QueueSensor:k2"]
    for call in (lambda: svc.get_value("k0", scope="user"), lambda: svc.set_value("k", "v", scope="user"),
                 lambda: svc.delete_value("k0", scope="st2kv.system")):
        with pytest.raises(ValueError, match=r"^Scope (user|st2kv\.system) is unsupported\.$"):
            call()


def test_action_reads_a_secret_by_datastore_key_at_run_time(tmp_path):
    """The route a pack offers for credentials: the config names a datastore key, the action reads
    it with ``action_service.get_value(name, local=False, decrypt=True)``. The value is in no
    execution record, no log line and not in the config."""
    pack = tmp_path / "pack"
    (pack / "actions").mkdir(parents=True)
    (pack / "pack.yaml").write_text("ref: vault\nname: vault\ndescription: d\nversion: '0.1.0'\nauthor: a\n")
    (pack / "config.schema.yaml").write_text("token_key: {type: string, required: true}\n")
    (pack / "actions" / "use.yaml").write_text("name: use\nrunner_type: python-script\nentry_point: use.py\n")
    (pack / "actions" / "use.py").write_text(
        "import hashlib\n"
        "from st2common.runners.base_action import Action\n\n\n"
        "class Use(Action):\n"
        "    def run(self):\n"
        "        token = self.action_service.get_value(self.config['token_key'], local=False, decrypt=True)\n"
        "        self.logger.info('got a token of %d characters', len(token))\n"
        "        return hashlib.sha256(token.encode()).hexdigest()\n")
    (tmp_path / "config.yaml").write_text("token_key: api_token\n")
    secret = "tok-" + "s3cr3t" * 4

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "packrunner", "--pack", str(pack), "--state-dir",
                               str(tmp_path / "s"), "--config", str(tmp_path / "config.yaml"), *args],
                              capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=SRC))

    assert cli("key", "set", "api_token", secret, "--encrypt").returncode == 0
    run = cli("run", "vault.use")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["result"] == hashlib.sha256(secret.encode()).hexdigest()
    listed = cli("execution", "list")
    keys = cli("key", "list")
    for text in (run.stdout, run.stderr, listed.stdout, listed.stderr, keys.stdout):
        assert secret not in text
