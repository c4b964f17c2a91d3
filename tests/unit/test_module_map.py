"""The module maps (lib/slurmdeploy/__init__.py, lib/slurmdeploy/slurm/__init__.py and README.md's
"you see in this README | code" table) name every module of the library, and nothing else."""

import re
from pathlib import Path

import slurmdeploy
import slurmdeploy.slurm

LIB = Path(__file__).resolve().parents[2] / "lib" / "slurmdeploy"
README = LIB.parents[1] / "README.md"


def modules_in(package_dir, package):
    """Dotted names of the modules and subpackages directly in ``package_dir``."""
    names = {f"{package}.{p.stem}" for p in package_dir.glob("*.py") if p.name != "__init__.py"}
    names |= {f"{package}.{p.parent.name}" for p in package_dir.glob("*/__init__.py")}
    return names


def mapped(doc):
    return set(re.findall(r"^- :mod:`([\w.]+)`", doc, flags=re.M))


def test_the_library_map_names_every_module():
    assert mapped(slurmdeploy.__doc__) == modules_in(LIB, "slurmdeploy")


def test_the_slurm_map_names_every_module():
    assert mapped(slurmdeploy.slurm.__doc__) == modules_in(LIB / "slurm", "slurmdeploy.slurm")


def test_the_map_check_sees_a_missing_module():
    assert modules_in(LIB, "slurmdeploy") - mapped(slurmdeploy.__doc__.replace("slurmdeploy.watch`", "x`")) == {
        "slurmdeploy.watch"}


def readme_map():
    text = README.read_text()
    start = text.index("| you see in this README | code |")
    return text[start:text.index("\n\n", start)]


def test_the_readme_map_names_every_module_file():
    table = readme_map()
    files = sorted(str(p.relative_to(LIB)) for p in LIB.rglob("*.py") if p.name != "__init__.py")
    assert [f for f in files if f not in table] == []
