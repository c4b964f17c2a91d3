"""The demo's SDP side: create deployments in the Configuration DB, remove one while its
job runs, and print how each deployment's state evolves until all are settled.

Deployments are created and deleted with the commands a newcomer types (README "Create a
deployment"): ``python -m packrunner ... run slurmdeploy.deployment_create key=... args=...``
and ``... run slurmdeploy.deployment_delete key=...``. ``demo-invalid`` is refused by
``deployment_create``; the demo then writes it directly, as an SDP component with
ska-sdp-config could, to show what the deployer makes of it.

Run by scripts/demo.sh (which starts etcd, Slurm and the runner first):

    .venv/bin/python scripts/demo_deployments.py --config /tmp/slurmdeploy-demo/config.yaml
"""

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from slurmdeploy.configdb import ConfigDB  # noqa: E402
from slurmdeploy.settings import Settings  # noqa: E402
from slurmdeploy.slurm import SlurmClient  # noqa: E402

DEPLOYMENTS = {
    "demo-hello": {"script": "#!/bin/bash\necho \"hello from $GREETING on $(hostname)\"\nsleep 6\n",
                   "environment": {"GREETING": "SDP"}},
    "demo-compute": {"script": "#!/bin/bash\nfor i in 1 2 3; do sleep 3; echo step $i; done\n", "time_limit": 5},
    "demo-fail": {"script": "#!/bin/bash\necho 'about to fail'\nsleep 4\nexit 3\n"},
    "demo-remove": {"script": "#!/bin/bash\nsleep 600\n"},
    "demo-invalid": {"scirpt": "#!/bin/bash\ntrue\n"},
}
REMOVED = "demo-remove"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pack config YAML (as for the runner)")
    parser.add_argument("--runner-log", help="the runner's log, shown if the demo times out")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for all to settle")
    parser.add_argument("--state-dir", help="the runner's --state-dir (the commands' executions are recorded there)")
    opts = parser.parse_args()
    pack = Path(__file__).resolve().parent.parent
    settings = Settings.from_config(yaml.safe_load(Path(opts.config).read_text()), {})
    db = ConfigDB.from_settings(settings)
    slurm = SlurmClient.from_settings(settings)
    start = time.monotonic()

    def say(text):
        print(f"[{time.monotonic() - start:6.1f}s] {text}", flush=True)

    def packrunner_run(action, **params):
        """Run one pack action as a newcomer would, print the command, return its result."""
        argv = [sys.executable, "-m", "packrunner", "--pack", str(pack), "--config", opts.config,
                "--log-level", "WARNING"] + (["--state-dir", opts.state_dir] if opts.state_dir else []) + [
                "run", f"slurmdeploy.{action}"] + [
                f"{k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in params.items()]
        shown = "python -m packrunner ... " + " ".join(shlex.quote(a) for a in argv[argv.index("run"):])
        print(f"{'':10}$ {shown if len(shown) < 150 else shown[:147] + '...'}", flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        return json.loads(done.stdout)["result"] if done.stdout.strip() else {"error": done.stderr[-400:]}

    for key in DEPLOYMENTS:
        db.delete_deployment(key)  # a previous demo's leftovers
    for key, args in DEPLOYMENTS.items():
        result = packrunner_run("deployment_create", key=key, args=args)
        if result.get("outcome") == "invalid":
            say(f"deployment_create refused {key}: {result['error']}")
            db.create_deployment(key, "slurm", args)  # as an SDP component could: see what the deployer does
            say(f"wrote {key} directly (as ska-sdp-config would, unchecked) at {db.deployment_path(key)}")
        else:
            say(f"{result.get('outcome')} deployment {key:<13} {result.get('path')} {result.get('error') or ''}")
    history = {key: None for key in DEPLOYMENTS}
    removed_job = None
    while time.monotonic() - start < opts.timeout:
        for key in DEPLOYMENTS:
            if key == REMOVED and removed_job is not None:
                continue
            state, _ = db.get_state(key)
            shown = (state.status, state.job_id, state.state_reason)
            if shown != history[key]:
                history[key] = shown
                line = f"{key:<13} {state.status:<9} job={state.job_id} reason={state.state_reason}"
                if state.status == "FAILED":
                    line += f"\n{'':10}error_state: {state.to_dict().get('error_state')}"
                say(line)
        if removed_job is None and history[REMOVED][0] == "RUNNING":
            removed_job = history[REMOVED][1]
            result = packrunner_run("deployment_delete", key=REMOVED)
            say(f"removed deployment {REMOVED} while its Slurm job {removed_job} runs: {result.get('note')}")
        if removed_job is not None and history[REMOVED][0] != "CANCELLED":
            job = slurm.get_job(removed_job)
            if job and job.job_state == "CANCELLED":
                history[REMOVED] = ("CANCELLED", removed_job, None)
                say(f"{REMOVED:<13} Slurm job {removed_job} CANCELLED (deployment gone, so no state to write)")
        settled = all(history[k] and history[k][0] in ("FINISHED", "FAILED", "CANCELLED") for k in DEPLOYMENTS)
        if settled:
            break
        time.sleep(0.5)
    else:
        say("timed out waiting for the deployments to settle")
        if opts.runner_log:
            print(Path(opts.runner_log).read_text()[-4000:], file=sys.stderr)
        return 1
    say("all deployments settled (python -m packrunner run slurmdeploy.deployment_list):")
    for row in packrunner_run("deployment_list").get("deployments", []):
        print(f"{'':10}{row['key']:<13} {row['status']:<9} job={row['job_id']} reason={row['state_reason']}")
    for job in slurm.find_jobs(settings.mcs_label):
        print(f"{'':10}Slurm job {job.job_id:<5} {job.name:<17} {job.job_state:<10} exit={job.exit_code} "
              f"mcs_label={job.mcs_label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
