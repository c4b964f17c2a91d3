"""Fixtures for packrunner tests (fixture packs live in packrunner/tests/fixtures/packs/)."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
if SRC not in sys.path:  # packrunner's tests run with or without `pip install -e packrunner`
    sys.path.insert(0, SRC)

PACKS = os.path.join(HERE, "fixtures", "packs")
DEMO = os.path.join(PACKS, "demo")
DEMO_CONFIG = {"api_token": "s3cret-token", "fast_poll": True}


@pytest.fixture
def demo_pack():
    return DEMO


@pytest.fixture
def make_runner(tmp_path):
    from packrunner import Runner

    created = []

    def factory(config=DEMO_CONFIG, state_dir=None, pack=DEMO, **kw):
        runner = Runner(pack, config=dict(config) if isinstance(config, dict) else config,
                        state_dir=str(state_dir or tmp_path / "state"), **kw)
        created.append(runner)
        return runner

    yield factory
    for r in created:
        r.close()
