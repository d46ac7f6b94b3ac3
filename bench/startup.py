"""How long ``dagorch providers`` takes from a cold start, against ``python -c pass``.

    python bench/startup.py              # best of 10 each
    python bench/startup.py --repeat 20

Both run as fresh subprocesses of this interpreter's environment, alternating; the best wall
time of each is kept. The target (issue 4) is under 0.3 s for ``dagorch providers`` here.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.3


def command() -> list[str]:
    beside = Path(sys.executable).with_name("dagorch")
    found = str(beside) if beside.exists() else shutil.which("dagorch")
    if not found:
        raise SystemExit("dagorch is not installed: pip install -e .")
    return [found, "providers"]


def wall(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    baseline_args = [sys.executable, "-c", "pass"]
    dagorch_args = command()
    baseline, dagorch = [], []
    for _ in range(args.repeat):
        baseline.append(wall(baseline_args))
        dagorch.append(wall(dagorch_args))
    best_base, best_dagorch = min(baseline), min(dagorch)
    print(
        f"python -c pass      best {best_base:.3f} s  median {sorted(baseline)[len(baseline) // 2]:.3f} s"
    )
    print(
        f"dagorch providers   best {best_dagorch:.3f} s  median {sorted(dagorch)[len(dagorch) // 2]:.3f} s"
    )
    print(
        f"ratio {best_dagorch / best_base:.2f}x, {1000 * (best_dagorch - best_base):.0f} ms over a bare interpreter"
    )
    verdict = "PASS" if best_dagorch < TARGET_S else "MISS"
    print(f"{verdict}  dagorch providers {best_dagorch:.3f} s (target < {TARGET_S} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
