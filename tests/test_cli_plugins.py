"""``dagorch providers`` and ``dagorch plugins``, run as the installed command in a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from commands import dagorch_command, run_dagorch
from plugin_dists import DistFactory


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    """A folder holding one installed distribution whose plugin fails to import."""
    site = tmp_path / "broken-site"
    site.mkdir()
    factory = DistFactory(site)
    factory.plugin("broken-dist", "raise RuntimeError('no API key configured')\n", version="0.3")
    return site


def test_providers_lists_each_provider_with_its_plugin_and_distribution():
    shown = run_dagorch("providers")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["ID", "LABEL", "PLUGIN", "DISTRIBUTION", "VERSION", "DESCRIPTION"]
    echo = next(line for line in lines if line.startswith("echo "))
    assert echo.split()[:4] == ["echo", "Echo", "echo", "dagorch"]


def test_providers_shows_broken_plugins_with_their_error(broken_site):
    shown = run_dagorch("providers", extra_path=broken_site)
    assert shown.returncode == 0
    assert "broken plugins:" in shown.stdout
    assert "broken-dist 0.3 (plugin 'broken-dist')" in shown.stdout
    assert "RuntimeError: no API key configured" in shown.stdout
    assert "echo " in shown.stdout


def test_providers_json_reports_broken_plugins(broken_site):
    shown = run_dagorch("providers", "--json", extra_path=broken_site)
    report = json.loads(shown.stdout)
    (broken,) = report["broken"]
    assert broken["name"] == "broken-dist"
    assert broken["distribution"] == "broken-dist"
    assert broken["version"] == "0.3"
    assert "no API key configured" in broken["error"]


def test_plugins_lists_each_plugin_with_its_hooks_and_status(broken_site):
    shown = run_dagorch("plugins", "--json", extra_path=broken_site)
    records = {record["name"]: record for record in json.loads(shown.stdout)}
    assert records["shell"]["hooks"] == ["register_providers"]
    assert records["shell"]["providers"] == ["shell"]
    assert records["shell"]["error"] is None
    assert records["broken-dist"]["error"].endswith("RuntimeError: no API key configured")
    text = run_dagorch("plugins", extra_path=broken_site).stdout
    assert any(
        line.split()[:4] == ["broken-dist", "broken-dist", "0.3", "broken"]
        for line in text.splitlines()
    )


def test_strict_mode_makes_the_command_fail_on_a_broken_plugin(broken_site, monkeypatch):
    monkeypatch.setenv("DAGORCH_STRICT_PLUGINS", "1")
    shown = run_dagorch("providers", extra_path=broken_site)
    assert shown.returncode == 1
    assert "Plugin 'broken-dist' failed" in shown.stderr


def test_disabled_plugins_are_shown_as_disabled(monkeypatch):
    monkeypatch.setenv("DAGORCH_DISABLE_PLUGINS", "shell")
    shown = run_dagorch("plugins")
    shell = next(line for line in shown.stdout.splitlines() if line.startswith("shell "))
    assert shell.split()[3] == "disabled"
    ids = [row["id"] for row in json.loads(run_dagorch("providers", "--json").stdout)["providers"]]
    assert "shell" not in ids


@pytest.mark.parametrize("command", [[], ["providers"], ["plugins"]])
def test_help_shows_an_example(command):
    shown = run_dagorch(*command, "--help")
    assert shown.returncode == 0
    assert "examples:" in shown.stdout
    assert "dagorch " in shown.stdout.split("examples:")[1]


def test_no_command_prints_help_and_exits_with_the_usage_code():
    shown = subprocess.run([dagorch_command()], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 2
    assert "usage: dagorch" in shown.stderr
