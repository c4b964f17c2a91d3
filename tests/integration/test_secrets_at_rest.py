"""Secrets at rest, tried as another local user (issue 15, item 2).

Before: ``packrunner key set --encrypt`` kept the value in clear text in a 0644
``packrunner.sqlite`` in a 0755 state directory, and the testbed's ``rest.env`` (the Slurm JWT)
was 0644: another local user read the JWT. Here user ``nobody`` (``runuser -u nobody``, so
these tests need root) tries to read the packrunner state (directory, SQLite file and its WAL,
datastore key file) and the testbed's ``rest.env``; each attempt must be refused. A
world-readable control file beside them proves the refusal comes from the files' modes, not from
a parent directory nobody cannot enter.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import testbed

REPO = Path(__file__).resolve().parents[2]
SECRET = "eyJhbGciOiJIUzI1NiJ9.at-rest-" + "Zq9" * 10


def _as_nobody(*argv):
    return subprocess.run(["runuser", "-u", "nobody", "--", *map(str, argv)], capture_output=True, text=True,
                          timeout=30)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _assert_nobody_can_read_a_control_file_in(directory):
    control = Path(directory) / "control-world-readable.txt"
    control.write_text("readable")
    os.chmod(control, 0o644)
    try:
        p = _as_nobody("cat", control)
        assert p.returncode == 0 and p.stdout == "readable", p.stderr
    finally:
        control.unlink()


def _assert_refused(*argv):
    p = _as_nobody(*argv)
    assert p.returncode != 0 and "Permission denied" in p.stderr, (argv, p.returncode, p.stderr)
    assert SECRET not in p.stdout


@pytest.fixture
def shared_dir():
    """A directory every user may enter (pytest's tmp_path is under a 0700 directory, where every
    read as nobody would fail whatever the files' modes)."""
    if os.geteuid() != 0:
        pytest.fail("reading as user nobody needs root (runuser)", pytrace=False)
    path = Path(tempfile.mkdtemp(prefix="slurmdeploy-secrets-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_packrunner_state_is_refused_to_another_user(shared_dir):
    state = shared_dir / "state"
    old_umask = os.umask(0o022)  # the usual umask: files would be 0644 unless created private
    try:
        p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", str(REPO), "--state-dir", str(state),
                            "key", "set", "slurm_jwt", SECRET, "--encrypt"], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        from packrunner.datastore import Store

        store = Store(str(state))  # an open store, as a running runner holds it: the WAL exists
        store.set("deployment_state", "not secret")
    finally:
        os.umask(old_umask)
    try:
        files = [store.path, store.path + "-wal", store.path + "-shm", store.key_path]
        assert all(os.path.exists(f) for f in files), files
        assert _mode(state) == 0o700
        assert {f: _mode(f) for f in files} == {f: 0o600 for f in files}
        _assert_nobody_can_read_a_control_file_in(shared_dir)
        _assert_refused("ls", state)
        _assert_refused("cat", store.path)
        # the files refuse on their own too, with the directory opened up (an operator's chmod)
        os.chmod(state, 0o755)
        _assert_nobody_can_read_a_control_file_in(state)
        for f in files:
            _assert_refused("cat", f)
        # the raw SQLite file and its WAL never hold the secret's bytes
        raw = b"".join(Path(f).read_bytes() for f in files[:2])
        assert b"not secret" in raw and SECRET.encode() not in raw
    finally:
        store.close()
    # the next start tightens the directory again, saying so
    p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", str(REPO), "--state-dir", str(state),
                        "key", "get", "slurm_jwt", "--decrypt"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == SECRET
    assert f"state directory {state} was mode 0755 (readable by other users): changed to 0700" in p.stderr
    assert _mode(state) == 0o700


def test_testbed_rest_env_with_the_jwt_is_refused_to_another_user(slurm_cluster):
    if os.geteuid() != 0:
        pytest.fail("reading as user nobody needs root (runuser)", pytrace=False)
    state_dir = Path(slurm_cluster["state_dir"])
    rest_env = state_dir / "rest.env"
    assert "SLURM_JWT=" in rest_env.read_text()
    assert _mode(rest_env) == 0o600
    _assert_nobody_can_read_a_control_file_in(state_dir)  # slurm.sh keeps the state dir world-traversable
    p = _as_nobody("cat", rest_env)
    assert p.returncode != 0 and "Permission denied" in p.stderr and "SLURM_JWT" not in p.stdout
    # a rest.env left 0644 by an older testbed is tightened by the next start, with a log line
    os.chmod(rest_env, 0o644)
    # already running: slurm.sh re-mints the token into rest.env (stdout holds it: never shown)
    p = subprocess.run([str(testbed.SLURM_SH), "start", slurm_cluster["flavour"], str(state_dir)],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"tightening {rest_env} to 0600 (it holds a secret; was 644)" in p.stderr
    assert _mode(rest_env) == 0o600
    lines = rest_env.read_text().splitlines()
    assert sum(line.startswith("SLURM_JWT=") for line in lines) == 1 and "SLURM_REST_URL=" + slurm_cluster["url"] in lines
    p = _as_nobody("cat", rest_env)
    assert p.returncode != 0 and "SLURM_JWT" not in p.stdout


def test_the_pack_reads_its_encrypted_jwt_through_the_runner(slurm_cluster, tmp_path):
    """`slurm_jwt_key` under packrunner: the JWT stored with --encrypt, the action reads it with
    get_value(decrypt=True) and reaches the real slurmrestd; the token is in no record and not
    in the raw SQLite file."""
    from packrunner import Runner
    from packrunner.datastore import Store

    jwt = str(slurm_cluster["jwt"])
    state = tmp_path / "state"
    store = Store(str(state))
    store.set("slurm_jwt", jwt, secret=True)
    store.close()
    config = {"slurm_url": slurm_cluster["url"], "client_id": slurm_cluster["user"], "slurm_jwt_key": "slurm_jwt",
              "connect_timeout": 2, "read_timeout": 20}
    with Runner(str(REPO), config=config, state_dir=str(state)) as runner:
        record = runner.run_action("slurmdeploy.ping", {})
        assert record["status"] == "succeeded", record.get("error")
        assert runner.datastore.get("slurm_jwt") != jwt
        raw = b"".join(Path(runner.datastore.path + s).read_bytes() for s in ("", "-wal")
                       if Path(runner.datastore.path + s).exists())
    assert jwt not in repr(record)
    assert jwt.encode() not in raw
