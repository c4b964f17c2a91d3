"""The Configuration Database layout: docs/design.md's table is the code's, paths and range
ends are right, the marker round-trips, and no other module spells a path or the marker."""

import pathlib
import re

import pytest

from slurmdeploy.layout import (CHILDREN, KEY_PATTERN, LAYOUT, MARKER_PREFIX, Layout, deployment_marker,
                                parse_marker, prefix_end)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _design_table():
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## Configuration Database layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return section, [tuple(cell.strip() for cell in row.strip().strip("|").split(" | ")) for row in rows]


def test_the_design_table_is_the_layout_table_row_by_row():
    _, rows = _design_table()
    assert rows == [(f"`[prefix]{e.path}`", e.value, e.written_by) for e in LAYOUT]


def test_the_design_section_states_the_marker_and_the_range_ends_the_code_uses():
    section, _ = _design_table()
    assert f"`{deployment_marker('<key>', 0).replace('@0', '@<create_revision>')}`" in section
    layout = Layout("[prefix]")
    start, end = layout.deploy_range()
    assert f"`{start}` .. `{end}`" in section
    start, end = layout.children_range("<key>")
    assert f"`{start}` .. `{end}`" in section


def test_the_layout_table_names_every_path_the_layout_makes():
    layout = Layout("[prefix]")
    made = [layout.deployment("<key>")] + [layout.child("<key>", child) for child in CHILDREN]
    assert made == [f"[prefix]{e.path}" for e in LAYOUT]


@pytest.mark.parametrize("prefix, deployment", [("", "/deploy/a-1"), ("/sdp", "/sdp/deploy/a-1"),
                                                ("/sdp/", "/sdp/deploy/a-1")])
def test_paths_under_a_prefix(prefix, deployment):
    layout = Layout(prefix)
    assert layout.deployment("a-1") == deployment
    assert (layout.state("a-1"), layout.owner("a-1"), layout.attempt("a-1")) == tuple(
        f"{deployment}/{c}" for c in ("state", "owner", "attempt"))
    for path, key, child in ((layout.deployment("a-1"), "a-1", None), (layout.attempt("a-1"), "a-1", "attempt")):
        where = layout.split(path)
        assert (where.key, where.child, where.problem) == (key, child, None)


def test_split_names_what_the_layout_has_no_place_for():
    layout = Layout("/p")
    assert "does not match" in layout.split(layout.deploy_prefix + "bad key").problem
    assert "contains '/'" in layout.split(layout.deploy_prefix + "a-1/sub/key").problem
    assert "contains '/'" in layout.split(layout.deploy_prefix + "a-1/other").problem
    outside = layout.split("/q/deploy/a-1")
    assert (outside.key, outside.problem) == (None, None)  # not ours to judge
    with pytest.raises(ValueError, match="not a deployment child"):
        layout.child("a-1", "other")


def test_range_ends_keep_siblings_out():
    layout = Layout("/p")
    start, end = layout.children_range("a-1")
    inside = lambda path: start <= path < end  # noqa: E731 - etcd compares bytes; all ASCII here
    assert all(inside(layout.child("a-1", c)) for c in CHILDREN)
    assert not inside(layout.deployment("a-1")) and not inside(layout.deployment("a-1x"))
    assert not inside(layout.state("a-1-x"))
    assert prefix_end("/deploy/") == "/deploy0"
    with pytest.raises(ValueError):
        prefix_end("")


def test_the_marker_round_trips_and_rejects_lookalikes():
    marker = deployment_marker("a-1", 99)
    assert marker == "sdp-deployment:a-1@99"  # the format jobs already in Slurm carry: never change it
    assert marker.startswith(MARKER_PREFIX) and parse_marker(marker) == ("a-1", 99)
    for comment in (None, "", MARKER_PREFIX, f"{MARKER_PREFIX}a-1@", f"{MARKER_PREFIX}bad key@1", "user comment"):
        assert parse_marker(comment) is None
    assert KEY_PATTERN.match("a-1") and not KEY_PATTERN.match("a/1")


SPELLINGS = re.compile(r"""["'](?:[^"'\n]*)(?:/deploy/|/deploy["']|/state["']|/owner["']|/attempt["']|sdp-deployment:)""")


def test_no_other_module_spells_a_path_or_the_marker():
    """The brief of issue 18: lib/, sensors/, actions/, scripts/ and tests/ ask layout.py. Strings
    in docstrings and comments are prose; only code literals count (a line's string literal that
    is not in a docstring or comment)."""
    offenders = []
    for folder in ("lib", "sensors", "actions", "scripts", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "layout.py" or path == pathlib.Path(__file__).resolve():
                continue
            in_doc = False
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                stripped = line.strip()
                quotes = stripped.count('"""') + stripped.count("'''")
                if in_doc or stripped.startswith(('"""', "'''", "#")):
                    if quotes == 1:
                        in_doc = not in_doc
                    continue
                code = line.split("  #", 1)[0]
                if SPELLINGS.search(code):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert offenders == []
