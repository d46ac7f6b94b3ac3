"""A real third-party provider package, pip-installed, registers itself with no host change.

``examples/provider-package`` is built and installed with pip into a temporary folder once per
test session. With that folder on ``sys.path`` its ``shout`` provider is listed, selectable and
runs tasks; without it, it is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from commands import run_dagorch

from orchestrator import AgentOrchestratorPluginOptions, AgentOrchestratorService, MemoryStore
from orchestrator.plugins import PluginHost

PACKAGE = Path(__file__).resolve().parent.parent / "examples" / "provider-package"


@pytest.fixture(scope="session")
def installed_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder pip installed ``dagorch-shout`` into (built from a copy, so the example's
    own folder stays clean)."""
    root = tmp_path_factory.mktemp("provider-package")
    source = root / "source"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_the_installed_package_is_listed_by_the_dagorch_command(installed_package):
    shown = run_dagorch("providers", "--json", extra_path=installed_package)
    assert shown.returncode == 0, shown.stderr
    rows = {row["id"]: row for row in json.loads(shown.stdout)["providers"]}
    assert rows["shout"] == {
        "id": "shout",
        "label": "Shout",
        "description": "Outputs the task's text in capitals",
        "plugin": "shout",
        "distribution": "dagorch-shout",
        "version": "1.2.0",
    }


def test_without_the_package_its_provider_is_absent():
    shown = run_dagorch("providers", "--json")
    ids = [row["id"] for row in json.loads(shown.stdout)["providers"]]
    assert "shout" not in ids
    assert "echo" in ids
    assert "shout" not in PluginHost().registry.ids


async def test_the_installed_provider_is_selectable_and_runs_a_task(installed_package, monkeypatch):
    monkeypatch.syspath_prepend(str(installed_package))
    monkeypatch.setenv("ELIZA_CODE_ACTIVE_SUB_AGENT", "shout")
    options = AgentOrchestratorPluginOptions()
    async with await AgentOrchestratorService.start(
        options=options, store=MemoryStore()
    ) as service:
        first = await service.create_task("a", "", provider_id="echo", params={"text": "x"})
        task = await service.create_task("b", "make some noise", depends_on=[first.id])
        assert task.metadata.provider_id == "shout"
        summary = await service.run()
        assert summary.ok
        done = await service.get_task(task.id)
        assert done.metadata.result is not None
        assert done.metadata.result.summary == "MAKE SOME NOISE!"
    monkeypatch.delitem(sys.modules, "dagorch_shout", raising=False)
