"""The README's quick start and the example pipeline run as a user would run them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def run_dagorch_here(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``dagorch`` command, run from the top of the project."""
    return subprocess.run(
        ["dagorch", *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def test_the_readme_quick_start_runs_the_graph_to_completion(tmp_path):
    readme = (ROOT / "README.md").read_text()
    quick_start = re.search(r"## Quick start\n\n```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "quick_start.py"
    script.write_text(quick_start)

    done = run_python([str(script)])

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("done:") == 4
    assert "True" in done.stdout
    assert "join got ['part a', 'part b']" in done.stdout


def test_the_example_pipeline_merges_every_research_result():
    done = run_python(["examples/hello_dag.py"])

    assert done.returncode == 0, done.stderr
    assert "Merged result: agents=6 | dags=4 | queues=6" in done.stdout
    assert re.search(r"review\s+cancelled\s+\(Upstream task \"research extras\"", done.stdout)


def test_the_readme_eliza_example_runs_with_the_real_runtime(tmp_path):
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"## In an ElizaOS agent\n.*?```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "eliza_example.py"
    script.write_text(example)

    done = run_python([str(script)])

    assert done.returncode == 0, done.stderr
    assert "Hello from my-agent" in done.stdout


def test_the_eliza_agent_example_runs_a_pipeline_from_chat():
    done = run_python(["examples/eliza_agent.py"])

    assert done.returncode == 0, done.stderr
    assert "Waits on: Create task: draft the outline" in done.stdout
    assert done.stdout.count("completed 100%") == 3


def test_the_readme_main_job_runs_the_hello_pipeline():
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).strip()
    assert first == "python3 -m pip install -e . && dagorch run examples/hello.toml"
    done = run_dagorch_here("run", "examples/hello.toml")
    assert done.returncode == 0, done.stderr
    assert "5 completed" in done.stdout


def test_the_ci_script_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    second = re.findall(r"```bash\n(.*?)```", readme, re.S)[1].strip()
    assert second in (ROOT / ".ci" / "run").read_text()


def test_the_research_pipeline_runs_on_the_builtin_providers():
    done = run_dagorch_here("run", "examples/research.toml", "--json")
    assert done.returncode == 0, done.stderr
    assert '"completed": 6' in done.stdout


def test_the_llm_research_pipeline_runs_against_an_openai_compatible_server(
    chat_server, monkeypatch
):
    monkeypatch.setenv("OPENAI_BASE_URL", chat_server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "streams")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    done = run_dagorch_here("run", "examples/research_llm.toml", "--json")
    assert done.returncode == 0, done.stderr
    assert '"completed": 6' in done.stdout
    merge = next(r["body"] for r in chat_server.requests if "Merge the findings" in str(r["body"]))
    assert merge["max_tokens"] == 400
    assert "## research-dags\nHello\nworld" in merge["messages"][-1]["content"]


def test_the_coding_pipeline_hands_its_steps_to_an_acp_agent(tmp_path, monkeypatch):
    import shutil
    import sys

    shutil.copy(ROOT / "examples" / "coding.toml", tmp_path)
    (tmp_path / "coding-workspace").mkdir()
    agent = ROOT / "tests" / "acp_agent.py"
    monkeypatch.setenv("DAGORCH_ACP_COMMAND", f"{sys.executable} {agent} works")
    done = run_dagorch_here("run", str(tmp_path / "coding.toml"), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "coding-workspace" / "hello.txt").read_text() == "hello\n"
