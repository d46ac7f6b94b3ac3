"""Installed distributions made on the fly: a ``.dist-info`` folder and modules on ``sys.path``.

This is how pip leaves a package on disk, so ``importlib.metadata`` finds its entry points exactly
as it finds a real one's. Module names get a unique suffix, so tests never share a cached module.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


class DistFactory:
    """Makes distributions under one folder that is on ``sys.path`` for the test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def module(self, stem: str, source: str) -> str:
        """Write a module with a unique name from ``stem``; return that name."""
        name = f"{stem}_{uuid.uuid4().hex[:8]}"
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)
        return name

    def dist(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        """Declare distribution ``name`` with these ``dagorch.providers`` entry points."""
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = [f"{ep} = {value}" for ep, value in entry_points.items()]
        (info / "entry_points.txt").write_text("[dagorch.providers]\n" + "\n".join(lines) + "\n")

    def plugin(self, dist: str, source: str, *, version: str = "1.0", ep: str | None = None) -> str:
        """A distribution with one plugin module made from ``source``; returns the module name."""
        module = self.module(dist.replace("-", "_"), source)
        self.dist(dist, version, {ep or dist: module})
        return module


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DistFactory]:
    """A factory for installed distributions, removed from ``sys.path`` after the test."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    factory = DistFactory(root)
    yield factory
    for name in factory.modules:
        sys.modules.pop(name, None)
