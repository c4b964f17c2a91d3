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


class Replay(BaseAdapter):
    """Answers requests from recordings: {(method, path): [recording, ...]} served in order."""

    def __init__(self, recordings):
        super().__init__()
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
