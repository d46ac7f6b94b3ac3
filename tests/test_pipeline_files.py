"""Pipeline files: what a valid file gives, and every problem reported at once with its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.cli._run import render_graph
from orchestrator.pipeline import PipelineError, load_pipeline, parse_pipeline, start_run
from orchestrator.pipeline._run import RunRecord, task_specs

KNOWN = ["echo", "python", "shell"]


def parse(text: str):
    return parse_pipeline(textwrap.dedent(text), "p.toml", Path("/work"), KNOWN)


def problems(text: str) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        parse(text)
    return [str(problem) for problem in caught.value.problems]


def test_a_valid_file_gives_its_tasks_settings_and_graph():
    pipeline = parse(
        """
        [pipeline]
        name = "demo"
        concurrency = 2
        provider = "echo"

        [[tasks]]
        id = "a"

        [[tasks]]
        id = "b"
        depends_on = ["a"]
        params = { text = "{{ tasks.a.summary }}" }
        retries = 2
        timeout = 5
        """
    )
    assert pipeline.name == "demo"
    assert pipeline.settings.concurrency == 2
    assert [t.id for t in pipeline.tasks] == ["a", "b"]
    assert pipeline.tasks[1].retries == 2
    assert list(pipeline.graph().edges) == [("a", "b")]


def test_the_name_defaults_to_the_file_name():
    pipeline = parse_pipeline(
        '[[tasks]]\nid = "a"\nprovider = "echo"\n', "my flow.toml", Path("."), KNOWN
    )
    assert pipeline.name == "my-flow"


def test_every_problem_is_reported_at_once_with_its_line_and_path():
    found = problems(
        """
        [pipeline]
        concurrency = "four"

        [[tasks]]
        id = "a"
        provider = "ech"
        retries = -1

        [[tasks]]
        id = "b"
        depends_on = ["a", "zzz", "c"]
        provider = "echo"
        params = { text = "{{ tasks.x.summary }}" }
        colour = "red"

        [[tasks]]
        id = "c"
        provider = "echo"
        depends_on = ["b"]

        [[tasks]]
        id = "a"
        provider = "echo"
        """
    )
    assert found == [
        "line 3: pipeline.concurrency: input should be a valid integer, got str 'four'",
        'line 7: tasks[0].provider: unknown provider "ech" (known: echo, python, shell)',
        "line 8: tasks[0].retries: input should be greater than or equal to 0",
        "line 12: tasks[1].depends_on[1]: unknown task 'zzz'",
        "line 12: tasks[1].depends_on: dependency cycle: b -> c -> b",
        "line 14: tasks[1].params.text: {{ tasks.x.summary }} names a task this one does not depend on",
        "line 15: tasks[1].colour: unknown field (known: id, name, description, provider, params, depends_on, retries, timeout)",
        "line 23: tasks[3].id: duplicate task id 'a' (also tasks[0])",
    ]


def test_invalid_toml_names_the_line_and_column():
    assert problems('[[tasks]]\nid = "a"\nprovider = echo\n') == [
        "line 3: invalid TOML: Invalid value (at line 3, column 12)"
    ]


def test_an_empty_pipeline_is_refused():
    assert problems("[pipeline]\nname = 'x'\n") == [
        "tasks: the pipeline has no tasks: add at least one [[tasks]] table"
    ]


def test_a_task_without_any_provider_is_refused():
    assert problems('[[tasks]]\nid = "a"\n') == [
        "line 1: tasks[0].provider: no provider: set provider here or in [pipeline]"
    ]


@pytest.mark.parametrize("field", ["colour", "Summary"])
def test_a_placeholder_with_an_unknown_field_is_refused(field):
    found = problems(
        f"""
        [[tasks]]
        id = "a"
        provider = "echo"

        [[tasks]]
        id = "b"
        provider = "echo"
        depends_on = ["a"]
        params = {{ text = "{{{{ tasks.a.{field} }}}}" }}
        """
    )
    known = "summary, output, files_created, files_modified"
    assert found == [f"line 10: tasks[1].params.text: unknown field '{field}' (known: {known})"]


def test_a_placeholder_in_the_pipelines_shared_params_is_refused():
    found = problems(
        """
        [pipeline]
        provider = "echo"
        params = { text = "{{ tasks.a.summary }}" }

        [[tasks]]
        id = "a"
        """
    )
    assert found == [
        "line 4: pipeline.params.text: {{ tasks.a.summary }}: placeholders belong in a task's own params"
    ]


def test_an_unknown_pipeline_provider_is_refused_once_even_if_no_task_uses_it():
    found = problems(
        """
        [pipeline]
        provider = "ecoh"

        [[tasks]]
        id = "a"
        provider = "echo"

        [[tasks]]
        id = "b"
        """
    )
    assert found == [
        'line 3: pipeline.provider: unknown provider "ecoh" (known: echo, python, shell)'
    ]


def test_a_task_with_an_empty_provider_uses_the_pipelines():
    pipeline = parse(
        """
        [pipeline]
        provider = "echo"

        [[tasks]]
        id = "a"
        provider = ""
        """
    )

    assert [task.id for task in pipeline.tasks] == ["a"]


def test_a_wrong_type_names_the_type_given():
    found = problems('[[tasks]]\nid = "a"\nprovider = "echo"\ndepends_on = "b"\n')
    assert found == ["line 4: tasks[0].depends_on: input should be a valid list, got str 'b'"]


def test_an_unknown_table_is_refused():
    assert problems('[pipline]\nname = "x"\n[[tasks]]\nid = "a"\nprovider = "echo"\n') == [
        "line 1: pipline: unknown table"
    ]


def test_a_missing_file_and_a_directory_are_refused(tmp_path):
    with pytest.raises(PipelineError, match="no such file"):
        load_pipeline(tmp_path / "missing.toml")
    with pytest.raises(PipelineError, match="is a directory, not a pipeline file"):
        load_pipeline(tmp_path)


async def test_a_run_whose_record_was_lost_in_a_crash_does_not_block_the_next_run(
    make_service, tmp_path
):
    pipeline = parse_pipeline(
        '[pipeline]\nname = "p"\n\n[[tasks]]\nid = "a"\nprovider = "ok"\n',
        "p.toml",
        tmp_path,
    )
    service = await make_service()
    # What a crash between creating a run's tasks and recording the run leaves behind.
    await service.create_tasks(task_specs(pipeline, RunRecord("p-1", "p", "p.toml", ["a"], 0.0)))

    run = await start_run(service, pipeline, tmp_path / "p.toml")

    assert run.id == "p-2"
    assert (await service.get_task("p-2/a")) is not None


def test_the_mermaid_graph_keeps_tasks_whose_ids_differ_in_punctuation_apart():
    pipeline = parse(
        """
        [pipeline]
        provider = "echo"
        [[tasks]]
        id = "a-b"
        [[tasks]]
        id = "a_b"
        [[tasks]]
        id = "a.b"
        depends_on = ["a-b"]
        """
    )

    out = render_graph(pipeline, "mermaid").splitlines()

    assert out == [
        "graph TD",
        '    a_b["a-b"]',
        '    a_b_2["a_b"]',
        '    a_b_3["a.b"]',
        "    a_b --> a_b_3",
    ]


def test_the_dot_graph_escapes_backslashes_and_quotes_in_names():
    pipeline = parse(
        r"""
        [pipeline]
        provider = "echo"
        [[tasks]]
        id = "a"
        name = 'C:\temp\ "x"'
        """
    )

    node = render_graph(pipeline, "dot").splitlines()[2]

    assert node == r'    "a" [label="C:\\temp\\ \"x\""];'
