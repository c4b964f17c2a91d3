"""Start and stop the integration-test daemons (etcd, Slurm, a local OIDC identity provider)
from Python.

A thin wrapper over ``testbed/etcd.sh``, ``testbed/slurm.sh`` and ``testbed/idp.sh``: they do the work and print
``KEY=VALUE`` lines, this module parses them. Used by ``tests/conftest.py`` and importable
from tests as ``testbed``.

Tokens never appear in output: :class:`Secret` (a ``str``) and :class:`TestbedInfo` (a
``dict``) redact them in ``repr()``, which is what pytest shows in assertion messages, and
error messages built here have JWTs scrubbed.
"""

import os
import random
import re
import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ETCD_SH = REPO / "testbed" / "etcd.sh"
SLURM_SH = REPO / "testbed" / "slurm.sh"
IDP_SH = REPO / "testbed" / "idp.sh"

# script timeouts (seconds); a Slurm start from nothing debootstraps a trixie or forky chroot
ETCD_START_TIMEOUT = 600
SLURM_START_TIMEOUT = 1800
STOP_TIMEOUT = 120
IDP_START_TIMEOUT = 600  # a first start may apt-get install nodejs and npm ci

_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SECRET_KEYS = {"jwt", "token", "SLURM_JWT", "client_secret"}


class TestbedError(RuntimeError):
    """A testbed script failed; the message carries the tail of its stderr."""

    __test__ = False  # not a test class, despite the name


class Secret(str):
    """A string whose ``repr`` does not show it (a token)."""

    def __repr__(self):
        return "'<redacted>'"


class TestbedInfo(dict):
    """A dict whose ``repr`` redacts token-valued keys."""

    __test__ = False

    def __repr__(self):
        return repr({k: ("<redacted>" if k in _SECRET_KEYS else v) for k, v in self.items()})


def scrub(text):
    """Remove JWTs (and ``SLURM_JWT=`` values) from ``text``."""
    text = re.sub(r"(SLURM_JWT=)\S+", r"\1<redacted>", text or "")
    return _JWT_RE.sub("<redacted-jwt>", text)


def parse_env(text):
    """``KEY=VALUE`` lines -> dict (surrounding double quotes removed; other lines ignored)."""
    out = {}
    for line in (text or "").splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
        if m:
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out[m.group(1)] = value
    return out


def _tail(text, n=40):
    return "\n".join(scrub(text).splitlines()[-n:])


def _run(argv, *, timeout, env=None, check=True):
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=timeout,
            env=full_env, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        raise TestbedError(
            f"{Path(str(argv[0])).name} {' '.join(map(str, argv[1:2]))} timed out after {timeout}s;"
            f" stderr tail:\n{_tail(err)}"
        ) from None
    if check and proc.returncode != 0:
        raise TestbedError(
            f"{Path(str(argv[0])).name} {' '.join(map(str, argv[1:]))} failed (exit {proc.returncode});"
            f" stderr tail:\n{_tail(proc.stderr)}"
        )
    return proc


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n, low=20000, high=32000):
    """``n`` distinct free loopback TCP ports below the ephemeral range (best effort)."""
    ports = []
    while len(ports) < n:
        p = random.randint(low, high)
        if p not in ports and _port_free(p):
            ports.append(p)
    return ports


def _state(state_dir):
    path = Path(state_dir)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


# ------------------------------------------------------------------ etcd --

def _etcd_info(env, state_dir):
    port = int(env["SDP_CONFIG_PORT"])
    host = env.get("SDP_CONFIG_HOST", "127.0.0.1")
    return TestbedInfo(
        host=host, port=port, pid=int(env["ETCD_PID"]),
        url=env.get("ETCD_URL", f"http://{host}:{port}"), state_dir=str(state_dir),
    )


def start_etcd(state_dir, port=None, peer_port=None, wipe=True):
    """Start a throw-away etcd; returns ``{host, port, pid, url, state_dir}``.

    ``wipe=False`` keeps the data dir and returns the running server if there is one.
    """
    env = {"ETCD_LAB_WIPE": "1" if wipe else "0"}
    if port:
        env["ETCD_LAB_PORT"] = str(port)
    if peer_port:
        env["ETCD_LAB_PEER_PORT"] = str(peer_port)
    proc = _run([ETCD_SH, "start", _state(state_dir)], timeout=ETCD_START_TIMEOUT, env=env)
    return _etcd_info(parse_env(proc.stdout), state_dir)


def etcd_status(state_dir):
    """The info dict of a running, healthy etcd of ``state_dir``, else None."""
    if not Path(state_dir).is_dir():
        return None
    proc = _run([ETCD_SH, "status", state_dir], timeout=30, check=False)
    if proc.returncode != 0:
        return None
    return _etcd_info(parse_env(proc.stdout), state_dir)


def stop_etcd(state_dir):
    if Path(state_dir).is_dir():
        _run([ETCD_SH, "stop", state_dir], timeout=STOP_TIMEOUT)


# ----------------------------------------------------------------- Slurm --

def _slurm_info(env, state_dir, jwt):
    apis = env.get("SLURM_REST_APIS", "").split()
    accounting = env.get("SLURM_ACCOUNTING") == "1"
    return TestbedInfo(
        url=env["SLURM_REST_URL"],
        api_version=env.get("SLURM_REST_API") or (apis[-1] if apis else None),
        api_versions=apis,
        jwt=Secret(jwt),
        user=env.get("SLURM_REST_USER"),
        conf=env.get("SLURM_CONF"),
        slurm_version=env.get("SLURM_VERSION"),
        flavour=env.get("SLURM_LAB_FLAVOUR"),
        state_dir=env.get("SLURM_LAB_STATE_DIR", str(state_dir)),
        cluster=env.get("SLURM_CLUSTER"),
        accounting=accounting,
        account=env.get("SLURM_ACCOUNT") if accounting else None,
        dbd_port=int(env["SLURMDBD_PORT"]) if accounting and env.get("SLURMDBD_PORT") else None,
    )


def start_slurm(state_dir, flavour="trixie", ports=None, env=None, accounting=False):
    """Start slurmctld + slurmd + slurmrestd (JWT auth) on loopback.

    ``flavour``: ``"trixie"`` (Slurm 24.11), ``"bookworm"`` (22.05) or ``"forky"`` (26.05).

    ``ports``: optional ``(slurmctld, slurmd, slurmrestd[, slurmdbd])`` ports (defaults: the
    script's, or the ``SLURM_LAB_*_PORT`` environment; with three ports and ``accounting``, a
    free one is picked for slurmdbd). ``env``: more of ``slurm.sh``'s knobs, e.g.
    ``{"SLURM_LAB_JWKS": path}`` to make slurmctld also trust the RS256 keys of that JWKS
    file. ``accounting``: also start MariaDB and slurmdbd (``SLURM_LAB_ACCOUNTING=1``: the
    cluster's jobs go to slurmdbd, slurmrestd serves ``/slurmdb/<version>/...``, the job users
    belong to the account ``account``); costs a few seconds per start (README, "Accounting in
    the testbed").

    Returns ``{url, api_version, api_versions, jwt, user, conf, slurm_version, flavour,
    state_dir, cluster, accounting, account, dbd_port}`` (``account``/``dbd_port`` None without
    accounting); ``jwt`` is a :class:`Secret`.
    """
    env = dict(env or {})
    if accounting:
        env["SLURM_LAB_ACCOUNTING"] = "1"
    if ports:
        env.update(SLURM_LAB_CTLD_PORT=str(ports[0]), SLURM_LAB_SLURMD_PORT=str(ports[1]),
                   SLURM_LAB_REST_PORT=str(ports[2]))
        if len(ports) > 3:
            env["SLURM_LAB_DBD_PORT"] = str(ports[3])
        elif accounting and "SLURM_LAB_DBD_PORT" not in env:
            env["SLURM_LAB_DBD_PORT"] = str(next(p for p in free_ports(4) if p not in ports))
    proc = _run([SLURM_SH, "start", flavour, _state(state_dir)], timeout=SLURM_START_TIMEOUT, env=env)
    values = parse_env(proc.stdout)
    if "SLURM_REST_URL" not in values or not values.get("SLURM_JWT"):
        raise TestbedError(f"slurm.sh start printed no SLURM_REST_URL/SLURM_JWT; stderr tail:\n{_tail(proc.stderr)}")
    return _slurm_info(values, state_dir, values["SLURM_JWT"])


def slurm_status(state_dir):
    """The info dict (with a freshly minted token) of a running cluster, else None."""
    rest_env = Path(state_dir) / "rest.env"
    if not rest_env.is_file():
        return None
    proc = _run([SLURM_SH, "status", state_dir], timeout=30, check=False)
    running = {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(")") and " running " in line}
    if proc.returncode != 0 or not {"slurmctld", "slurmd", "slurmrestd"} <= running:
        return None
    values = parse_env(rest_env.read_text())
    if values.get("SLURM_ACCOUNTING") == "1" and not {"mariadbd", "slurmdbd"} <= running:
        return None
    return _slurm_info(values, state_dir, mint_token(state_dir, values.get("SLURM_REST_USER")))


def stop_slurm(state_dir):
    if Path(state_dir).is_dir():
        _run([SLURM_SH, "stop", state_dir], timeout=STOP_TIMEOUT)


def mint_token(state_dir, user=None, lifespan=3600):
    """A new HS256 JWT for ``user`` (default: the testbed's job user) from ``scontrol token``."""
    argv = [SLURM_SH, "token", state_dir]
    if user or lifespan:
        argv += [user or os.environ.get("SLURM_LAB_USER", "slurmtest"), str(int(lifespan or 86400))]
    proc = _run(argv, timeout=60)
    token = proc.stdout.strip()
    if not token:
        raise TestbedError(f"slurm.sh token printed nothing; stderr tail:\n{_tail(proc.stderr)}")
    return Secret(token)


def slurmdbd(state_dir, action):
    """Stop (``"stop"``) or start (``"start"``) only slurmdbd of a running accounting cluster
    (``slurm.sh dbd``; slurmctld and MariaDB keep running). Raises TestbedError on failure."""
    _run([SLURM_SH, "dbd", action, state_dir], timeout=STOP_TIMEOUT)


def slurm_exec(state_dir, *argv, check=False, timeout=60):
    """Run a Slurm CLI (``squeue``, ``scontrol``, ``sbatch``...) in the cluster's root.

    Returns the :class:`subprocess.CompletedProcess` (text mode); ``check=True`` raises
    :class:`TestbedError` on a non-zero exit.
    """
    return _run([SLURM_SH, "exec", state_dir, *argv], timeout=timeout, check=check)


# ------------------------------------------------------------------- IdP --

def _idp_info(env):
    secret_file = env["IDP_CLIENT_SECRET_FILE"]
    return TestbedInfo(
        authority=env["IDP_AUTHORITY"], issuer=env["IDP_ISSUER"], ca_file=env["IDP_CA_FILE"],
        client_id=env["IDP_CLIENT_ID"], client_secret=Secret(Path(secret_file).read_text().strip()),
        client_secret_file=secret_file, scope=env["IDP_SCOPE"], slurm_user=env["IDP_SLURM_USER"],
        jwks_file=env["IDP_JWKS_FILE"], ttl=int(env["IDP_TTL"]), stats_url=env["IDP_STATS_URL"],
        pid=int(env["IDP_PID"]), port=int(env["IDP_PORT"]), state_dir=env["IDP_STATE_DIR"],
    )


def start_idp(state_dir, port=None, ttl=None, slurm_user=None, extra_clients=None, key_file=None):
    """Start the local OIDC identity provider (``testbed/idp.sh``) on loopback https.

    Args:
        state_dir: its state directory (CA, signing key, client secret, JWKS, log, pid file).
        port: https port (default: the script's 18443).
        ttl: access-token lifetime in seconds (default 3600).
        slurm_user: the tokens' ``sun`` claim (default: the script's ``slurmtest``).
        extra_clients: ``"id:secret:sun,..."`` more clients (empty sun: no ``sun`` claim).
        key_file: the private signing key (JWK) to use, e.g. another IdP's
            ``<state_dir>/signing-key.json``, so that one JWKS covers both (default: its own).

    Returns:
        ``{authority, issuer, ca_file, client_id, client_secret, client_secret_file, scope,
        slurm_user, jwks_file, ttl, stats_url, pid, port, state_dir}``; ``client_secret`` is a
        :class:`Secret` and is redacted in the dict's ``repr``.

    Raises:
        TestbedError: the script failed (stderr tail in the message).
    """
    env = {}
    for key, value in (("IDP_LAB_PORT", port), ("IDP_LAB_TTL", ttl), ("IDP_LAB_SLURM_USER", slurm_user),
                       ("IDP_LAB_EXTRA_CLIENTS", extra_clients), ("IDP_LAB_KEY_FILE", key_file)):
        if value is not None:
            env[key] = str(value)
    proc = _run([IDP_SH, "start", _state(state_dir)], timeout=IDP_START_TIMEOUT, env=env)
    values = parse_env(proc.stdout)
    if "IDP_AUTHORITY" not in values:
        raise TestbedError(f"idp.sh start printed no IDP_AUTHORITY; stderr tail:\n{_tail(proc.stderr)}")
    return _idp_info(values)


def stop_idp(state_dir):
    """Stop the IdP that ``start_idp`` recorded in ``state_dir`` (its pid file; never by name)."""
    if Path(state_dir).is_dir():
        _run([IDP_SH, "stop", state_dir], timeout=STOP_TIMEOUT)


def idp_stats(info):
    """The IdP's request counters: ``{requests, token_requests, tokens_issued, token_errors}``.

    ``token_requests`` counts POSTs to the token endpoint, ``tokens_issued`` the successful
    ones, ``token_errors`` the refused ones (e.g. a wrong client secret).
    """
    import requests

    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    try:
        return session.get(info["stats_url"], verify=info["ca_file"], timeout=10).json()
    finally:
        session.close()


def plant_job(cluster, name, label, comment=None, script="#!/bin/bash\nsleep 3000\n"):
    """Submit a *held* job (``hold: true``: it never starts) as the cluster's REST user, with
    any ``name``, mcs_label and comment - what any Slurm user can do, e.g. to plant a
    lookalike of a deployment's job. Returns its job id."""
    from slurmdeploy.auth import StaticJWT
    from slurmdeploy.slurm import JobRequest, SlurmClient

    client = SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]))
    request = JobRequest(name=name, script=script, mcs_label=label, comment=comment,
                         environment={"PATH": "/usr/bin:/bin"}, current_working_directory="/tmp",
                         standard_output="/dev/null")
    body = client.api.submit_body(request)
    body["job"]["hold"] = True  # job_desc hold (every REST version): submitted held
    _, answer = client.request("POST", client.api.submit_path(), body=body)
    job_id = client.api.submitted_job_id(answer)
    if job_id is None:
        raise TestbedError(f"planting job {name!r} failed: {answer.get('errors')}")
    return job_id
