"""Each setting is declared once (lib/slurmdeploy/settings.py: environment variable, default,
type, bounds); config.schema.yaml and the README's configuration table must say the same."""

import re
from pathlib import Path

import pytest
import yaml

from slurmdeploy.settings import SCHEMA_TYPES, declarations

REPO = Path(__file__).resolve().parents[2]
DECLARED = declarations()


def shown(value):
    """How a default is written in config.schema.yaml and the README."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load((REPO / "config.schema.yaml").read_text())


@pytest.fixture(scope="module")
def readme_rows():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Configuration reference"):text.index("## Deployments")]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)`( †)?", cells[0]) if len(cells) == 4 else None
        if m:
            rows[m.group(1)] = {"secret": bool(m.group(2)), "env": cells[1], "default": cells[2]}
    return rows


def test_schema_declares_exactly_the_settings(schema):
    assert list(schema) == list(DECLARED)


@pytest.mark.parametrize("name", list(DECLARED))
def test_schema_entry_agrees_with_the_declaration(schema, name):
    d, entry = DECLARED[name], schema[name]
    assert entry["type"] == SCHEMA_TYPES[d["kind"]]
    assert bool(entry.get("secret")) == d["secret"]
    assert entry.get("required") is False and "default" not in entry  # a schema default would hide the env var
    assert entry.get("enum") == (list(d["choices"]) if d["choices"] else None)
    assert entry.get("minimum") == d["minimum"]
    if d["env"]:
        assert f"env {d['env']}" in entry["description"]
    if d["default"] not in (None, "", {}):
        assert f"default {shown(d['default'])}" in entry["description"]


@pytest.mark.parametrize("name", list(DECLARED))
def test_readme_row_agrees_with_the_declaration(readme_rows, name):
    row, d = readme_rows[name], DECLARED[name]
    assert row["secret"] == d["secret"]
    if d["env"]:
        assert row["env"] == f"`{d['env']}`"
    else:
        assert not row["env"].startswith("`")  # "—", or a note such as job_environment's
    if d["default"] == "":
        assert row["default"] == "none"
    elif d["default"] is not None:
        assert row["default"] == f"`{shown(d['default'])}`"


def test_readme_lists_exactly_the_settings(readme_rows):
    assert list(readme_rows) == list(DECLARED)


def test_every_secret_has_a_datastore_key_setting():
    for name, d in DECLARED.items():
        if d["secret"]:
            assert d["datastore_key"] in DECLARED and not DECLARED[d["datastore_key"]]["secret"], name
