"""scripts/demo.sh takes its ports from the environment, also when it re-runs itself with sudo
(which drops the environment): every port variable it reads is passed on, and the README and
the script's header name them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "scripts" / "demo.sh").read_text()


def test_every_port_variable_the_demo_reads_survives_the_sudo_rerun():
    read = set(re.findall(r"\$\{([A-Z_]+_PORT):-", DEMO))
    assert read == {"ETCD_LAB_PORT", "ETCD_LAB_PEER_PORT", "SLURM_LAB_CTLD_PORT", "SLURM_LAB_SLURMD_PORT",
                    "SLURM_LAB_REST_PORT"}
    passed = set(re.search(r"for name in ([A-Z_ ]+); do", DEMO).group(1).split())
    assert read | {"DEMO_DIR", "SLURM_LAB_AUTH"} <= passed


def test_the_ports_are_documented_where_a_newcomer_looks():
    readme = (ROOT / "README.md").read_text()
    header = DEMO.split("set -euo pipefail")[0]
    for name in ("ETCD_LAB_PORT", "SLURM_LAB_REST_PORT"):
        assert name in header and name in readme, name
