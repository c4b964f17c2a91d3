"""The client's transport rules on a real loopback HTTP server (Python's http.server):
which requests urllib3 retries, keep-alive, timeouts, and that ``REQUESTS_CA_BUNDLE``
cannot override the configured TLS verification. The server answers with plain HTTP
statuses; it does not pretend to be Slurm (no Slurm behaviour is claimed here)."""

import http.server
import json
import threading

import pytest
import requests

from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import SlurmAPIError
from slurmdeploy.slurm import JobRequest, SlurmClient, build_session

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdW4iOiJzbHVybXRlc3QiLCJleHAiOjQxMDI0NDQ4MDB9.c2ln"


class Server(http.server.ThreadingHTTPServer):
    """Answers each request with the next ``(status, body)`` of ``script`` (the last one
    repeats) and records ``(method, path, client port)``."""

    daemon_threads = True

    def __init__(self, script, delay=0.0):
        self.script, self.delay, self.seen = list(script), delay, []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def _answer(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server.seen.append((self.command, self.path, self.client_address[1]))
        if server.delay:
            threading.Event().wait(server.delay)
        status, body = server.script.pop(0) if len(server.script) > 1 else server.script[0]
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the read-timeout test): nothing to answer

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(script, delay=0.0):
        server = Server(script, delay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client(server, **kwargs):
    session = build_session(retries=3, backoff_factor=0)
    return SlurmClient(server.url, StaticJWT(TOKEN, "slurmtest"), api_version="v0.0.42", session=session, **kwargs)


PING = {"pings": [{"hostname": "h", "pinged": "UP"}], "errors": []}
REQUEST = JobRequest(name="n", script="#!/bin/bash\n", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp")


def test_idempotent_requests_are_retried_on_503(serve):
    server = serve([(503, {}), (503, {}), (200, PING)])
    assert client(server).ping()["pings"]
    assert [m for m, _, _ in server.seen] == ["GET"] * 3


def test_a_submit_is_never_retried_on_an_http_error(serve):
    server = serve([(503, {"errors": []}), (200, {"job_id": 1})])
    with pytest.raises(SlurmAPIError) as err:
        client(server).submit_job(REQUEST)
    assert err.value.status == 503 and [m for m, _, _ in server.seen] == ["POST"]


def test_requests_reuse_one_connection(serve):
    server = serve([(200, PING)])
    c = client(server)
    for _ in range(5):
        c.ping()
    assert len({port for _, _, port in server.seen}) == 1 and len(server.seen) == 5


def test_read_timeout_is_an_api_error_naming_the_endpoint(serve):
    server = serve([(200, PING)], delay=1.5)
    c = SlurmClient(server.url, StaticJWT(TOKEN, "slurmtest"), api_version="v0.0.42",
                    session=build_session(retries=0), read_timeout=0.3)
    with pytest.raises(SlurmAPIError, match=r"cannot reach slurmrestd .*: no answer within the read timeout \(0.3 s\); request GET /slurm/v0.0.42/ping"):
        c.ping()


def test_connection_refused_is_an_api_error_without_the_token():
    c = SlurmClient("http://127.0.0.1:9", StaticJWT(TOKEN, "slurmtest"), api_version="v0.0.42",
                    session=build_session(retries=0))
    with pytest.raises(SlurmAPIError) as err:
        c.list_jobs()
    assert err.value.status is None and TOKEN not in str(err.value) and "/slurm/v0.0.42/jobs" in str(err.value)
    assert "connection refused or host unreachable" in str(err.value)


def test_requests_ca_bundle_cannot_override_the_configured_verification(monkeypatch, tmp_path):
    """requests lets REQUESTS_CA_BUNDLE override Session.verify unless trust_env is off
    (docs/design.md); the client's session keeps what the settings say."""
    bundle = tmp_path / "site-ca.pem"
    bundle.write_text("not used for a connection here\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/somewhere/else.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/somewhere/else.pem")
    for verify in (str(bundle), True, False):
        session = build_session(verify=verify)
        merged = session.merge_environment_settings("https://slurm.example:6820/", {}, None, None, None)
        assert merged["verify"] == verify
    plain = requests.Session()  # the trap this guards against
    assert plain.merge_environment_settings("https://x/", {}, None, None, None)["verify"] == "/somewhere/else.pem"
