"""Hostile input for the pipeline loader: whatever the text, it loads or raises PipelineError.

(The action text parser and the action parameters are fuzzed in ``test_actions.py``.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.pipeline import PipelineError, parse_pipeline

KNOWN = ["echo", "python", "shell"]
KEYS = st.sampled_from(
    [
        "id",
        "name",
        "provider",
        "params",
        "depends_on",
        "retries",
        "timeout",
        "description",
        "text",
        "command",
        "x-y",
        "store",
        "concurrency",
        "executor",
    ]
)

scalars = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)


def toml_value(value: Any) -> str:
    """A TOML literal for ``value`` (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) and "e" not in repr(value) else "0.5"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"


def load(text: str) -> None:
    try:
        parse_pipeline(text, "fuzz.toml", Path("/tmp"), KNOWN)
    except PipelineError as exc:
        assert exc.problems
        assert all(str(problem) for problem in exc.problems)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_random_text_loads_or_gives_a_pipeline_error(text):
    load(text)


@settings(max_examples=300, deadline=None)
@given(
    pipeline=st.dictionaries(KEYS, values, max_size=4),
    tasks=st.lists(st.dictionaries(KEYS, values, max_size=6), max_size=5),
)
def test_random_tables_load_or_give_a_pipeline_error_naming_each_problem(pipeline, tasks):
    lines = ["[pipeline]"] + [f'"{k}" = {toml_value(v)}' for k, v in pipeline.items()]
    for table in tasks:
        lines.append("[[tasks]]")
        lines += [f'"{k}" = {toml_value(v)}' for k, v in table.items()]
    load("\n".join(lines) + "\n")


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6),
    edges=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=8),
)
def test_random_graphs_load_or_name_their_cycles_and_unknown_tasks(ids, edges):
    tables: list[dict[str, Any]] = [
        {"id": task_id, "provider": "echo", "depends_on": []} for task_id in ids
    ]
    for a, b in edges:
        tables[a % len(tables)]["depends_on"].append(ids[b % len(ids)] if b < 4 else "ghost")
    text = "\n".join(
        "[[tasks]]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in t.items()) for t in tables
    )
    load(text)
