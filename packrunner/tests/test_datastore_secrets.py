"""Secret datastore values are encrypted at rest, as StackStorm encrypts them (issue 15, item 2).

`key set --encrypt` / `set_value(encrypt=True)` store AES-256-CBC + HMAC-SHA1 ciphertext in
StackStorm's format with a keyczar JSON key file (StackStorm's st2common/util/crypto.py); reads
give the ciphertext unless decrypt (`st2 key get --decrypt`, `get_value(decrypt=True)`,
`| decrypt_kv`); config properties marked `secret: true` are decrypted as StackStorm's config
loader does. The state directory is 0700, the SQLite files and the key file 0600.
"""

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from packrunner import crypto
from packrunner.config import load_config
from packrunner.datastore import Store
from packrunner.errors import ConfigError
from packrunner.pack import Pack
from packrunner.services import DatastoreService
from packrunner.templating import TemplateRenderError, build_context, render_value

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
DEMO = os.path.join(HERE, "fixtures", "packs", "demo")
SECRET = "eyJhbGciOiJIUzI1NiJ9.jwt-at-rest-" + "x7Q" * 8

# Recorded from StackStorm's own code: st2common/st2common/util/crypto.py of StackStorm/st2 at
# c2eaf56b339bdb8184b5c2161714bce50eee4534 (AESKey.generate().to_json() and symmetric_encrypt of
# "jwt-from-stackstorm \u00e9"; a throw-away key). The reverse was checked the same way: StackStorm's
# symmetric_decrypt read packrunner's ciphertext with this key.
ST2_KEY_JSON = ('{"hmacKey": {"hmacKeyString": "55nCPiZHcdUAPBjUyFkM2Ub76lgq9XdWD1KxT5CrK_M", "size": 256}, '
                '"aesKeyString": "e8T16NzwXMGIhO8-BxB5LvOkOW58hVCdGxpuOG8DuBA", "mode": "CBC", "size": 256}')
ST2_CIPHERTEXT = ("3030303030F691263E22AA2F7F14EB363584961F7513B786066374F7A38C145DDF896C8C194DCB1B253357EBC6"
                  "05B3DF74C9C5CBA6122791A961661A2E2432BAFE869D092124984F00")


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _cli(state_dir, *args, key_file=None):
    extra = ["--datastore-key", str(key_file)] if key_file else []
    return subprocess.run([sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(state_dir),
                           *extra, "key", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=SRC))


def _raw(store):
    """The bytes of the SQLite file and its WAL, as another user with read access would see them."""
    data = b""
    for suffix in ("", "-wal"):
        if os.path.exists(store.path + suffix):
            with open(store.path + suffix, "rb") as f:
                data += f.read()
    return data


# -- crypto ------------------------------------------------------------------------------------

def test_encrypt_decrypt_round_trip_in_stackstorms_format():
    key = crypto.DatastoreKey.generate()
    one, two = crypto.encrypt(key, SECRET), crypto.encrypt(key, SECRET)
    assert one != two  # a random IV per value
    for text in (one, two):
        assert text == text.upper() and bytes.fromhex(text)[:5] == b"00000"  # keyczar header, as st2 writes it
        assert SECRET not in text and crypto.is_ciphertext(text)
        assert crypto.decrypt(key, text) == SECRET
    assert crypto.decrypt(key, crypto.encrypt(key, "\u00e9\u4e2d")) == "\u00e9\u4e2d"
    assert not crypto.is_ciphertext(SECRET)
    assert SECRET.encode() not in repr(key).encode() and "aes" not in repr(key).lower()


def test_a_stackstorm_key_file_and_ciphertext_are_read(tmp_path):
    path = tmp_path / "datastore_key.json"
    path.write_text(ST2_KEY_JSON)
    os.chmod(path, 0o600)
    key = crypto.load_key(str(path))
    assert crypto.decrypt(key, ST2_CIPHERTEXT) == "jwt-from-stackstorm \u00e9"
    # and what packrunner writes is the same key format StackStorm reads
    written = json.loads(crypto.DatastoreKey.generate().to_json())
    assert set(written) == {"hmacKey", "aesKeyString", "mode", "size"} and written["mode"] == "CBC"
    assert written["size"] == 256 and written["hmacKey"]["size"] == 256


def test_wrong_key_file_is_a_clear_error_without_the_value(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.set("slurm_jwt", SECRET, secret=True)
    other = crypto.create_key(str(tmp_path / "other_key.json"))
    with pytest.raises(crypto.DecryptionError) as err:
        crypto.decrypt(other, store.get("slurm_jwt"), name="slurm_jwt")
    message = str(err.value)
    assert "slurm_jwt" in message and str(tmp_path / "other_key.json") in message and "another key" in message
    assert SECRET not in message
    store.close()
    # the CLI with the wrong key file: exit 2, "error: ..." naming the key and the file, no traceback
    p = _cli(tmp_path / "s", "get", "slurm_jwt", "--decrypt", key_file=tmp_path / "other_key.json")
    assert p.returncode == 2, p.stderr
    assert "error: cannot decrypt the value of slurm_jwt with the datastore key file" in p.stderr
    assert "Traceback" not in p.stderr and SECRET not in p.stdout + p.stderr
    # a value that is not ciphertext at all
    with pytest.raises(crypto.DecryptionError, match="not encrypted"):
        crypto.decrypt(other, SECRET)


def test_missing_or_malformed_key_file_is_a_clear_error(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.set("slurm_jwt", SECRET, secret=True)
    os.rename(store.key_path, str(tmp_path / "moved.json"))
    store.close()
    store = Store(str(tmp_path / "s"))
    assert crypto.is_ciphertext(store.get("slurm_jwt"))  # reading the ciphertext needs no key
    with pytest.raises(crypto.DatastoreKeyError, match=r"datastore_key.json does not exist.*restore it"):
        store.get("slurm_jwt", decrypt=True)
    bad = tmp_path / "bad.json"
    for text, expected in (("not json", "Expecting value"), ('{"mode": "CBC"}', "missing field 'aesKeyString'"),
                           ('{"aesKeyString": "AAAA", "hmacKey": {"hmacKeyString": "AAAA"}, "mode": "CBC"}',
                            "AES key must be 128, 192 or 256 bits")):
        bad.write_text(text)
        with pytest.raises(crypto.DatastoreKeyError, match="is not a StackStorm/keyczar AES key") as err:
            crypto.load_key(str(bad))
        assert expected in str(err.value)
    store.close()


# -- datastore, CLI, services, templates, config ---------------------------------------------------

def test_cli_key_get_shows_ciphertext_unless_decrypt(tmp_path):
    state = tmp_path / "s"
    assert _cli(state, "set", "slurm_jwt", SECRET, "--encrypt").returncode == 0
    assert _cli(state, "set", "plain", "visible").returncode == 0
    got = _cli(state, "get", "slurm_jwt")
    assert got.returncode == 0 and SECRET not in got.stdout
    ciphertext = got.stdout.strip()
    assert crypto.decrypt(crypto.load_key(str(state / "datastore_key.json")), ciphertext) == SECRET
    assert _cli(state, "get", "slurm_jwt", "--decrypt").stdout.strip() == SECRET
    assert _cli(state, "get", "plain").stdout.strip() == "visible"  # not secret: as it is
    listed = _cli(state, "list")
    assert SECRET not in listed.stdout
    assert {k["name"]: k["value"] for k in json.loads(listed.stdout)}["slurm_jwt"] == ciphertext
    assert {k["name"]: k["value"] for k in json.loads(_cli(state, "list", "--decrypt").stdout)}["slurm_jwt"] == SECRET


def test_services_get_value_decrypts_only_when_asked(tmp_path):
    store = Store(str(tmp_path / "s"))
    svc = DatastoreService(store, "demo", "Sensor")
    assert svc.set_value("slurm_jwt", SECRET, local=False, encrypt=True)
    svc.set_value("plain", "visible", local=False)
    assert crypto.is_ciphertext(svc.get_value("slurm_jwt", local=False))
    assert svc.get_value("slurm_jwt", local=False, decrypt=True) == SECRET
    assert svc.get_value("plain", local=False, decrypt=True) == "visible"
    assert SECRET not in [kv.value for kv in svc.list_values(local=False)]
    store.close()


def test_decrypt_kv_filter_and_st2kv_lookup(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.set("tok", SECRET, secret=True)
    ctx = build_context(store=store)
    assert render_value("{{ st2kv.system.tok | decrypt_kv }}", ctx) == SECRET
    assert render_value("Bearer {{ st2kv.system.tok | decrypt_kv }}", ctx) == "Bearer " + SECRET
    assert crypto.is_ciphertext(render_value("{{ st2kv.system.tok }}", ctx))  # as StackStorm: ciphertext
    ciphertext = store.get("tok")
    assert render_value("{{ c | decrypt_kv }}", dict(ctx, c=ciphertext)) == SECRET  # a ciphertext string
    with pytest.raises(TemplateRenderError, match=r'Referenced datastore item "st2kv.system.missing" doesn'):
        render_value("{{ st2kv.system.missing | decrypt_kv }}", ctx)
    store.close()


def test_config_secret_property_is_decrypted_like_stackstorm(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.set("tok", SECRET, secret=True)
    store.set("clear", "not-encrypted")
    pack = Pack(DEMO)
    # api_token is `secret: true`: its rendered value (the ciphertext) is decrypted
    assert load_config(pack, {"api_token": "{{ st2kv.system.tok }}"}, store=store)["api_token"] == SECRET
    # greeting is not secret: it gets what StackStorm gives, the ciphertext
    cfg = load_config(pack, {"api_token": "{{ st2kv.system.tok }}", "greeting": "{{ st2kv.system.tok }}"},
                      store=store)
    assert crypto.is_ciphertext(cfg["greeting"])
    # a secret property must be one encrypted key, not clear text and not `| decrypt_kv`
    for value in ("{{ st2kv.system.clear }}", "{{ st2kv.system.tok | decrypt_kv }}"):
        with pytest.raises(ConfigError, match="config key 'api_token' is marked secret") as err:
            load_config(pack, {"api_token": value}, store=store)
        assert SECRET not in str(err.value) and "not-encrypted" not in str(err.value)
    store.close()


def test_state_files_are_private_from_the_start(tmp_path):
    old = os.umask(0o022)
    try:
        store = Store(str(tmp_path / "s"))
        store.set("slurm_jwt", SECRET, secret=True)
        store.set("plain", "p")
        assert os.path.exists(store.path + "-wal")  # open connection: the WAL exists
        assert _mode(tmp_path / "s") == 0o700
        for path in (store.path, store.path + "-wal", store.path + "-shm", store.key_path):
            assert _mode(path) == 0o600, path
        store.close()
    finally:
        os.umask(old)


def test_loose_state_files_are_tightened_on_start_with_a_warning(tmp_path, caplog):
    state = tmp_path / "s"
    Store(str(state)).set("slurm_jwt", SECRET, secret=True)
    os.chmod(state, 0o755)
    os.chmod(state / "packrunner.sqlite", 0o644)
    os.chmod(state / "datastore_key.json", 0o644)
    with caplog.at_level(logging.WARNING, logger="packrunner.datastore"):
        store = Store(str(state))
    assert _mode(state) == 0o700 and _mode(state / "packrunner.sqlite") == 0o600
    assert _mode(state / "datastore_key.json") == 0o600
    text = caplog.text
    for what in ("state directory", "datastore file", "datastore key file"):
        assert what in text
    assert "was mode 0644 (readable by other users): changed to 0600" in text
    assert "was mode 0755 (readable by other users): changed to 0700" in text
    store.close()


def test_sqlite_file_and_wal_hold_no_plaintext_of_a_secret(tmp_path):
    store = Store(str(tmp_path / "s"))
    store.set("slurm_jwt", SECRET, secret=True)
    store.set("plain", "control-" + SECRET[::-1])  # a value that is not secret is stored as it is
    raw = _raw(store)
    assert ("control-" + SECRET[::-1]).encode() in raw  # the search does find clear values
    assert SECRET.encode() not in raw
    store.close()


def test_clear_text_secrets_of_an_older_state_file_are_encrypted_and_wiped(tmp_path, caplog):
    state = tmp_path / "s"
    state.mkdir()
    # an older packrunner's file: the same kv table, PRAGMA user_version 0, the secret in clear text
    conn = sqlite3.connect(str(state / "packrunner.sqlite"))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE kv (scope TEXT NOT NULL DEFAULT 'system', name TEXT NOT NULL, value TEXT NOT NULL, "
                 "expire_at REAL, secret INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, name))")
    conn.execute("INSERT INTO kv(scope, name, value, secret) VALUES ('system', 'slurm_jwt', ?, 1)", (SECRET,))
    conn.execute("INSERT INTO kv(scope, name, value, secret) VALUES ('system', 'plain', 'p', 0)")
    for i in range(200):  # more rows: the secret's page and its neighbours are not all rewritten by the update
        conn.execute("INSERT INTO kv(scope, name, value) VALUES ('system', ?, ?)", ("k%03d" % i, "v" * 40))
    conn.commit()
    conn.close()
    with open(state / "packrunner.sqlite", "rb") as f:
        assert SECRET.encode() in f.read()
    with caplog.at_level(logging.WARNING, logger="packrunner.datastore"):
        store = Store(str(state))
    assert "encrypted 1 secret value(s) that an older packrunner stored in clear text" in caplog.text
    assert "st2kv.system:slurm_jwt" in caplog.text and "rotate them" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET.encode() not in _raw(store)
    assert crypto.is_ciphertext(store.get("slurm_jwt")) and store.get("slurm_jwt", decrypt=True) == SECRET
    assert store.get("plain") == "p"
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="packrunner.datastore"):
        Store(str(state)).close()  # once only
    assert "older packrunner" not in caplog.text


def test_cli_key_load_like_st2_key_load(tmp_path):
    """`key load FILE` (st2client KeyValuePairLoadCommand): secrets from a file, never on a command line;
    `encrypted: true` loads StackStorm's ciphertext as it is when it decrypts with the key file."""
    state, key_file = tmp_path / "s", tmp_path / "st2_datastore_key.json"
    key_file.write_text(ST2_KEY_JSON)
    os.chmod(key_file, 0o600)
    items = tmp_path / "keys.yaml"
    items.write_text("- {name: slurm_jwt, value: '%s', secret: true}\n"
                     "- {name: from_st2, value: %s, secret: true, encrypted: true}\n"
                     "- {name: limits, value: {cpus: 4}}\n"
                     "- {name: pref, value: dark, scope: st2kv.user, ttl: 600}\n" % (SECRET, ST2_CIPHERTEXT))
    p = _cli(state, "load", str(items), key_file=key_file)
    assert p.returncode == 2 and "item 'limits' has a value that is not a string; pass -c/--convert" in p.stderr
    p = _cli(state, "load", "-c", str(items), key_file=key_file)
    assert p.returncode == 0, p.stderr
    assert SECRET not in p.stdout + p.stderr and ST2_CIPHERTEXT not in p.stdout
    assert [(k["name"], k["secret"], k["scope"]) for k in json.loads(p.stdout)] == [
        ("slurm_jwt", True, "st2kv.system"), ("from_st2", True, "st2kv.system"), ("limits", False, "st2kv.system"),
        ("pref", False, "st2kv.user")]
    assert _cli(state, "get", "slurm_jwt", "--decrypt", key_file=key_file).stdout.strip() == SECRET
    assert _cli(state, "get", "from_st2", key_file=key_file).stdout.strip() == ST2_CIPHERTEXT  # stored as it is
    assert _cli(state, "get", "from_st2", "--decrypt", key_file=key_file).stdout.strip() == "jwt-from-stackstorm \u00e9"
    assert json.loads(_cli(state, "get", "limits", key_file=key_file).stdout) == {"cpus": 4}
    # ciphertext of another key file is refused, naming the item
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- {name: x, value: %s, secret: true, encrypted: true}\n" % ST2_CIPHERTEXT)
    assert _cli(tmp_path / "own", "set", "a", "b", "--encrypt").returncode == 0  # a state dir with its own key
    p = _cli(tmp_path / "own", "load", str(wrong))
    assert p.returncode == 2 and "item 'x': cannot decrypt the value of x with the datastore key file" in p.stderr
    # a broken file is reported by line, never with its text (it may hold a secret)
    broken = tmp_path / "broken.yaml"
    broken.write_text("- name: slurm_jwt\n  value: '%s\n  secret: [true\n" % SECRET)
    p = _cli(state, "load", str(broken))
    assert p.returncode == 2 and "is not valid JSON/YAML" in p.stderr and SECRET not in p.stderr
