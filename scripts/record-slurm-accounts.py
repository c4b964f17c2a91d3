#!/usr/bin/env python3
"""Record real slurmrestd answers of slurmdbd's account API (``/slurmdb/<v>/...``) as fixtures.

The companion of ``scripts/record-slurm-responses.py`` (same file format: ``{"request":
{"method", "path", "body"}, "status", "body"}`` in ``<out>/<version>/<name>.json``) for
:mod:`slurmdeploy.slurm.accounts`. Against a running accounting testbed of Slurm 24.11 or 26.05
(``SLURM_LAB_ACCOUNTING=1 testbed/slurm.sh forky DIR``), as root (it runs sacctmgr, scancel and
``slurm.sh dbd`` in the cluster's root):

    scripts/record-slurm-accounts.py --state-dir DIR --version v0.0.45 [--out tests/fixtures/slurm]

records, for the account ``recacct`` (removed before and after):

  accounts_clusters, accounts_tres, accounts_qos   GET clusters/, tres/, qos/
  accounts_account_unknown  GET account/recacct before it exists
  accounts_associations_none, accounts_associations_parent  GET associations/?account=recacct
                            before it exists, ?account=<the testbed's account>
  accounts_create_denied    POST accounts_association/ without AdminLevel (error 2002)
  accounts_create           POST accounts_association/ as AdminLevel=Operator (200)
  accounts_create_exists    the same again (304, empty body)
  accounts_create_bad_parent  parent nosuchparent (500, error 2046)
  accounts_account          GET account/recacct
  accounts_associations     GET associations/?account=recacct
  accounts_limits_set       POST associations/ (GrpTRESMins cpu=1000, MaxJobs 5, MaxWall 90)
  accounts_associations_limits  GET associations/?account=recacct afterwards
  accounts_limits_bad_qos   POST associations/ with QOS nosuchqos (500, error 2066)
  accounts_limits_untracked_tres  POST associations/ with GrpTRES gres/gpu=2 (200: ignored)
  accounts_delete_busy      DELETE account/recacct with a held job in it (500, error 7001)
  accounts_delete           DELETE account/recacct after scancel (200)
  accounts_delete_absent    DELETE account/recacct again (304)
  accounts_dbd_down         POST accounts_association/ with slurmdbd stopped (502, error 7000)

The token never reaches a file (the request headers are not recorded).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
SLURM_SH = REPO / "testbed" / "slurm.sh"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--version", required=True, help="REST version, e.g. v0.0.45")
    parser.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "slurm"))
    args = parser.parse_args()
    env = {}
    for line in (Path(args.state_dir) / "rest.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip('"')
    url, user, cluster, parent = env["SLURM_REST_URL"], env["SLURM_REST_USER"], env["SLURM_CLUSTER"], env["SLURM_ACCOUNT"]
    token = subprocess.run([SLURM_SH, "token", args.state_dir, user, "3600"], capture_output=True, text=True,
                           check=True).stdout.strip()
    session = requests.Session()
    session.headers.update({"X-SLURM-USER-NAME": user, "X-SLURM-USER-TOKEN": token})
    out = Path(args.out) / args.version
    out.mkdir(parents=True, exist_ok=True)
    base = f"/slurmdb/{args.version}"

    def sh(*argv, check=True):
        return subprocess.run([SLURM_SH, "exec", args.state_dir, *argv], capture_output=True, text=True, check=check)

    def record(name, method, path, body=None, params=None):
        started = time.monotonic()
        answer = session.request(method, url + path, json=body, params=params, timeout=60)
        try:
            content = answer.json()
        except ValueError:
            content = answer.text
        rec = {"request": {"method": method, "path": path, "body": body, "params": params},
               "status": answer.status_code, "elapsed": round(time.monotonic() - started, 3), "body": content}
        (out / f"{name}.json").write_text(json.dumps(rec, indent=2, sort_keys=True) + "\n")
        print(f"{name}: HTTP {answer.status_code}", file=sys.stderr)
        return rec

    create = {"association_condition": {"accounts": ["recacct"], "clusters": [cluster],
                                        "association": {"parent": parent}},
              "account": {"description": "recorded", "organization": "slurmdeploy"}}
    sh("sacctmgr", "-i", "delete", "account", "recacct", check=False)
    record("accounts_clusters", "GET", f"{base}/clusters/")
    record("accounts_tres", "GET", f"{base}/tres/")
    record("accounts_qos", "GET", f"{base}/qos/")
    record("accounts_account_unknown", "GET", f"{base}/account/recacct")
    record("accounts_associations_none", "GET", f"{base}/associations/", params={"account": "recacct"})
    record("accounts_associations_parent", "GET", f"{base}/associations/", params={"account": parent})
    record("accounts_create_denied", "POST", f"{base}/accounts_association/", create)
    sh("sacctmgr", "-i", "modify", "user", user, "set", "adminlevel=Operator")
    job_id = None
    try:
        record("accounts_create", "POST", f"{base}/accounts_association/", create)
        record("accounts_create_exists", "POST", f"{base}/accounts_association/", create)
        bad = json.loads(json.dumps(create))
        bad["association_condition"]["accounts"] = ["recbad"]
        bad["association_condition"]["association"]["parent"] = "nosuchparent"
        record("accounts_create_bad_parent", "POST", f"{base}/accounts_association/", bad)
        record("accounts_account", "GET", f"{base}/account/recacct")
        record("accounts_associations", "GET", f"{base}/associations/", params={"account": "recacct"})
        own = {"account": "recacct", "cluster": cluster, "user": ""}
        limits = dict(own, max={"tres": {"group": {"minutes": [{"type": "cpu", "count": 1000}]}},
                                "jobs": {"active": {"set": True, "infinite": False, "number": 5},
                                         "per": {"wall_clock": {"set": True, "infinite": False, "number": 90}}}})
        record("accounts_limits_set", "POST", f"{base}/associations/", {"associations": [limits]})
        record("accounts_associations_limits", "GET", f"{base}/associations/", params={"account": "recacct"})
        record("accounts_limits_bad_qos", "POST", f"{base}/associations/", {"associations": [dict(own, qos=["nosuchqos"])]})
        record("accounts_limits_untracked_tres", "POST", f"{base}/associations/",
               {"associations": [dict(own, max={"tres": {"total": [{"type": "gres", "name": "gpu", "count": 2}]}})]})
        sh("sacctmgr", "-i", "add", "user", user, "account=recacct", f"cluster={cluster}")
        job = {"job": {"script": "#!/bin/bash\nsleep 300\n", "name": "recacct-busy", "account": "recacct",
                       "hold": True, "environment": ["PATH=/usr/bin:/bin"], "current_working_directory": "/tmp",
                       "standard_output": "/dev/null"}}   # v0.0.40+ submit body (a held job)
        job_id = str(session.post(f"{url}/slurm/{args.version}/job/submit", json=job, timeout=60).json()["job_id"])
        record("accounts_delete_busy", "DELETE", f"{base}/account/recacct")
        sh("scancel", job_id)
        time.sleep(2)
        record("accounts_delete", "DELETE", f"{base}/account/recacct")
        record("accounts_delete_absent", "DELETE", f"{base}/account/recacct")
        subprocess.run([SLURM_SH, "dbd", "stop", args.state_dir], check=True, capture_output=True)
        try:
            record("accounts_dbd_down", "POST", f"{base}/accounts_association/", create)
        finally:
            subprocess.run([SLURM_SH, "dbd", "start", args.state_dir], check=True, capture_output=True)
    finally:
        if job_id:
            sh("scancel", job_id, check=False)
        sh("sacctmgr", "-i", "modify", "user", user, "set", "adminlevel=None", check=False)
        sh("sacctmgr", "-i", "delete", "account", "recacct", check=False)


if __name__ == "__main__":
    main()
