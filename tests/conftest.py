"""Shared pytest fixtures: the real etcd and Slurm testbed, started on demand.

Fixtures (session-scoped unless noted):

- ``etcd_server``    -> ``{host, port, pid, url, state_dir}``: a throw-away etcd on loopback
- ``slurm_cluster``  -> ``{url, api_version, api_versions, jwt, user, conf, slurm_version,
  flavour, state_dir, cluster, accounting, account, dbd_port}``: Slurm 24.11 (trixie chroot) with
  slurmrestd + JWT on loopback, and accounting (slurmdbd + MariaDB: ``/slurmdb/<version>/...``,
  sacct; the job users in account ``account``); ``jwt`` is a :class:`testbed.Secret` (redacted
  in reprs)
- ``slurm_cluster_bookworm`` -> the same for Slurm 22.05 (Debian 12's packages, native)
- ``slurm_cluster_forky`` -> the same for Slurm 26.05 (Debian testing "forky" chroot)
- ``any_slurm_cluster`` (function, parametrized) -> each of the three clusters in turn;
  ``slurm_cluster_of`` (function) -> ``flavour -> cluster info``
- ``etcd_client``    (function) -> ``etcd3gw.Etcd3Client`` connected to ``etcd_server``
- ``configdb_prefix`` (function) -> a unique key prefix such as ``/test-1a2b3c4d``; when the test
  also uses ``etcd_server``, everything under it is deleted afterwards
- ``testbed_dir``    -> the directory holding the daemons' state dirs

Tests that use ``etcd_server``, ``slurm_cluster`` or ``etcd_client``, and everything under
``tests/integration/``, are marked ``integration`` (deselect with ``-m "not integration"``).

Environment:

- ``SLURMDEPLOY_TESTBED_REUSE=1``: keep the daemons running after the session and reuse
  running ones (fixed state dir ``SLURMDEPLOY_TESTBED_DIR``, default
  ``/tmp/slurmdeploy-testbed``, and fixed ports: etcd 12379, Slurm 24.11 16817-16820, 22.05
  16917-16920, 26.05 17017-17020).
  Without it each session gets its own state dir under /tmp and free ports, and stops its
  daemons at the end.
- ``SLURMDEPLOY_INTEGRATION=1``: run the integration tests (``scripts/test.sh`` sets it). Without
  it they are skipped with a message saying how to run them, so ``st2-run-pack-tests`` (and a
  plain ``pytest``) pass with no services and no root. With it, a testbed that cannot start
  (not root, missing packages) is an error, never a silent skip.
- ``SLURMDEPLOY_SLURM_FLAVOUR``: the flavour of ``slurm_cluster``: ``trixie`` (default, Slurm
  24.11), ``bookworm`` or ``forky``.
- ``SLURMDEPLOY_TESTBED_ACCOUNTING=0``: start the three session clusters without slurmdbd and
  MariaDB (default: with them, ``accounting: True`` in their info, ``/slurmdb/...`` served;
  the accounting tests then fail).
"""

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What st2-run-pack-tests puts on PYTHONPATH (lib/ with enable_common_libs, sensors/, actions/,
# actions/lib/), so `pytest` from the pack root imports the pack's modules the same way.
for _p in (REPO / "tests", REPO / "lib", REPO / "sensors", REPO / "actions"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

#: StackStorm's base classes and st2tests, or packrunner's shims of them (a plain directory:
#: usable without installing packrunner, e.g. under st2-run-pack-tests without StackStorm).
ST2_SHIMS = REPO / "packrunner" / "src" / "packrunner" / "compat"


def _stackstorm_or_shims():
    """``"st2"`` when StackStorm's st2tests is importable, else put the shims on sys.path: ``"shims"``."""
    try:
        import st2tests  # noqa: F401
    except ImportError:
        if str(ST2_SHIMS) not in sys.path:
            sys.path.append(str(ST2_SHIMS))
        return "shims"
    return "st2"


ST2 = _stackstorm_or_shims()

#: packrunner's source (src layout), used by the rule replays and metadata validation when
#: packrunner is not installed.
PACKRUNNER_SRC = REPO / "packrunner" / "src"


def _packrunner_installed_or_source():
    """``"installed"`` when ``import packrunner`` works, else put ``packrunner/src`` on sys.path
    (and on ``PYTHONPATH``, for the tests that run ``python -m packrunner``): ``"source"``.

    Why not ``./packrunner`` in requirements-tests.txt: StackStorm's st2-run-pack-tests
    (st2common/bin/st2-run-pack-tests) runs ``pip install -r <pack>/requirements-tests.txt``
    from the caller's working directory, and pip resolves a relative path in a requirements file
    against that directory, not the file's (pip 23.2: ``Invalid requirement: './packrunner'
    ... File './packrunner' does not exist`` when run from /tmp), so the whole pip step would
    fail unless the caller happens to be in the pack root. packrunner's own dependencies
    (PyYAML, jsonschema, Jinja2 in requirements.txt; cryptography in requirements-tests.txt)
    are installed there, so its source runs as it is; the pack itself never needs it at run time.
    """
    try:
        import packrunner.runner  # noqa: F401
    except ImportError:
        # `python -m pytest` from the pack root puts the root on sys.path, where the directory
        # packrunner/ imports as an empty namespace package: drop it before using the source.
        for name in [m for m in sys.modules if m == "packrunner" or m.startswith("packrunner.")]:
            del sys.modules[name]
        sys.path.insert(0, str(PACKRUNNER_SRC))
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKRUNNER_SRC), os.environ.get("PYTHONPATH", "")) if p)
        return "source"
    return "installed"


PACKRUNNER = _packrunner_installed_or_source()


def pytest_report_header(config):
    import pwd

    return [f"StackStorm base classes and st2tests: {'StackStorm' if ST2 == 'st2' else f'shims in {ST2_SHIMS}'}",
            f"packrunner: {'installed' if PACKRUNNER == 'installed' else f'source in {PACKRUNNER_SRC}'}",
            f"user: {pwd.getpwuid(os.geteuid()).pw_name} (uid {os.geteuid()})"]

import testbed  # noqa: E402  (tests/testbed.py)

INTEGRATION_FIXTURES = {"etcd_server", "slurm_cluster", "slurm_cluster_bookworm", "slurm_cluster_forky",
                        "any_slurm_cluster", "slurm_cluster_of", "etcd_client"}
REUSE = os.environ.get("SLURMDEPLOY_TESTBED_REUSE", "") == "1"


#: the opt-in switch of the integration tests (scripts/test.sh sets it)
INTEGRATION_ENV = "SLURMDEPLOY_INTEGRATION"
INTEGRATION_OFF = (
    f"integration test (real etcd and Slurm, started as root): not run without {INTEGRATION_ENV}=1; "
    f"run them with `sudo ./scripts/test.sh` (or `{INTEGRATION_ENV}=1 .venv/bin/python -m pytest` as root)"
)


def integration_enabled():
    """True when the integration tests are opted in (``SLURMDEPLOY_INTEGRATION=1``)."""
    return os.environ.get(INTEGRATION_ENV) == "1"


def pytest_collection_modifyitems(config, items):
    integration_dir = REPO / "tests" / "integration"
    skip = pytest.mark.skip(reason=INTEGRATION_OFF)
    for item in items:
        path = Path(str(getattr(item, "path", item.fspath)))
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())) or integration_dir in path.parents:
            item.add_marker(pytest.mark.integration)
            if not integration_enabled():
                item.add_marker(skip)


def _require_root():
    if os.geteuid() == 0:
        return
    pytest.fail(f"{INTEGRATION_ENV}=1 but the integration testbed (etcd, Slurm) must be started as root: "
                "run scripts/test.sh as root", pytrace=False)


def _mounted_under(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            mnt = line.split()[1]
            if mnt == path or mnt.startswith(path + "/"):
                return True
    return False


@pytest.fixture(scope="session")
def testbed_dir():
    if REUSE:
        path = os.environ.get("SLURMDEPLOY_TESTBED_DIR", "/tmp/slurmdeploy-testbed")
        os.makedirs(path, exist_ok=True)
        yield path
        return
    # slurmrestd and job users must traverse every ancestor (no pytest tmp_path: it is 0700)
    path = tempfile.mkdtemp(prefix="slurmdeploy-testbed-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    # daemons are stopped by their fixtures (torn down before this one); never delete
    # through a mount that is still there
    if not _mounted_under(path):
        shutil.rmtree(path, ignore_errors=True)


def _start(kind, start, status, stop, state_dir):
    """Start (or, with REUSE, reuse) a daemon; turn script failures into loud test errors."""
    _require_root()
    try:
        if REUSE:
            info = status(state_dir)
            if info is not None:
                return info
            return start(state_dir, reuse=True)
        return start(state_dir, reuse=False)
    except testbed.TestbedError as exc:
        pytest.fail(f"could not start the {kind} testbed in {state_dir}:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def etcd_server(testbed_dir):
    state_dir = os.path.join(testbed_dir, "etcd")

    def start(sd, reuse):
        if reuse:
            return testbed.start_etcd(sd)
        port, peer = testbed.free_ports(2)
        return testbed.start_etcd(sd, port=port, peer_port=peer)

    info = _start("etcd", start, testbed.etcd_status, testbed.stop_etcd, state_dir)
    yield info
    if not REUSE:
        testbed.stop_etcd(state_dir)


#: the session clusters run slurmdbd + MariaDB (issue 17) unless SLURMDEPLOY_TESTBED_ACCOUNTING=0: one
#: cluster per flavour serves the accounting tests and all others (a second cluster per flavour
#: would cost a whole start, and a second auth/slurm cluster cannot run in the same chroot)
ACCOUNTING = os.environ.get("SLURMDEPLOY_TESTBED_ACCOUNTING", "1") != "0"


def _slurm(testbed_dir, flavour, name, accounting=ACCOUNTING):
    """Start (or reuse) a cluster of ``flavour`` in ``testbed_dir/name``; stop it afterwards."""
    state_dir = os.path.join(testbed_dir, name)
    # (slurmctld, slurmd, slurmrestd, slurmdbd); None: the script's defaults 16817-16820
    reuse_ports = {"slurm": None, "slurm-bookworm": (16917, 16918, 16920, 16919),
                   "slurm-forky": (17017, 17018, 17020, 17019)}.get(name)

    def start(sd, reuse):
        return testbed.start_slurm(sd, flavour=flavour, ports=reuse_ports if reuse else testbed.free_ports(4),
                                   accounting=accounting)

    def status(sd):
        info = testbed.slurm_status(sd)
        # a reused cluster started with the other accounting setting is restarted
        return info if info is not None and info["accounting"] == accounting else None

    info = _start(f"Slurm ({flavour})", start, status, testbed.stop_slurm, state_dir)
    yield info
    if not REUSE:
        testbed.stop_slurm(state_dir)


@pytest.fixture(scope="session")
def slurm_cluster(testbed_dir):
    yield from _slurm(testbed_dir, os.environ.get("SLURMDEPLOY_SLURM_FLAVOUR", "trixie"), "slurm")


@pytest.fixture(scope="session")
def slurm_cluster_bookworm(testbed_dir):
    """Slurm 22.05 (Debian 12's own packages, REST v0.0.36-v0.0.38), beside ``slurm_cluster``."""
    yield from _slurm(testbed_dir, "bookworm", "slurm-bookworm")


@pytest.fixture(scope="session")
def slurm_cluster_forky(testbed_dir):
    """Slurm 26.05 (Debian testing chroot, REST v0.0.42-v0.0.45), beside ``slurm_cluster``."""
    yield from _slurm(testbed_dir, "forky", "slurm-forky")


#: flavour -> the session fixture of its cluster
SLURM_FLAVOUR_FIXTURES = {"trixie": "slurm_cluster", "bookworm": "slurm_cluster_bookworm",
                          "forky": "slurm_cluster_forky"}


@pytest.fixture
def slurm_cluster_of(request):
    """A function ``flavour -> cluster info`` starting that flavour's session cluster."""

    def get(flavour):
        chosen = os.environ.get("SLURMDEPLOY_SLURM_FLAVOUR", "trixie")
        if flavour == chosen:
            # slurm_cluster already runs it: a second auth/slurm cluster in the same chroot would
            # not come up (see SLURM_LAB_AUTH in testbed/slurm.sh)
            return request.getfixturevalue("slurm_cluster")
        if flavour == "trixie":
            pytest.skip("slurm_cluster runs another flavour (SLURMDEPLOY_SLURM_FLAVOUR)")
        return request.getfixturevalue(SLURM_FLAVOUR_FIXTURES[flavour])

    return get


@pytest.fixture(params=sorted(SLURM_FLAVOUR_FIXTURES))
def any_slurm_cluster(request, slurm_cluster_of):
    """Each testbed flavour in turn: Slurm 22.05 (bookworm), 26.05 (forky) and 24.11 (trixie)."""
    return slurm_cluster_of(request.param)


@pytest.fixture
def etcd_client(etcd_server):
    from etcd3gw.client import Etcd3Client

    client = Etcd3Client(host=etcd_server["host"], port=etcd_server["port"], protocol="http", timeout=30)
    yield client
    session = getattr(client, "session", None)
    if session is not None:
        session.close()


@pytest.fixture
def configdb_prefix(request):
    prefix = f"/test-{uuid.uuid4().hex[:8]}"
    yield prefix
    if "etcd_server" in request.fixturenames:
        from etcd3gw.client import Etcd3Client

        info = request.getfixturevalue("etcd_server")
        client = Etcd3Client(host=info["host"], port=info["port"], protocol="http", timeout=30)
        try:
            client.delete_prefix(prefix + "/")
        except Exception:  # cleanup is best effort
            pass


# ---------------------------------------------------------------------------------------------
# JWKS auth (issue 3): a local OIDC identity provider and a Slurm cluster that trusts its keys.
#
# - ``oidc_provider``  -> ``{authority, issuer, ca_file, client_id, client_secret, scope, slurm_user,
#   jwks_file, ttl, stats_url, pid, port, state_dir, ..., no_sun_client}``: testbed/idp.sh on loopback
#   https (self-signed CA), tokens valid 3600 s with ``sun`` = the Slurm testbed's job user;
#   ``no_sun_client`` = ``{client_id, client_secret}`` of a second client whose tokens carry no
#   ``sun`` (like Entra's). Secrets are :class:`testbed.Secret` (redacted in reprs).
# - ``oidc_provider_short_ttl`` -> the same for a second IdP whose tokens live ``IDP_SHORT_TTL`` s,
#   signing with the first one's key (so the same JWKS covers it).
# - ``slurm_cluster_jwks`` (function, parametrized) -> Slurm 24.11 (trixie), then 26.05 (forky): like
#   ``slurm_cluster`` (own state dir and ports) with ``AuthAltParameters=...,jwks=<the IdP's JWKS>``;
#   one session cluster per flavour (``slurm_cluster_jwks_<flavour>``). Internal auth is munge: a second auth/slurm
#   cluster beside ``slurm_cluster`` in the shared chroot fails to verify its own credentials
#   ("decode_jwt: jwt_decode (with key) failure: Invalid argument"; see SLURM_LAB_AUTH in
#   testbed/slurm.sh).
# With SLURMDEPLOY_TESTBED_REUSE=1 the IdPs are restarted on fixed ports (18443, 18444; the signing
# key and CA stay in their state dirs) and the clusters use ports 16837/16838/16840 (24.11) and
# 17037/17038/17040 (26.05).
# ---------------------------------------------------------------------------------------------

IDP_SHORT_TTL = 6  # seconds; tests pair it with token_expiry_margin 2 (renewal every ~4 s)
#: flavour -> fixed ports of its JWKS cluster under SLURMDEPLOY_TESTBED_REUSE=1
JWKS_FLAVOUR_PORTS = {"trixie": (16837, 16838, 16840), "forky": (17037, 17038, 17040)}
JWKS_FIXTURES = {"oidc_provider", "oidc_provider_short_ttl", "slurm_cluster_jwks", "slurm_cluster_jwks_trixie",
                 "slurm_cluster_jwks_forky"}
INTEGRATION_FIXTURES |= JWKS_FIXTURES


def _start_idp(testbed_dir, name, port, **kwargs):
    import secrets

    _require_root()
    state_dir = os.path.join(testbed_dir, name)
    no_sun = testbed.TestbedInfo(client_id=f"{name}-entra-like-app", client_secret=testbed.Secret(secrets.token_hex(16)))
    try:
        info = testbed.start_idp(state_dir, port=port if REUSE else testbed.free_ports(1)[0],
                                 extra_clients=f"{no_sun['client_id']}:{no_sun['client_secret']}:", **kwargs)
    except testbed.TestbedError as exc:
        pytest.fail(f"could not start the identity provider in {state_dir}:\n{exc}", pytrace=False)
    info["no_sun_client"] = no_sun
    return info


@pytest.fixture(scope="session")
def oidc_provider(testbed_dir):
    info = _start_idp(testbed_dir, "idp", 18443)
    yield info
    if not REUSE:
        testbed.stop_idp(info["state_dir"])


@pytest.fixture(scope="session")
def oidc_provider_short_ttl(testbed_dir, oidc_provider):
    key_file = os.path.join(oidc_provider["state_dir"], "signing-key.json")
    info = _start_idp(testbed_dir, "idp-short", 18444, ttl=IDP_SHORT_TTL, key_file=key_file)
    yield info
    if not REUSE:
        testbed.stop_idp(info["state_dir"])


def _slurm_jwks(testbed_dir, oidc_provider, flavour):
    """Start (or reuse) the JWKS-trusting cluster of ``flavour``; stop it afterwards."""
    state_dir = os.path.join(testbed_dir, "slurm-jwks" if flavour == "trixie" else f"slurm-jwks-{flavour}")
    env = {"SLURM_LAB_JWKS": oidc_provider["jwks_file"], "SLURM_LAB_AUTH": "munge",
           "SLURM_LAB_USER": oidc_provider["slurm_user"]}

    def start(sd, reuse):
        trusted = Path(sd) / "etc" / "jwks.json"
        if reuse and trusted.is_file() and trusted.read_text() != Path(oidc_provider["jwks_file"]).read_text():
            testbed.stop_slurm(sd)  # a running cluster trusting other keys: restart it with these
        ports = JWKS_FLAVOUR_PORTS[flavour] if reuse else testbed.free_ports(3)
        return testbed.start_slurm(sd, flavour=flavour, ports=ports, env=env)

    info = _start(f"Slurm ({flavour}, JWKS)", start, lambda sd: None, testbed.stop_slurm, state_dir)
    yield info
    if not REUSE:
        testbed.stop_slurm(state_dir)


@pytest.fixture(scope="session")
def slurm_cluster_jwks_trixie(testbed_dir, oidc_provider):
    yield from _slurm_jwks(testbed_dir, oidc_provider, "trixie")


@pytest.fixture(scope="session")
def slurm_cluster_jwks_forky(testbed_dir, oidc_provider):
    yield from _slurm_jwks(testbed_dir, oidc_provider, "forky")


@pytest.fixture(params=sorted(JWKS_FLAVOUR_PORTS, reverse=True))
def slurm_cluster_jwks(request):
    """The JWKS-trusting cluster of each flavour in turn: Slurm 24.11 (trixie), then 26.05 (forky)."""
    return request.getfixturevalue(f"slurm_cluster_jwks_{request.param}")


@pytest.fixture(autouse=True)
def _fresh_api_version_cache():
    """Every test detects the Slurm REST API version itself: the library caches the
    detected version per process and base URL, and recorded replays reuse one URL."""
    from slurmdeploy.slurm import client

    client._DETECTED_VERSIONS.clear()
    yield
