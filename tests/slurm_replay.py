"""Replaying answers recorded from real slurmrestd (tests/fixtures/slurm/, see its README) through a
requests transport adapter, so the Slurm client's real transport code runs without a Slurm."""

import json
from pathlib import Path

import requests
from requests.adapters import BaseAdapter

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slurm"
#: a JWT-shaped token (``sun`` slurmtest, expiry 2100) for replayed requests; never valid anywhere
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdW4iOiJzbHVybXRlc3QiLCJleHAiOjQxMDI0NDQ4MDB9.c2ln"


def recorded(version, name):
    return json.loads((FIXTURES / version / f"{name}.json").read_text())


class ReplayClock:
    """A clock for :attr:`SlurmClient.clock` that a :class:`Replay` moves on by each served
    recording's ``elapsed`` (seconds slurmrestd took, recorded since 2026-12-03; 0.01 when
    absent), so a recorded 10-second stall replays instantly yet reads as 10 seconds."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Replay(BaseAdapter):
    """Answers requests from recordings: {(method, path): [recording, ...]} served in order.
    ``clock``: an optional :class:`ReplayClock` moved on by each recording's ``elapsed``."""

    def __init__(self, recordings, clock=None):
        super().__init__()
        self.clock = clock
        self.queue = {}
        for rec in recordings:
            req = rec["request"]
            self.queue.setdefault((req["method"], req["path"]), []).append(rec)
        self.sent = []
        self.urls = []  # full URLs (query strings included), in order

    def send(self, request, **kwargs):
        path = requests.utils.urlparse(request.url).path
        self.sent.append((request.method, path, request.headers, request.body))
        self.urls.append(request.url)
        recs = self.queue.get((request.method, path))
        resp = requests.Response()
        resp.request, resp.url = request, request.url
        if not recs:
            resp.status_code, resp._content = 404, b'{"errors": [{"error_number": 404}]}'
            return resp
        rec = recs.pop(0) if len(recs) > 1 else recs[0]
        if self.clock is not None:
            self.clock.now += rec.get("elapsed", 0.01)
        resp.status_code = rec["status"]
        if isinstance(rec["body"], str):  # slurmrestd's plain-text answers (e.g. its 404 for an unknown URL)
            resp._content = rec["body"].encode()
            resp.headers["Content-Type"] = "text/plain"
        else:
            resp._content = json.dumps(rec["body"]).encode()
            resp.headers["Content-Type"] = "application/json"
        return resp

    def close(self):
        pass
