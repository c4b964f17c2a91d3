"""One action execution under StackStorm's own python runner wrapper: submit, cancel and
update_state against an empty action of the pack, measured in the same run.

StackStorm runs every python-script action as a new process:
``<pack virtualenv>/bin/python -u python_action_wrapper.py --pack=... --file-path=...
--user=... --parent-args=[] --parameters=<JSON> --config=<JSON>`` with PYTHONPATH = the
pack's ``lib/`` (``enable_common_libs``), the pack virtualenv's lib and site-packages, the
pack's ``actions/lib``, then StackStorm's own virtualenv (contrib/runners/python_runner/
python_runner/python_runner.py:174-239 and st2common/st2common/util/sandboxing.py:125-200 at
v3.9.0). This benchmark builds exactly that from StackStorm's source and registry packages:

- ``st2venv``: st2common's requirements.txt from PyPI (without its two ``git+`` lines,
  orquesta and st2-rbac-backend, which the wrapper does not import), with st2common's source
  on PYTHONPATH (st2common is not on PyPI);
- ``packvenv``: ``--system-site-packages`` (st2's default ``virtualenv_opts``) with the
  pack's requirements.txt;
- the wrapper: ``contrib/runners/python_runner/python_runner/python_action_wrapper.py``,
  unchanged, from the same StackStorm tag.

Both are built once into ``--cache`` and reused while the tag and requirements are unchanged.
StackStorm's source comes from ``--st2-source``: a clone of github.com/StackStorm/st2 (a work
tree or a bare git directory); ``git archive <tag>`` reads the needed files from it.

Each round runs, in fresh processes in a shuffled order, (a) an empty action (a file in the
cache directory, a subclass of st2common's ``Action`` whose ``run`` returns its parameters,
started with the pack's argv, config and PYTHONPATH: the floor; it imports nothing of the
pack), (b) ``submit`` of a deployment created just before (it really submits a job to the
testbed's Slurm), (c) ``update_state`` of the deployment submitted in the previous round,
(d) ``cancel`` of the one before that (deleted from the Configuration DB first, as
``deployment_removed`` would follow). Every execution's output is checked (exit 0, the
expected ``outcome``). Prints median/p90 wall time of each and its ratio to (a), and the median
CPU time (user + system of the process, less sensitive to other load on the machine than wall).

Usage: .venv/bin/python bench/st2_action.py --st2-source DIR [--st2-ref v3.9.0] [--quick]
       [--rounds N] [--reuse DIR] [--cache DIR] [--pack DIR] [--compare DIR] [--api-version V]
       [--decompose] [--importtime]

``--compare DIR`` runs a second checkout's submit/cancel/update_state in the same rounds (a
before/after against the same floor); ``--st2-source`` is needed only to build the cache.
"""

import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

WRAPPER = "contrib/runners/python_runner/python_runner/python_action_wrapper.py"
ST2_FILES = ["st2common/st2common", "st2common/requirements.txt", WRAPPER]
#: StackStorm's delimiter around the action's JSON output (st2common/constants/action.py)
DELIMITER = "%%%%%~=~=~=************=~=~=~%%%%"
SCRIPT = "#!/bin/bash\nsleep 600\n"
EMPTY_ACTION = '''"""The floor: an action of the pack that imports nothing of it."""
from st2common.runners.base_action import Action


class Empty(Action):
    def run(self, **parameters):
        return parameters
'''

#: --decompose: what loading the pack costs without running anything (the action's directory is
#: appended to sys.path as the wrapper's loader does for a file in actions/)
DECOMPOSE_ACTIONS = {
    "requests only": '''"""Imports only requests (through slurmdeploy.clientlibs), as every pack action needs it."""
from st2common.runners.base_action import Action
from slurmdeploy.clientlibs import requests  # noqa: F401


class RequestsOnly(Action):
    def run(self, **parameters):
        return parameters
''',
    "import lib.base only": '''"""Loads what submit loads (actions/lib/base.py), runs nothing."""
import sys
sys.path.append({actions!r})
from lib.base import DeployerAction  # noqa: E402


class ImportOnly(DeployerAction):
    def run(self, **parameters):
        return parameters
''',
}


def _say(msg):
    print(f"[st2_action] {msg}", file=sys.stderr, flush=True)


def _run(argv, **kw):
    out = subprocess.run(argv, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv[:4]))} ... failed ({out.returncode}): {out.stderr[-2000:]}")
    return out


def build_env(source, ref, cache, python):
    """Build (or reuse) the StackStorm wrapper environment with interpreter ``python``; return
    ``{"python", "wrapper", "pythonpath_tail", "packvenv", "libdir"}``."""
    pack_reqs = (common.REPO / "requirements.txt").read_bytes()
    tag = hashlib.sha256(ref.encode() + pack_reqs + str(python).encode()).hexdigest()[:10]
    stamp = cache / f".built-{tag}"
    src, st2venv, packvenv = cache / "st2src", cache / "st2venv", cache / "packvenv"
    version = subprocess.run([str(python), "-c", "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"],
                             capture_output=True, text=True, check=True).stdout.strip()
    site = f"lib/{version}/site-packages"
    env = {"python": str(packvenv / "bin/python"), "wrapper": str(src / WRAPPER), "packvenv": packvenv,
           "libdir": packvenv / "lib" / version, "pythonpath_tail": [str(st2venv / site), str(src / "st2common")]}
    if stamp.exists():
        return env
    if not source:
        raise SystemExit("no StackStorm wrapper environment in the cache yet: pass --st2-source DIR "
                         "(a clone of https://github.com/StackStorm/st2; the tag is --st2-ref)")
    shutil.rmtree(cache, ignore_errors=True)
    src.mkdir(parents=True)
    _say(f"extracting {', '.join(ST2_FILES)} of StackStorm {ref} from {source}")
    archive = subprocess.run(["git", "-C", str(source), "archive", ref, *ST2_FILES], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    reqs = [line for line in (src / "st2common/requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#") and "git+" not in line]
    (cache / "st2-requirements.txt").write_text("\n".join(reqs) + "\n")
    t0 = time.monotonic()
    _say(f"creating {st2venv} with st2common's requirements ({len(reqs)} packages, about a minute)")
    _run([str(python), "-m", "venv", str(st2venv)])
    _run([str(st2venv / "bin/python"), "-m", "pip", "install", "-q", "-r", str(cache / "st2-requirements.txt")])
    _say(f"creating {packvenv} (--system-site-packages) with the pack's requirements.txt")
    _run([str(python), "-m", "venv", "--system-site-packages", str(packvenv)])
    # `pip install -U -r requirements.txt`, as st2 pack install does (st2common/util/virtualenvs.py:346-348)
    _run([str(packvenv / "bin/python"), "-m", "pip", "install", "-q", "-U", "-r", str(common.REPO / "requirements.txt")])
    _say(f"built in {time.monotonic() - t0:.0f} s")
    stamp.write_text(ref + "\n")
    return env


def wrapper_runner(env, config, cache, pack=common.REPO, importtime=False):
    """A function ``run(file_path, parameters) -> (wall seconds, result, stderr)`` that executes
    one action of the pack in directory ``pack`` as StackStorm's python runner does."""
    packvenv, lib = env["packvenv"], env["libdir"]
    pythonpath = ":".join([str(pack / "lib"), str(lib), str(lib / "site-packages"),
                           str(pack / "actions/lib"), *env["pythonpath_tail"]])
    run_env = {"PATH": f"{packvenv}/bin:/usr/bin:/bin", "PYTHONPATH": pythonpath, "HOME": str(cache),
               "LANG": "C.UTF-8"}
    config_arg = "--config=" + json.dumps(config)

    def run(file_path, parameters):
        argv = [env["python"], "-u", *(["-X", "importtime"] if importtime else []), env["wrapper"],
                "--pack=slurmdeploy", f"--file-path={file_path}", "--user=stanley", "--parent-args=[]",
                "--parameters=" + json.dumps(parameters), config_arg]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(argv, env=run_env, capture_output=True, text=True, cwd=str(cache))
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if out.returncode != 0 or DELIMITER not in out.stdout:
            raise SystemExit(f"{Path(file_path).name} {parameters} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.split(DELIMITER)[1])
        return (wall, cpu), result, out.stderr

    return run


def _outcome(result):
    value = result.get("result")
    return value.get("outcome") if isinstance(value, dict) else None


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--st2-source", type=Path, help="a clone (or bare git directory) of StackStorm/st2")
    p.add_argument("--st2-ref", default="v3.9.0", help="the StackStorm tag whose wrapper runs the actions")
    p.add_argument("--cache", type=Path, default=Path("/tmp/slurmdeploy-st2-wrapper"),
                   help="where the two virtualenvs and StackStorm's files are kept")
    p.add_argument("--python", type=Path, default=Path("/usr/bin/python3"),
                   help="the interpreter of both virtualenvs (the system's, as StackStorm's packages use; a "
                        "--system-site-packages pack virtualenv sees its site-packages)")
    p.add_argument("--rounds", type=int, help="rounds of the executions (default 25, --quick 6)")
    p.add_argument("--pack", type=Path, default=common.REPO, help="the pack checkout whose actions run")
    p.add_argument("--compare", type=Path, metavar="DIR",
                   help="another checkout of the pack (e.g. the main branch) whose submit/cancel/update_state "
                        "run in the same rounds, for a before/after")
    p.add_argument("--api-version", default="auto", help="the pack config's slurm_api_version (auto probes per process)")
    p.add_argument("--decompose", action="store_true",
                   help="also run, each round, an action that only imports requests and one that only loads "
                        "actions/lib/base.py (what submit imports), to split submit's cost")
    p.add_argument("--importtime", action="store_true",
                   help="run one more submit with python -X importtime and print its 25 costliest imports")
    args = p.parse_args()
    rounds = args.rounds or (6 if args.quick else 25)
    env = build_env(args.st2_source, args.st2_ref, args.cache, args.python)
    empty = args.cache / "empty_action.py"
    empty.write_text(EMPTY_ACTION)
    decompose = {}
    if args.decompose:
        for n, (name, text) in enumerate(DECOMPOSE_ACTIONS.items()):
            decompose[name] = args.cache / f"decompose_{n}.py"
            decompose[name].write_text(text.replace("{actions!r}", repr(str(args.pack.resolve() / "actions"))))
    packs = {"": args.pack.resolve()}
    if args.compare:
        packs[f" [{args.compare}]"] = args.compare.resolve()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    times, cpu = {"empty": []}, {}  # wall and CPU (user + system) ms of each execution
    with common.bench_testbed(args.reuse) as (etcd, slurm):
        config = common.pack_config(etcd, slurm, slurm_api_version=args.api_version)
        settings, db, slurm_client = common.services(config)
        runs = {tag: wrapper_runner(env, config, args.cache, pack) for tag, pack in packs.items()}
        submitted = {tag: [] for tag in packs}  # (key, job_id) in order
        left = []
        try:
            for i in range(-1, rounds):  # round -1: a warm-up, not counted
                steps = [("empty", runs[""], empty, {}, None)]
                steps += [(name, runs[""], path, {}, None) for name, path in decompose.items()]
                for n, (tag, pack) in enumerate(packs.items()):
                    actions, run, done = pack / "actions", runs[tag], submitted[tag]
                    key = f"st2-{n}-{i + 1}"
                    db.create_deployment(key, "slurm", {"script": SCRIPT})
                    steps.append((f"submit{tag}", run, actions / "submit.py", {"key": key}, "submitted"))
                    if len(done) >= 1:
                        steps.append((f"update_state{tag}", run, actions / "update_state.py", {"key": done[-1][0]}, None))
                    if len(done) >= 2:
                        old_key, old_job = done[-2]
                        db.delete_deployment(old_key)
                        steps.append((f"cancel{tag}", run, actions / "cancel.py", {"key": old_key, "job_id": old_job}, None))
                # a random order per round: no action always runs right after another (caches, load)
                random.shuffle(steps)
                for name, run, path, params, want in steps:
                    wall, result, _ = run(path, params)
                    if want and _outcome(result) != want:
                        raise SystemExit(f"{name} {params}: expected outcome {want}, got {result}")
                    if name.startswith("submit"):
                        job_id = result["result"].get("job_id")
                        if not job_id:
                            raise SystemExit(f"{name} {params}: no job_id in {result}")
                        submitted[name[len("submit"):]].append((params["key"], job_id))
                        left.append(job_id)
                    elif result.get("status") is False:
                        raise SystemExit(f"{name} {params} failed: {result}")
                    if i >= 0:
                        times.setdefault(name, []).append(wall[0] * 1000)
                        cpu.setdefault(name, []).append(wall[1] * 1000)
            if args.importtime:
                key = "st2-importtime"
                db.create_deployment(key, "slurm", {"script": SCRIPT})
                run = wrapper_runner(env, config, args.cache, packs[""], importtime=True)
                _, result, stderr = run(packs[""] / "actions/submit.py", {"key": key})
                left.append(result["result"].get("job_id"))
                rows = [line.split("|") for line in stderr.splitlines()
                        if line.startswith("import time:") and line.split("|")[1].strip().isdigit()]
                rows.sort(key=lambda r: -int(r[1]))
                print("\n== python -X importtime of one submit under the wrapper: 25 costliest (cumulative us) ==")
                for r in rows[:25]:
                    print(f"  {int(r[1]):>8}  {r[2].rstrip()}")
        finally:
            for job_id in left:
                try:
                    slurm_client.cancel_job(job_id)
                except Exception:  # noqa: BLE001 - best effort on a throwaway cluster
                    pass
    floor = statistics.median(times["empty"])
    floor_cpu = statistics.median(cpu["empty"])
    rows = [("", "n", "median ms", "p90 ms", "median / empty", "CPU ms median", "CPU / empty")]
    labels = [("empty", "(a) empty action (floor)")] + [(name, f"    {name}") for name in decompose]
    for tag in packs:
        labels += [(f"submit{tag}", f"(b) submit{tag}"), (f"cancel{tag}", f"(c) cancel{tag}"),
                   (f"update_state{tag}", f"(d) update_state{tag}")]
    for name, label in labels:
        s = sorted(times[name])
        p90 = s[min(len(s) - 1, int(round(0.9 * len(s) + 0.5)) - 1)]
        med = statistics.median(s)
        c = statistics.median(cpu[name])
        rows.append((label, len(s), f"{med:.0f}", f"{p90:.0f}", f"{med / floor:.2f}", f"{c:.0f}", f"{c / floor_cpu:.2f}"))
    common.emit(f"one action execution under StackStorm {args.st2_ref}'s python_action_wrapper.py", rows,
                f"{started}, {rounds} rounds, pack {args.pack}, slurm_api_version {args.api_version}, {common.load()}")


if __name__ == "__main__":
    main()
