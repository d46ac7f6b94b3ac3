"""A short soak in CI (the long one is ``bench/soak.py``): many tasks, controllers pausing,
resuming and cancelling at random, a watchdog, no lost update, every task terminal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from soak import soak


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
async def test_random_control_under_load_loses_nothing_and_never_stalls(store_kind):
    result = await soak(tasks=200, controllers=10, seconds=4, store_kind=store_kind, stall=10)
    assert result["problems"] == []
    assert result["tasks"] >= 200
    assert sum(result["counts"].values()) == result["tasks"]
    assert set(result["counts"]) <= {"completed", "cancelled", "failed"}
