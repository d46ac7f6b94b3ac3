"""The long crash test: a 200-task pipeline on SQLite killed with SIGKILL 20 times.

``python bench/crash_soak.py [--kills 20] [--tasks 200] [--seed 7]``. After every kill it records
which tasks the file says completed; at the end it checks that every task completed, that none of
the tasks completed before a kill ran again, that every completed task kept its output line, and
that ``PRAGMA integrity_check`` is ok. The test suite runs the same check with 5 kills.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "crash_pipeline.py"


def completed(db: Path) -> set[str]:
    with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as connection:
        docs = [json.loads(doc) for (doc,) in connection.execute("SELECT doc FROM tasks")]
    return {d["id"] for d in docs if d["metadata"]["status"] == "completed"}


def ran(log: Path) -> list[str]:
    if not log.exists():
        return []
    text = log.read_text()
    return [line.split()[1] for line in text[: text.rfind("\n") + 1].splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="dagorch-crash-"))
    db, log = folder / "pipeline.db", folder / "ran.log"
    command = [sys.executable, str(SCRIPT), str(db), str(log), str(args.tasks)]
    checkpoints: list[tuple[int, set[str]]] = []
    began = time.monotonic()
    while len(checkpoints) < args.kills:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        target = len(ran(log)) + rng.randint(2, 12)
        while len(ran(log)) < target and process.poll() is None:
            time.sleep(0.002)
        if process.poll() is not None:
            print(f"the pipeline finished after {len(checkpoints)} kills; use more --tasks")
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        checkpoints.append((len(ran(log)), completed(db)))
        print(f"kill {len(checkpoints):2}: {len(checkpoints[-1][1]):4} tasks completed so far")
    final = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    runs = ran(log)
    problems = []
    if final.returncode != 0:
        problems.append(f"the last run failed: {final.stderr[-2000:]}")
    for position, done in checkpoints:
        again = done & set(runs[position:])
        if again:
            problems.append(f"completed tasks ran again after a kill: {sorted(again)[:5]}")
    with sqlite3.connect(db) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        docs = [json.loads(doc) for (doc,) in connection.execute("SELECT doc FROM tasks")]
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    unfinished = [d["id"] for d in docs if d["metadata"]["status"] != "completed"]
    lost = [d["id"] for d in docs if f"work of {d['id']}" not in d["metadata"]["output"]]
    if len(docs) != args.tasks or unfinished:
        problems.append(f"{len(docs)} tasks stored, not completed: {unfinished[:5]}")
    if lost:
        problems.append(f"output lost for {lost[:5]}")
    took = time.monotonic() - began
    print(f"{len(checkpoints)} kills, {len(runs)} task runs for {args.tasks} tasks, {took:.1f} s")
    for problem in problems:
        print("FAIL:", problem)
    print("OK" if not problems else "FAILED")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
