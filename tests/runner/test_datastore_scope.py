"""Datastore scopes and names as StackStorm shows them (st2common/services/datastore.py, st2 key)."""

import json
import os
import sqlite3
import subprocess
import sys

from packrunner.datastore import Store
from packrunner.services import DatastoreService
from packrunner.templating import build_context, render_value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "tests", "fixtures", "packs", "demo")


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
                          env=dict(os.environ, PYTHONPATH=ROOT, PACKRUNNER_USER="carol"))


def test_cli_key_scope_and_encrypt(tmp_path):
    assert _cli(tmp_path, "set", "api_key", "hunter2", "--encrypt").returncode == 0
    assert _cli(tmp_path, "set", "pref", "dark", "--scope", "user").returncode == 0
    listed = json.loads(_cli(tmp_path, "list").stdout)
    assert [(k["name"], k["value"], k["scope"]) for k in listed] == [("api_key", "********", "st2kv.system")]
    p = _cli(tmp_path, "list", "--scope", "all")
    assert "hunter2" not in p.stdout
    assert [(k["name"], k["scope"], k["user"]) for k in json.loads(p.stdout)] == [
        ("api_key", "st2kv.system", None), ("pref", "st2kv.user", "carol")]
    assert json.loads(_cli(tmp_path, "list", "--decrypt").stdout)[0]["value"] == "hunter2"
    assert _cli(tmp_path, "get", "pref").returncode == 1
    p = _cli(tmp_path, "get", "pref", "--scope", "user")
    assert p.returncode == 0 and p.stdout.strip() == "dark"
    assert _cli(tmp_path, "list", "--scope", "bogus").returncode == 2
