#!/usr/bin/env python3
"""Record real slurmrestd answers as JSON fixtures for unit tests of the REST client.

Against a running testbed (``testbed/slurm.sh start trixie`` for v0.0.40-42,
``start bookworm`` for v0.0.38), for each REST API version,
writes ``<out>/<version>/<name>.json``, each ``{"request": {"method", "path", "body"},
"status": int, "body": <json>}``:

  openapi_v3_paths  sorted list of the paths of GET /openapi/v3 (all versions; not the document)
  ping              GET  .../ping
  diag              GET  .../diag
  submit            POST .../job/submit (name, mcs_label, environment, cwd, time_limit; `sleep 3`)
  job_pending_or_running  GET .../job/{id} right after that submit
  job_completed     GET of that job once COMPLETED (exit 0)
  job_failed        GET of a job whose script does `exit 3`, once FAILED
  cancel            DELETE .../job/{id} of a running `sleep 60` job
  job_cancelled     GET of that job once CANCELLED
  cancel_cancelled  DELETE of that job again, once CANCELLED (v0.0.42: 200 with error 2021 in `status`)
  job_cancel_readback  GET of that job right after that second DELETE (what the client reads back)
  jobs              GET .../jobs (listing)
  job_unknown       GET .../job/999999
  submit_error      POST .../job/submit without `environment`
  delete_unknown    DELETE .../job/999999
  submit_refused    POST .../job/submit with cpus_per_task 999 (22.05: HTTP 200, a job id and
                    error 2015 - that job is then cancelled; 24.11: HTTP 500, error 2014)
  jobs_bad_signature  GET .../jobs with the token's signature replaced (22.05: HTTP 500,
                    error -1; 24.11: 511, error 1007)
  submit_bad_signature  POST .../job/submit with that token (22.05: HTTP 500, error 5005)
  openapi_v3_operations  sorted "METHOD path" of GET /openapi/v3 (v0.0.43+ recordings)
  version_not_loaded  GET /slurm/v0.0.39/ping (v0.0.43+ recordings: 404, plain text)

With SLURM_ADMIN_JWT (a token of a Slurm administrator, e.g. `scontrol token username=root`) and
--admin-user, REST v0.0.43+ also records reservation writes (a day ahead, on --node):

  nodes                     GET  .../nodes
  reservations_none         GET  .../reservations before (none may exist then)
  reservation_create        POST .../reservation (name rec-resv, node, start +1 day, 10 min, users)
  reservations              GET  .../reservations after it
  reservation_get           GET  .../reservation/rec-resv
  reservation_update        POST .../reservation (rec-resv, duration 20)
  reservation_overlap       POST .../reservation of another name, same node and time (422, 2058)
  reservation_end_before_start  POST .../reservation ending before it starts (422, 2053)
  reservation_unknown_user  POST .../reservation for a user slurmctld's host does not know (500, -1)
  reservation_delete        DELETE .../reservation/rec-resv
  reservation_delete_unknown  DELETE .../reservation/rec-resv again (422, 2053)
  nodes_bad_signature   GET .../nodes with that token (22.05: HTTP 500, {"errno": -1})
  job_update_bad_signature  POST .../job/999999 with that token (22.05: HTTP 500, error 1000)
  job_update_priority_lowered  v0.0.38 only: POST .../job/{id} {"priority": 10} by the job's
                    own (non-operator) user: HTTP 500, error 2095, yet applied; then
  job_priority_lowered  GET of that job (priority 10)

With --stall-slurmctld-pid PID (slurmctld of the testbed cluster, stopped with SIGSTOP for
these and continued with SIGCONT at once after; never another process):

  stalled_job_get   GET .../job/999999 (22.05 and 24.11: HTTP 500 after 20 s, error -1)
  stalled_job_update  POST .../job/999999 (HTTP 500 after 10 s, error 1000)
  stalled_delete    DELETE .../job/999999 (22.05: 500, error 5004; 24.11: 500, error 1)
  stalled_nodes     GET .../nodes (22.05: 500, {"errno": -1}; 24.11: 504, error 5004)

Every recording also has "elapsed": seconds until slurmrestd answered (``requests``'
``Response.elapsed``): a stalled slurmctld and a bad token give the same body on 22.05, only
the time tells them apart.

Usage:
  eval "$(testbed/slurm.sh start trixie /tmp/rec)"   # sets SLURM_JWT, SLURM_REST_URL, ...
  SLURM_JWT=... .venv/bin/python scripts/record-slurm-responses.py \
      --url "$SLURM_REST_URL" --user "$SLURM_REST_USER" --out tests/fixtures/slurm

The token is read from the environment (SLURM_JWT) only, never written: anything that looks
like a JWT in a recorded body is replaced by "<redacted-jwt>".
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import requests

VERSIONS = ("v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42")
#: versions that write reservations (Slurm 25.05+)
RESERVATION_WRITES = ("v0.0.43", "v0.0.44", "v0.0.45")
#: versions whose submit body is {"script", "job": {"environment": {K: V}, "time_limit": int}}
#: (Slurm 22.05); later ones take {"job": {"script", "environment": ["K=V"], "time_limit": {set,...}}}
OLD_SHAPE = ("v0.0.38",)
UNKNOWN_JOB = 999999
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def scrub(obj, token):
    text = json.dumps(obj)
    if token:
        text = text.replace(token, "<redacted-jwt>")
    return json.loads(JWT_RE.sub("<redacted-jwt>", text))


class Recorder:
    def __init__(self, url, user, token, out, only=None, admin=None):
        self.admin = admin  # (user, token) of a Slurm administrator, or None
        self.url = url.rstrip("/")
        self.only = set(only or ())
        self.token = token
        self.out = Path(out)
        self.session = requests.Session()
        self.session.headers.update({
            "X-SLURM-USER-NAME": user,
            "X-SLURM-USER-TOKEN": token,
            "Content-Type": "application/json",
        })

    def call(self, method, path, body=None, params=None):
        r = self.session.request(method, self.url + path, json=body, params=params, timeout=60)
        try:
            data = r.json()
        except ValueError:
            data = r.text
        request = {"method": method, "path": path, "body": body}
        if params:
            request["params"] = params
        return {"request": request, "status": r.status_code, "body": data,
                "elapsed": round(r.elapsed.total_seconds(), 3)}

    def record_reservations(self, v, node):
        """Reservation writes of ``v`` as the administrator (a day ahead: no job is affected)."""
        user, token = self.admin
        saved = dict(self.session.headers)
        self.session.headers.update({"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": token})
        start = int(time.time()) + 86400

        def number(n):
            return {"set": True, "infinite": False, "number": n}

        def body(name, **extra):
            return dict({"name": name, "node_list": [node], "start_time": number(start),
                         "duration": number(10), "users": [user]}, **extra)
        try:
            self.save(v, "nodes", self.call("GET", f"/slurm/{v}/nodes"))
            self.save(v, "reservations_none", self.call("GET", f"/slurm/{v}/reservations"))
            self.save(v, "reservation_create", self.call("POST", f"/slurm/{v}/reservation", body("rec-resv")))
            self.save(v, "reservations", self.call("GET", f"/slurm/{v}/reservations"))
            self.save(v, "reservation_get", self.call("GET", f"/slurm/{v}/reservation/rec-resv"))
            self.save(v, "reservation_update", self.call("POST", f"/slurm/{v}/reservation",
                                                         {"name": "rec-resv", "duration": number(20)}))
            self.save(v, "reservation_overlap", self.call("POST", f"/slurm/{v}/reservation", body("rec-resv-2")))
            self.save(v, "reservation_end_before_start", self.call("POST", f"/slurm/{v}/reservation", {
                "name": "rec-resv-3", "node_list": [node], "start_time": number(start + 86400),
                "end_time": number(start + 86400 - 60), "users": [user]}))
            self.save(v, "reservation_unknown_user", self.call("POST", f"/slurm/{v}/reservation", dict(
                body("rec-resv-4"), start_time=number(start + 2 * 86400), users=["no-such-user-rec"])))
            self.save(v, "reservation_delete", self.call("DELETE", f"/slurm/{v}/reservation/rec-resv"))
            self.save(v, "reservation_delete_unknown", self.call("DELETE", f"/slurm/{v}/reservation/rec-resv"))
        finally:
            for name in ("rec-resv", "rec-resv-2", "rec-resv-3", "rec-resv-4"):
                self.call("DELETE", f"/slurm/{v}/reservation/{name}")
            self.session.headers.clear()
            self.session.headers.update(saved)

    def save(self, version, name, record):
        if self.only and name not in self.only:
            return
        path = self.out / version / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(scrub(record, self.token), indent=2, sort_keys=True) + "\n")
        print(f"  {path} (HTTP {record['status']})", file=sys.stderr)

    def job_body(self, version, name, script, env=True, time_limit=None):
        job = {
            "name": name,
            "current_working_directory": "/tmp",
            "mcs_label": name.replace("-", "_"),
        }
        environment = {"PATH": "/usr/bin:/bin", "SDP_DEPLOYMENT": name}
        if version in OLD_SHAPE:
            if env:
                job["environment"] = environment
            if time_limit is not None:
                job["time_limit"] = time_limit
            return {"script": script, "job": job}
        job["script"] = script
        if env:
            job["environment"] = [f"{k}={v}" for k, v in environment.items()]
        if time_limit is not None:
            job["time_limit"] = {"set": True, "infinite": False, "number": time_limit}
        return {"job": job}

    def submit(self, version, body):
        rec = self.call("POST", f"/slurm/{version}/job/submit", body)
        if rec["status"] != 200 or not isinstance(rec["body"], dict) or not rec["body"].get("job_id"):
            raise SystemExit(f"submit failed on {version}: HTTP {rec['status']}: {scrub(rec['body'], self.token)}")
        return rec, rec["body"]["job_id"]

    def wait_state(self, version, job_id, wanted, timeout=90):
        """First GET whose base state (job_state[0]) is in ``wanted``."""
        deadline = time.monotonic() + timeout
        while True:
            rec = self.call("GET", f"/slurm/{version}/job/{job_id}")
            jobs = rec["body"].get("jobs", []) if isinstance(rec["body"], dict) else []
            state = jobs[0]["job_state"] if jobs else None  # v0.0.38: a string
            base = state[0] if isinstance(state, list) and state else state
            if base in wanted:
                return rec
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job_id} on {version}: still {state} after {timeout}s (wanted {wanted})")
            time.sleep(0.2)

    def record_version(self, v):
        print(f"{v}:", file=sys.stderr)
        doc = self.call("GET", "/openapi/v3")
        if doc["status"] != 200:
            raise SystemExit(f"GET /openapi/v3: HTTP {doc['status']}")
        paths = doc["body"]["paths"]
        doc["body"] = sorted(paths)
        self.save(v, "openapi_v3_paths", doc)
        if v in RESERVATION_WRITES:
            doc = dict(doc, body=sorted(f"{m.upper()} {p}" for p, item in paths.items() for m in item
                                        if m in ("get", "post", "delete", "put", "patch")))
            self.save(v, "openapi_v3_operations", doc)
        if v in RESERVATION_WRITES:  # no Slurm serving v0.0.43+ loads v0.0.39 (gone since 24.11)
            self.save(v, "version_not_loaded", self.call("GET", "/slurm/v0.0.39/ping"))
        if v in RESERVATION_WRITES and self.admin:
            self.record_reservations(v, self.node)
        self.save(v, "ping", self.call("GET", f"/slurm/{v}/ping"))
        self.save(v, "diag", self.call("GET", f"/slurm/{v}/diag"))

        rec, job_id = self.submit(v, self.job_body(v, "rec-ok", "#!/bin/bash\nsleep 3\necho done", time_limit=5))
        self.save(v, "submit", rec)
        self.save(v, "job_pending_or_running", self.call("GET", f"/slurm/{v}/job/{job_id}"))

        _, failed_id = self.submit(v, self.job_body(v, "rec-fail", "#!/bin/bash\nexit 3"))
        _, long_id = self.submit(v, self.job_body(v, "rec-cancel", "#!/bin/bash\nsleep 60"))

        self.save(v, "job_completed", self.wait_state(v, job_id, {"COMPLETED"}))
        self.save(v, "job_failed", self.wait_state(v, failed_id, {"FAILED"}))

        self.wait_state(v, long_id, {"RUNNING"})
        self.save(v, "cancel", self.call("DELETE", f"/slurm/{v}/job/{long_id}"))
        self.save(v, "job_cancelled", self.wait_state(v, long_id, {"CANCELLED"}))
        # a second runner cancelling the same job (issue 15): 24.11 v0.0.42 answers 200 with
        # error 2021 "Job/step already completing or completed" per job in `status`
        self.save(v, "cancel_cancelled", self.call("DELETE", f"/slurm/{v}/job/{long_id}"))
        self.save(v, "job_cancel_readback", self.call("GET", f"/slurm/{v}/job/{long_id}"))

        self.save(v, "jobs", self.call("GET", f"/slurm/{v}/jobs"))
        if v not in OLD_SHAPE:  # jobs/state exists from v0.0.40; ids as repeated job_id parameters
            self.save(v, "jobs_state", self.call("GET", f"/slurm/{v}/jobs/state/", params=[
                ["job_id", str(job_id)], ["job_id", str(failed_id)], ["job_id", str(UNKNOWN_JOB)]]))
        self.save(v, "job_unknown", self.call("GET", f"/slurm/{v}/job/{UNKNOWN_JOB}"))
        self.save(v, "submit_error", self.call(
            "POST", f"/slurm/{v}/job/submit", self.job_body(v, "rec-noenv", "#!/bin/bash\ntrue", env=False)))
        self.save(v, "delete_unknown", self.call("DELETE", f"/slurm/{v}/job/{UNKNOWN_JOB}"))
        body = self.job_body(v, "rec-cpus", "#!/bin/bash\ntrue")
        body.get("job", body)["cpus_per_task"] = 999
        refused = self.call("POST", f"/slurm/{v}/job/submit", body)
        self.save(v, "submit_refused", refused)
        if isinstance(refused["body"], dict) and refused["body"].get("job_id"):
            self.call("DELETE", f"/slurm/{v}/job/{refused['body']['job_id']}")
        head, payload, signature = self.token.split(".")
        self.session.headers["X-SLURM-USER-TOKEN"] = f"{head}.{payload}.{'A' * len(signature)}"
        try:
            self.save(v, "jobs_bad_signature", self.call("GET", f"/slurm/{v}/jobs"))
            self.save(v, "submit_bad_signature", self.call(
                "POST", f"/slurm/{v}/job/submit", self.job_body(v, "rec-badsig", "#!/bin/bash\ntrue")))
            self.save(v, "nodes_bad_signature", self.call("GET", f"/slurm/{v}/nodes"))
            self.save(v, "job_update_bad_signature", self.call("POST", f"/slurm/{v}/job/{UNKNOWN_JOB}",
                                                               {"comment": "x"}))
        finally:
            self.session.headers["X-SLURM-USER-TOKEN"] = self.token
        if v in OLD_SHAPE:
            body = self.job_body(v, "rec-prio", "#!/bin/bash\nsleep 300")
            body["job"]["hold"] = True
            _, job_id = self.submit(v, body)  # 22.05: the job id and error 2042 "Job is in held state"
            self.call("POST", f"/slurm/{v}/job/{job_id}", {"hold": False})
            self.save(v, "job_update_priority_lowered", self.call("POST", f"/slurm/{v}/job/{job_id}",
                                                                  {"priority": 10}))
            self.save(v, "job_priority_lowered", self.call("GET", f"/slurm/{v}/job/{job_id}"))
            self.call("DELETE", f"/slurm/{v}/job/{job_id}")

    def record_stalled(self, v, pid):
        """Answers while slurmctld (``pid``) is stopped: SIGSTOP, the requests, SIGCONT."""
        import signal

        print(f"{v} (slurmctld {pid} stopped):", file=sys.stderr)
        os.kill(pid, signal.SIGSTOP)
        try:
            self.save(v, "stalled_job_get", self.call("GET", f"/slurm/{v}/job/{UNKNOWN_JOB}"))
            self.save(v, "stalled_job_update", self.call("POST", f"/slurm/{v}/job/{UNKNOWN_JOB}", {"comment": "x"}))
            self.save(v, "stalled_delete", self.call("DELETE", f"/slurm/{v}/job/{UNKNOWN_JOB}"))
            self.save(v, "stalled_nodes", self.call("GET", f"/slurm/{v}/nodes"))
        finally:
            os.kill(pid, signal.SIGCONT)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("SLURM_REST_URL"), help="slurmrestd URL [$SLURM_REST_URL]")
    ap.add_argument("--user", default=os.environ.get("SLURM_REST_USER", "slurmtest"), help="job user [slurmtest]")
    ap.add_argument("--out", default="tests/fixtures/slurm", help="output directory [tests/fixtures/slurm]")
    ap.add_argument("--versions", nargs="+", default=list(VERSIONS))
    ap.add_argument("--admin-user", help="Slurm administrator whose token is in SLURM_ADMIN_JWT "
                    "(records reservation writes on v0.0.43+)")
    ap.add_argument("--node", default="localhost", help="node to reserve [localhost]")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="write only these recordings (e.g. diag); the others are still made, not saved")
    ap.add_argument("--stall-slurmctld-pid", type=int, metavar="PID",
                    help="also record the stalled_* answers, with this slurmctld stopped (SIGSTOP, then SIGCONT)")
    args = ap.parse_args(argv)
    token = os.environ.get("SLURM_JWT")
    if not args.url or not token:
        ap.error("need --url (or SLURM_REST_URL) and a token in SLURM_JWT")
    admin = (args.admin_user, os.environ["SLURM_ADMIN_JWT"]) if args.admin_user else None
    if args.admin_user and not admin[1]:
        ap.error("--admin-user needs the administrator's token in SLURM_ADMIN_JWT")
    rec = Recorder(args.url, args.user, token, args.out, args.only, admin=admin)
    rec.node = args.node
    for v in args.versions:
        rec.record_version(v)
        if args.stall_slurmctld_pid:
            rec.record_stalled(v, args.stall_slurmctld_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
