"""Running the installed ``dagorch`` command in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def dagorch_command() -> str:
    """The installed ``dagorch`` console script of this environment."""
    beside = Path(sys.executable).with_name("dagorch")
    found = str(beside) if beside.exists() else shutil.which("dagorch")
    assert found, "the dagorch command is not installed (pip install -e .)"
    return found


def run_dagorch(*args: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [dagorch_command(), *args], capture_output=True, text=True, env=env, timeout=60
    )
