"""Every method of the ElizaOS reference's ``AgentOrchestratorService`` behaves as the reference
does (spec sections 1.3-2.9), minus the bugs listed in spec section 6.1."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from hookspecs.models import now_ms
from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    ConfigurationError,
    DependentsExistError,
    MemoryStore,
    OrchestratedTask,
    OrchestratedTaskMetadata,
    StepNotFoundError,
    TaskEvent,
    TaskEventType,
    TaskNotFoundError,
    TaskResult,
    TaskStatus,
    TaskUserStatus,
    UnknownProviderError,
    configure_agent_orchestrator_plugin,
    get_configured_options,
    reset_configuration,
)
from orchestrator.testing import FunctionProvider, GatedProvider, succeed

ENV_VAR = "ELIZA_CODE_ACTIVE_SUB_AGENT"


def provider(provider_id: str, label: str | None = None) -> FunctionProvider:
    return FunctionProvider(provider_id, succeed, label=label)


def record_events(service: AgentOrchestratorService) -> list[TaskEvent]:
    events: list[TaskEvent] = []
    service.on("task", events.append)
    return events


async def stored(service: AgentOrchestratorService) -> list[dict[str, Any]]:
    return [task.to_dict() for task in await service.get_tasks()]


@pytest.fixture(autouse=True)
def _no_provider_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


# -- create_task ----------------------------------------------------------------------------


async def test_create_task_makes_a_pending_task_with_the_reference_metadata(make_service):
    service = await make_service(
        provider("ok", "OK Agent"), get_working_directory=lambda: "/srv/project"
    )
    before = now_ms()
    task = await service.create_task("Build site", "Make the site", room_id="room-1")
    after = now_ms()

    md = task.to_dict()["metadata"]
    assert task.name == "Build site"
    assert task.description == "Make the site"
    assert task.room_id == "room-1"
    assert md["status"] == "pending"
    assert md["progress"] == 0
    assert md["output"] == []
    assert md["steps"] == []
    assert md["providerId"] == "ok"
    assert md["providerLabel"] == "OK Agent"
    assert md["subAgentType"] == "ok"
    assert md["workingDirectory"] == "/srv/project"
    assert md["userStatus"] == "open"
    assert before <= md["createdAt"] <= after
    assert md["userStatusUpdatedAt"] == md["createdAt"]
    assert "startedAt" not in md
    assert "completedAt" not in md


async def test_create_task_stores_the_task_it_returns(make_service):
    service = await make_service()
    task = await service.create_task("a", "first")
    assert (await service.get_task(task.id)) == task


async def test_create_task_emits_created_with_name_and_provider_id(make_service):
    service = await make_service(provider("ok"))
    events = record_events(service)
    task = await service.create_task("a", "first")
    assert [(e.type, e.task_id, e.data) for e in events] == [
        (TaskEventType.CREATED, task.id, {"name": "a", "providerId": "ok"})
    ]


async def test_the_first_task_becomes_current_without_an_event(make_service):
    service = await make_service()
    events = record_events(service)
    first = await service.create_task("first", "")
    assert service.get_current_task_id() == first.id
    assert [e.type for e in events] == [TaskEventType.CREATED]


async def test_later_tasks_do_not_change_the_current_task(make_service):
    service = await make_service()
    first = await service.create_task("first", "")
    await service.create_task("second", "")
    assert service.get_current_task_id() == first.id


async def test_create_task_does_not_start_execution(make_service):
    calls = FunctionProvider("ok", succeed)
    service = await make_service(calls)
    idle = await service.create_task("idle", "")
    other = await service.create_task("other", "")
    await service.start_task_execution(other.id)
    assert calls.calls == [other.id]
    assert (await service.get_task(idle.id)).metadata.status is TaskStatus.PENDING


# -- provider selection (spec 2.9) ----------------------------------------------------------


async def test_an_explicit_provider_id_wins_over_the_environment_and_the_default(
    make_service, monkeypatch
):
    monkeypatch.setenv(ENV_VAR, "b")
    service = await make_service(provider("a"), provider("b"), provider("c"))
    task = await service.create_task("t", "", provider_id="c")
    assert task.metadata.provider_id == "c"


async def test_the_environment_variable_wins_over_the_default(make_service, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "b")
    service = await make_service(provider("a"), provider("b"))
    task = await service.create_task("t", "")
    assert task.metadata.provider_id == "b"


async def test_the_environment_variable_is_stripped(make_service, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "  b \n")
    service = await make_service(provider("a"), provider("b"))
    assert (await service.create_task("t", "")).metadata.provider_id == "b"


async def test_the_environment_variable_is_the_one_the_options_name(make_service, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "a")
    monkeypatch.setenv("MY_AGENT", "b")
    service = await make_service(provider("a"), provider("b"), active_provider_env_var="MY_AGENT")
    assert (await service.create_task("t", "")).metadata.provider_id == "b"


async def test_the_environment_is_read_on_every_create(make_service, monkeypatch):
    service = await make_service(provider("a"), provider("b"))
    monkeypatch.setenv(ENV_VAR, "b")
    first = await service.create_task("t1", "")
    monkeypatch.delenv(ENV_VAR)
    second = await service.create_task("t2", "")
    assert (first.metadata.provider_id, second.metadata.provider_id) == ("b", "a")


async def test_the_default_provider_is_used_when_nothing_else_names_one(make_service):
    service = await make_service(provider("a"), provider("b"), default_provider_id="b")
    assert (await service.create_task("t", "")).metadata.provider_id == "b"


async def test_a_blank_environment_variable_falls_back_to_the_default(make_service, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "   ")
    service = await make_service(provider("a"), provider("b"), default_provider_id="b")
    assert (await service.create_task("t", "")).metadata.provider_id == "b"


# -- reading --------------------------------------------------------------------------------


async def test_get_task_returns_a_copy_that_shares_nothing_with_the_stored_task(make_service):
    service = await make_service()
    task = await service.create_task("original", "desc", params={"k": [1]})
    await service.append_output(task.id, "line")
    await service.add_step(task.id, "step")
    before = await stored(service)

    copy = await service.get_task(task.id)
    copy.name = "changed"
    copy.tags.append("extra")
    copy.metadata.status = TaskStatus.COMPLETED
    copy.metadata.output.append("injected")
    copy.metadata.steps[0].description = "changed"
    copy.metadata.steps.clear()
    copy.metadata.params["k"].append(2)
    copy.metadata.depends_on.append("x")

    assert await stored(service) == before


async def test_get_task_copies_the_result_too(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.set_task_result(
        task.id, TaskResult(success=True, summary="done", files_created=["a.py"])
    )
    before = await stored(service)

    copy = await service.get_task(task.id)
    copy.metadata.result.summary = "changed"
    copy.metadata.result.files_created.append("b.py")

    assert await stored(service) == before


async def test_set_task_result_keeps_its_own_copy_of_the_result(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    result = TaskResult(success=True, summary="done")
    await service.set_task_result(task.id, result)
    before = await stored(service)

    result.summary = "changed afterwards"

    assert await stored(service) == before


async def test_get_task_of_an_unknown_id_is_none(make_service):
    service = await make_service()
    assert await service.get_task("nope") is None


async def test_get_tasks_lists_every_task_oldest_first(make_service):
    service = await make_service()
    ids = [(await service.create_task(name, "")).id for name in ("a", "b", "c")]
    assert [t.id for t in await service.get_tasks()] == ids


async def test_get_recent_tasks_is_newest_first(make_service):
    service = await make_service()
    a, b, c = [await service.create_task(name, "") for name in ("a", "b", "c")]
    assert [t.id for t in await service.get_recent_tasks()] == [c.id, b.id, a.id]


async def test_get_recent_tasks_keeps_only_the_limit(make_service):
    service = await make_service()
    _, b, c = [await service.create_task(name, "") for name in ("a", "b", "c")]
    assert [t.id for t in await service.get_recent_tasks(2)] == [c.id, b.id]


async def test_get_recent_tasks_orders_by_creation_time(make_service):
    store = MemoryStore()
    await store.put_tasks(
        [
            OrchestratedTask(id="old", name="old", metadata=OrchestratedTaskMetadata(created_at=1)),
            OrchestratedTask(id="new", name="new", metadata=OrchestratedTaskMetadata(created_at=3)),
            OrchestratedTask(id="mid", name="mid", metadata=OrchestratedTaskMetadata(created_at=2)),
        ]
    )
    service = await make_service(store=store)
    assert [t.id for t in await service.get_recent_tasks(10)] == ["new", "mid", "old"]


async def test_get_tasks_by_status_filters_on_execution_status(make_service):
    service = await make_service()
    done = await service.create_task("done", "")
    waiting = await service.create_task("waiting", "")
    await service.start_task_execution(done.id)

    assert [t.id for t in await service.get_tasks_by_status(TaskStatus.COMPLETED)] == [done.id]
    assert [t.id for t in await service.get_tasks_by_status("pending")] == [waiting.id]
    assert await service.get_tasks_by_status(TaskStatus.FAILED) == []


# -- search_tasks ---------------------------------------------------------------------------


@pytest.fixture
async def searchable(make_service):
    service = await make_service()
    # Created worst match first, so the order of the results comes from ranking alone.
    await service.create_task("Other", "we deploy here", task_id="t-substring-description")
    await service.create_task("Redeploy", "", task_id="t-substring-name")
    await service.create_task("deploy docs", "", task_id="t-prefix")
    await service.create_task("deploy", "", task_id="t-exact-name")
    await service.create_task("Ship it", "", task_id="deploy")
    await service.create_task("unrelated", "nothing here", task_id="t-none")
    return service


async def test_search_ranks_exact_id_then_exact_name_then_prefix_then_substring(searchable):
    results = await searchable.search_tasks("  Deploy ")
    assert [t.id for t in results] == [
        "deploy",
        "t-exact-name",
        "t-prefix",
        # Substring matches (in the name or the description) rank equal: oldest first.
        "t-substring-description",
        "t-substring-name",
    ]


async def test_search_matches_an_id_prefix(searchable):
    assert [t.id for t in await searchable.search_tasks("t-pre")] == ["t-prefix"]


@pytest.mark.parametrize("query", ["code", "task", "orchestrator"])
async def test_search_never_matches_every_task_on_the_fixed_tags(searchable, query):
    assert await searchable.search_tasks(query) == []


async def test_search_matches_a_tag_the_user_gave(make_service):
    service = await make_service()
    tagged = await service.create_task("a", "", tags=["frontend"])
    await service.create_task("b", "")
    assert [t.id for t in await service.search_tasks("front")] == [tagged.id]


@pytest.mark.parametrize("query", ["", "   ", "\n"])
async def test_search_with_an_empty_query_finds_nothing(searchable, query):
    assert await searchable.search_tasks(query) == []


# -- update_task_progress -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored_progress"),
    [
        (float("nan"), 0),
        (float("inf"), 100),
        (float("-inf"), 0),
        (150, 100),
        (-5, 0),
        ("50", 0),
        (None, 0),
        (2.5, 3),
        (3.5, 4),
        (50.5, 51),
        (99.9, 100),
        (42, 42),
    ],
)
async def test_update_task_progress_clamps_to_a_whole_percentage(
    make_service, given, stored_progress
):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.update_task_progress(task.id, given)
    assert (await service.get_task(task.id)).metadata.progress == stored_progress


async def test_update_task_progress_emits_the_stored_value(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    events = record_events(service)
    await service.update_task_progress(task.id, 149.6)
    assert [(e.type, e.data) for e in events] == [(TaskEventType.PROGRESS, {"progress": 100})]


async def test_nan_progress_from_a_provider_does_not_fail_the_task(make_service):
    async def report_nan(task, ctx):
        await ctx.update_progress(float("nan"))
        return TaskResult(success=True, summary="fine")

    service = await make_service(FunctionProvider("nan", report_nan))
    task = await service.create_task("t", "")
    finished = await service.start_task_execution(task.id)
    assert finished.metadata.status is TaskStatus.COMPLETED
    assert finished.metadata.progress == 0


# -- append_output --------------------------------------------------------------------------


async def test_append_output_keeps_non_blank_lines_unstripped(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.append_output(task.id, "first\n\n   \n  indented  \nlast")
    assert (await service.get_task(task.id)).metadata.output == ["first", "  indented  ", "last"]


async def test_append_output_adds_after_earlier_output(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.append_output(task.id, "one")
    await service.append_output(task.id, "two\nthree")
    assert (await service.get_task(task.id)).metadata.output == ["one", "two", "three"]


async def test_append_output_keeps_only_the_newest_500_lines(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.append_output(task.id, "\n".join(f"line {i}" for i in range(450)))
    await service.append_output(task.id, "\n".join(f"line {i}" for i in range(450, 600)))
    output = (await service.get_task(task.id)).metadata.output
    assert output == [f"line {i}" for i in range(100, 600)]


async def test_append_output_emits_the_new_lines(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    events = record_events(service)
    await service.append_output(task.id, "a\n\nb")
    assert [(e.type, e.data) for e in events] == [(TaskEventType.OUTPUT, {"output": ["a", "b"]})]


# -- steps ----------------------------------------------------------------------------------


async def test_add_step_stores_a_pending_step(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    step = await service.add_step(task.id, "Write the code")
    assert step.status is TaskStatus.PENDING
    assert step.description == "Write the code"
    assert (await service.get_task(task.id)).metadata.steps == [step]


@pytest.mark.parametrize("description", ["", "   ", "\n"])
async def test_add_step_refuses_a_blank_description(make_service, description):
    service = await make_service()
    task = await service.create_task("t", "")
    before = await stored(service)
    with pytest.raises(ValueError, match="Step description must not be blank"):
        await service.add_step(task.id, description)
    assert await stored(service) == before


async def test_add_step_to_an_unknown_task_is_refused(make_service):
    service = await make_service()
    with pytest.raises(TaskNotFoundError, match=r"^Task nope not found$"):
        await service.add_step("nope", "step")


async def test_update_step_without_output_sets_the_status(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    step = await service.add_step(task.id, "s")
    await service.update_step(task.id, step.id, TaskStatus.RUNNING)
    stored_step = (await service.get_task(task.id)).metadata.steps[0]
    assert stored_step.status is TaskStatus.RUNNING
    assert stored_step.output is None


async def test_update_step_stores_its_output(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    step = await service.add_step(task.id, "s")
    await service.update_step(task.id, step.id, "completed", "all done")
    stored_step = (await service.get_task(task.id)).metadata.steps[0]
    assert (stored_step.status, stored_step.output) == (TaskStatus.COMPLETED, "all done")


async def test_update_step_with_an_empty_output_keeps_the_earlier_one(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    step = await service.add_step(task.id, "s")
    await service.update_step(task.id, step.id, TaskStatus.RUNNING, "half way")

    await service.update_step(task.id, step.id, TaskStatus.COMPLETED, "")

    stored_step = (await service.get_task(task.id)).metadata.steps[0]
    assert (stored_step.status, stored_step.output) == (TaskStatus.COMPLETED, "half way")


async def test_progress_is_the_share_of_completed_steps(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    steps = [await service.add_step(task.id, f"step {i}") for i in range(3)]
    await service.update_task_progress(task.id, 5)
    await service.update_step(task.id, steps[0].id, TaskStatus.COMPLETED)
    await service.update_step(task.id, steps[1].id, TaskStatus.COMPLETED)
    assert (await service.get_task(task.id)).metadata.progress == 67


async def test_a_provider_can_update_a_step_with_two_arguments(make_service):
    async def work_through_steps(task, ctx):
        for step in task.metadata.steps[:2]:
            await ctx.update_step(step.id, TaskStatus.COMPLETED)
        return TaskResult(success=True, summary="two of three")

    service = await make_service(FunctionProvider("steps", work_through_steps))
    task = await service.create_task("t", "")
    for i in range(3):
        await service.add_step(task.id, f"step {i}")
    finished = await service.start_task_execution(task.id)

    assert finished.metadata.status is TaskStatus.COMPLETED
    assert [s.status for s in finished.metadata.steps] == [
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED,
        TaskStatus.PENDING,
    ]
    assert finished.metadata.progress == 67


async def test_update_step_of_an_unknown_step_is_refused(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.add_step(task.id, "s")
    before = await stored(service)
    with pytest.raises(StepNotFoundError) as caught:
        await service.update_step(task.id, "no-such-step", TaskStatus.COMPLETED)
    assert str(caught.value) == f"Task {task.id} has no step no-such-step"
    assert await stored(service) == before


# -- results and errors ---------------------------------------------------------------------


async def test_a_successful_result_completes_the_task_and_mirrors_its_files(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    result = TaskResult(
        success=True, summary="built", files_created=["new.py"], files_modified=["old.py"]
    )
    await service.set_task_result(task.id, result)

    md = (await service.get_task(task.id)).to_dict()["metadata"]
    assert md["status"] == "completed"
    assert md["result"] == result.to_dict()
    assert md["filesCreated"] == ["new.py"]
    assert md["filesModified"] == ["old.py"]
    assert md["completedAt"] >= md["createdAt"]
    assert "error" not in md


async def test_a_failed_result_fails_the_task_with_its_error(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    result = TaskResult(success=False, summary="no", error="compiler crashed", files_modified=["x"])
    await service.set_task_result(task.id, result)

    md = (await service.get_task(task.id)).metadata
    assert md.status is TaskStatus.FAILED
    assert md.error == "compiler crashed"
    assert md.result == result
    assert md.files_modified == ["x"]
    assert md.completed_at is not None


async def test_set_task_result_emits_completed_or_failed(make_service):
    service = await make_service()
    good = await service.create_task("good", "")
    bad = await service.create_task("bad", "")
    events = record_events(service)
    await service.set_task_result(good.id, TaskResult(success=True, summary="yes"))
    await service.set_task_result(bad.id, TaskResult(success=False, summary="no", error="e"))
    assert [(e.type, e.task_id, e.data) for e in events] == [
        (TaskEventType.COMPLETED, good.id, {"success": True, "summary": "yes", "error": None}),
        (TaskEventType.FAILED, bad.id, {"success": False, "summary": "no", "error": "e"}),
    ]


async def test_set_task_error_fails_the_task(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    events = record_events(service)
    await service.set_task_error(task.id, "it broke")

    md = (await service.get_task(task.id)).metadata
    assert (md.status, md.error) == (TaskStatus.FAILED, "it broke")
    assert md.completed_at is not None
    assert [(e.type, e.data) for e in events] == [(TaskEventType.FAILED, {"error": "it broke"})]


async def test_set_user_status_is_independent_of_execution_status(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    created_md = task.metadata
    await service.set_user_status(task.id, TaskUserStatus.DONE)

    md = (await service.get_task(task.id)).metadata
    assert md.user_status is TaskUserStatus.DONE
    assert md.status is TaskStatus.PENDING
    assert md.user_status_updated_at >= created_md.user_status_updated_at


async def test_set_user_status_accepts_the_value_and_emits_it(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    events = record_events(service)
    await service.set_user_status(task.id, "done")
    assert (await service.get_task(task.id)).metadata.user_status is TaskUserStatus.DONE
    assert [(e.type, e.data) for e in events] == [(TaskEventType.PROGRESS, {"userStatus": "done"})]


# -- set_task_sub_agent_type ----------------------------------------------------------------


async def test_set_task_sub_agent_type_moves_the_task_to_the_provider(make_service):
    service = await make_service(provider("a", "Alpha"), provider("b", "Beta Agent"))
    task = await service.create_task("t", "")
    await service.set_task_sub_agent_type(task.id, "b")

    md = (await service.get_task(task.id)).metadata
    assert (md.provider_id, md.sub_agent_type, md.provider_label) == ("b", "b", "Beta Agent")
    assert md.output[-1] == "Provider: Beta Agent (b)"


async def test_set_task_sub_agent_type_emits_a_message_then_the_output_line(make_service):
    service = await make_service(provider("a"), provider("b", "Beta Agent"))
    task = await service.create_task("t", "")
    events = record_events(service)
    await service.set_task_sub_agent_type(task.id, "b")
    assert [(e.type, e.data) for e in events] == [
        (TaskEventType.MESSAGE, {"providerId": "b"}),
        (TaskEventType.OUTPUT, {"output": ["Provider: Beta Agent (b)"]}),
    ]


async def test_set_task_sub_agent_type_to_an_unknown_provider_changes_nothing(make_service):
    service = await make_service(provider("a", "Alpha"), provider("b"))
    task = await service.create_task("t", "")
    before = await stored(service)
    with pytest.raises(UnknownProviderError) as caught:
        await service.set_task_sub_agent_type(task.id, "zeta")
    assert (
        str(caught.value)
        == 'Unknown provider "zeta". Available: a, acp, b, echo, openai, python, shell'
    )
    assert await stored(service) == before


async def test_the_next_run_uses_the_new_provider(make_service):
    first = FunctionProvider("a", succeed)
    second = FunctionProvider("b", succeed)
    service = await make_service(first, second)
    task = await service.create_task("t", "")
    await service.set_task_sub_agent_type(task.id, "b")
    await service.start_task_execution(task.id)
    assert (first.calls, second.calls) == ([], [task.id])


# -- rename_task ----------------------------------------------------------------------------


async def test_rename_task_trims_the_new_name(make_service):
    service = await make_service()
    task = await service.create_task("old", "")
    await service.rename_task(task.id, "  New name \n")
    assert (await service.get_task(task.id)).name == "New name"


@pytest.mark.parametrize("name", ["", "   ", "old", " old "])
async def test_rename_task_ignores_a_blank_or_unchanged_name(make_service, name):
    service = await make_service()
    task = await service.create_task("old", "")
    before = await stored(service)
    events = record_events(service)
    await service.rename_task(task.id, name)
    assert await stored(service) == before
    assert events == []


# -- delete_task ----------------------------------------------------------------------------


async def test_delete_task_removes_it(make_service):
    service = await make_service()
    keep = await service.create_task("keep", "")
    gone = await service.create_task("gone", "")
    await service.delete_task(gone.id)
    assert await service.get_task(gone.id) is None
    assert [t.id for t in await service.get_tasks()] == [keep.id]


async def test_delete_task_clears_the_current_task(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.delete_task(task.id)
    assert service.get_current_task_id() is None
    assert await service.get_current_task() is None


async def test_delete_task_emits_deleted(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    events = record_events(service)
    await service.delete_task(task.id)
    assert [(e.type, e.task_id, e.data) for e in events] == [
        (TaskEventType.MESSAGE, task.id, {"deleted": True})
    ]


async def test_delete_task_is_refused_while_an_unfinished_task_depends_on_it(make_service):
    service = await make_service()
    upstream = await service.create_task("upstream", "")
    dependent = await service.create_task("dependent", "", depends_on=[upstream.id])
    before = await stored(service)

    with pytest.raises(DependentsExistError) as caught:
        await service.delete_task(upstream.id)

    assert str(caught.value) == (
        f"Task {upstream.id} still has unfinished dependents: {dependent.id}; "
        "cancel or delete them first"
    )
    assert await stored(service) == before
    assert service.get_current_task_id() == upstream.id


async def test_delete_task_is_allowed_once_its_dependents_are_finished(make_service):
    service = await make_service()
    upstream = await service.create_task("upstream", "")
    dependent = await service.create_task("dependent", "", depends_on=[upstream.id])
    await service.cancel_task(dependent.id)
    await service.delete_task(upstream.id)
    assert [t.id for t in await service.get_tasks()] == [dependent.id]


async def test_delete_of_an_unknown_task_is_refused(make_service):
    service = await make_service()
    with pytest.raises(TaskNotFoundError, match=r"^Task nope not found$"):
        await service.delete_task("nope")


# -- the current task -----------------------------------------------------------------------


async def test_set_current_task_selects_the_task_and_emits_selected(make_service):
    service = await make_service()
    await service.create_task("first", "")
    second = await service.create_task("second", "")
    async with service.stream_events() as stream:
        service.set_current_task(second.id)
        event = await stream.next(timeout=1)

    assert service.get_current_task_id() == second.id
    assert await service.get_current_task() == await service.get_task(second.id)
    assert (event.type, event.task_id, event.data) == (
        TaskEventType.PROGRESS,
        second.id,
        {"selected": True},
    )


async def test_set_current_task_none_clears_the_selection(make_service):
    service = await make_service()
    await service.create_task("first", "")
    service.set_current_task(None)
    assert service.get_current_task_id() is None
    assert await service.get_current_task() is None


async def test_set_current_task_refuses_an_unknown_id(make_service):
    service = await make_service()
    task = await service.create_task("first", "")
    with pytest.raises(TaskNotFoundError, match=r"^Task nope not found$"):
        service.set_current_task("nope")
    assert service.get_current_task_id() == task.id


async def test_there_is_no_current_task_before_any_is_created(make_service):
    service = await make_service()
    assert service.get_current_task_id() is None
    assert await service.get_current_task() is None


# -- get_task_context (spec 2.7) ------------------------------------------------------------


async def test_task_context_without_tasks(make_service):
    service = await make_service()
    assert await service.get_task_context() == "No tasks have been created yet."


async def test_task_context_describes_the_selected_task_in_the_reference_layout(make_service):
    service = await make_service(provider("ok", "OK Agent"))
    task = await service.create_task("Build site", "Make the site\nwith care")
    await service.create_task("Later task", "not described")
    await service.add_step(task.id, "Write code")
    done = await service.add_step(task.id, "Test code")
    await service.update_step(task.id, done.id, TaskStatus.COMPLETED)
    await service.append_output(task.id, "line one\n  line two")

    assert await service.get_task_context() == (
        "## Current Task (selected): Build site\n"
        "- **Execution status**: pending\n"
        "- **Progress**: 50%\n"
        "- **Provider**: OK Agent\n"
        "\n"
        "### Description\n"
        "Make the site\n"
        "with care\n"
        "\n"
        "### Plan / Steps\n"
        "- [pending] Write code\n"
        "- [completed] Test code\n"
        "\n"
        "### Task Output (history)\n"
        "```\n"
        "line one\n"
        "  line two\n"
        "```"
    )


async def test_task_context_leaves_out_empty_sections(make_service):
    service = await make_service(provider("ok", "OK Agent"))
    await service.create_task("Bare", "")
    assert await service.get_task_context() == (
        "## Current Task (selected): Bare\n"
        "- **Execution status**: pending\n"
        "- **Progress**: 0%\n"
        "- **Provider**: OK Agent"
    )


async def test_task_context_describes_the_newest_task_when_none_is_selected(make_service):
    service = await make_service(provider("ok", "OK Agent"))
    await service.create_task("Older", "")
    await service.create_task("Newest", "")
    service.set_current_task(None)
    assert await service.get_task_context() == (
        "## Current Task: Newest\n"
        "- **Execution status**: pending\n"
        "- **Progress**: 0%\n"
        "- **Provider**: OK Agent"
    )


async def test_task_context_shows_the_last_200_output_lines(make_service):
    service = await make_service()
    task = await service.create_task("t", "")
    await service.append_output(task.id, "\n".join(f"line {i}" for i in range(300)))
    context = await service.get_task_context()
    fenced = context.split("### Task Output (history)\n```\n", 1)[1]
    assert fenced == "\n".join(f"line {i}" for i in range(100, 300)) + "\n```"


# -- detect_and_pause_interrupted_tasks -----------------------------------------------------


def running_task(task_id: str, user_status: TaskUserStatus = TaskUserStatus.OPEN) -> Any:
    return OrchestratedTask(
        id=task_id,
        name=task_id,
        metadata=OrchestratedTaskMetadata(
            status=TaskStatus.RUNNING,
            provider_id="ok",
            created_at=now_ms(),
            user_status=user_status,
        ),
    )


async def test_a_task_left_running_without_a_run_is_paused(make_service):
    store = MemoryStore()
    await store.put_tasks([running_task("interrupted")])
    service = await make_service(store=store, recovery="none")

    paused = await service.detect_and_pause_interrupted_tasks()

    assert [t.id for t in paused] == ["interrupted"]
    task = await service.get_task("interrupted")
    assert paused == [task]
    assert task.metadata.status is TaskStatus.PAUSED
    assert task.metadata.output[-1] == "Paused due to restart."


async def test_starting_a_task_left_running_by_a_crash_is_refused_naming_it(make_service):
    store = MemoryStore()
    await store.put_tasks([running_task("interrupted")])
    service = await make_service(store=store, recovery="none")

    with pytest.raises(ConfigurationError, match="left running by an earlier process: interrupted"):
        service.start_task_execution("interrupted")
    with pytest.raises(ConfigurationError, match="detect_and_pause_interrupted_tasks"):
        await service.run()

    await service.detect_and_pause_interrupted_tasks()
    await service.resume_task("interrupted")
    assert (await service.run()).ok


async def test_stop_pauses_a_task_a_crash_left_running(make_service):
    store = MemoryStore()
    await store.put_tasks([running_task("interrupted")])
    service = await make_service(store=store, recovery="none")

    await service.stop()

    (task,) = await store.load_tasks()
    assert task.metadata.status is TaskStatus.PAUSED
    assert task.metadata.output[-1] == "Paused due to shutdown."


async def test_a_dependency_on_a_task_a_crash_left_running_is_refused_for_a_wanted_task(
    make_service,
):
    store = MemoryStore()
    await store.put_tasks([running_task("interrupted")])
    service = await make_service(store=store, recovery="none")
    waiting = await service.create_task("waiting", "")
    await service.pause_task(waiting.id)
    service.start_task_execution(waiting.id)

    with pytest.raises(ConfigurationError, match="left running by an earlier process: interrupted"):
        await service.add_dependency(waiting.id, "interrupted")

    assert service.get_dependencies(waiting.id) == []


async def test_a_running_task_the_user_marked_done_is_not_paused(make_service):
    store = MemoryStore()
    await store.put_tasks([running_task("finished-for-user", TaskUserStatus.DONE)])
    service = await make_service(store=store, recovery="none")
    assert await service.detect_and_pause_interrupted_tasks() == []
    assert (await service.get_task("finished-for-user")).metadata.status is TaskStatus.RUNNING


async def test_a_task_that_is_really_running_is_not_paused(make_service):
    gated = GatedProvider()
    service = await make_service(gated)
    task = await service.create_task("live", "")
    handle = service.start_task_execution(task.id)
    await gated.started.wait()

    assert await service.detect_and_pause_interrupted_tasks() == []
    assert (await service.get_task(task.id)).metadata.status is TaskStatus.RUNNING

    gated.release()
    assert (await handle).metadata.status is TaskStatus.COMPLETED


# -- create_code_task -----------------------------------------------------------------------


async def test_create_code_task_uses_the_sub_agent_type_as_provider(make_service):
    service = await make_service(provider("a"), provider("claude"))
    task = await service.create_code_task("t", "desc", "room-1", sub_agent_type="claude")
    assert (task.name, task.description, task.room_id) == ("t", "desc", "room-1")
    assert task.metadata.provider_id == "claude"
    assert task.metadata.sub_agent_type == "claude"


async def test_create_code_task_defaults_to_the_eliza_provider(make_service):
    service = await make_service(provider("a"), provider("eliza"))
    task = await service.create_code_task("t", "desc")
    assert task.metadata.provider_id == "eliza"


# -- configuration --------------------------------------------------------------------------


async def test_configured_options_can_be_read_back_and_reset():
    options = AgentOrchestratorPluginOptions(providers=[provider("a")], default_provider_id="a")
    configure_agent_orchestrator_plugin(options)
    assert get_configured_options() is options
    reset_configuration()
    assert get_configured_options() is None


async def test_a_service_started_without_options_uses_the_configured_ones():
    configure_agent_orchestrator_plugin(
        AgentOrchestratorPluginOptions(
            providers=[provider("global")],
            default_provider_id="global",
            get_working_directory=lambda: "/configured",
        )
    )
    async with await AgentOrchestratorService.start() as service:
        task = await service.create_task("t", "")
        assert task.metadata.provider_id == "global"
        assert task.metadata.working_directory == "/configured"


async def test_per_service_options_win_over_the_configured_ones():
    configure_agent_orchestrator_plugin(
        AgentOrchestratorPluginOptions(providers=[provider("global")], default_provider_id="global")
    )
    local = AgentOrchestratorPluginOptions(
        providers=[provider("local")], default_provider_id="local"
    )
    async with await AgentOrchestratorService.start(options=local) as service:
        assert "local" in service.provider_ids
        assert "global" not in service.provider_ids
        assert (await service.create_task("t", "")).metadata.provider_id == "local"


# -- start and stop -------------------------------------------------------------------------


async def test_start_without_a_runtime_works():
    async with await AgentOrchestratorService.start() as service:
        assert service.runtime is None
        assert await service.get_tasks() == []
        assert await service.get_task_context() == "No tasks have been created yet."


class FakeRuntime:
    """The duck-typed part of an ElizaOS runtime the service uses."""

    def __init__(self) -> None:
        self.agent_id = "agent-7"
        self.rooms = {"room-1": SimpleNamespace(world_id="world-9")}
        self.asked: list[str] = []

    async def get_room(self, room_id: str) -> Any:
        self.asked.append(room_id)
        return self.rooms.get(room_id)


def seen_by_provider() -> tuple[FunctionProvider, list[tuple[str, str | None, str | None]]]:
    seen: list[tuple[str, str | None, str | None]] = []

    async def look(task, ctx):
        seen.append((ctx.runtime_agent_id, ctx.room_id, ctx.world_id))
        return TaskResult(success=True, summary="looked")

    return FunctionProvider("look", look), seen


async def test_the_world_comes_from_the_runtimes_room():
    runtime = FakeRuntime()
    look, seen = seen_by_provider()
    options = AgentOrchestratorPluginOptions(providers=[look], default_provider_id="look")
    async with await AgentOrchestratorService.start(runtime, options=options) as service:
        task = await service.create_task("t", "", room_id="room-1")
        await service.start_task_execution(task.id)

    assert (task.room_id, task.world_id) == ("room-1", "world-9")
    assert runtime.asked == ["room-1"]
    assert seen == [("agent-7", "room-1", "world-9")]


@pytest.mark.parametrize("room_id", [None, "unknown-room"])
async def test_the_world_is_the_agent_id_without_a_known_room(room_id):
    look, seen = seen_by_provider()
    options = AgentOrchestratorPluginOptions(providers=[look], default_provider_id="look")
    async with await AgentOrchestratorService.start(FakeRuntime(), options=options) as service:
        task = await service.create_task("t", "", room_id=room_id)
        await service.start_task_execution(task.id)

    assert task.world_id == "agent-7"
    assert seen == [("agent-7", room_id, "agent-7")]


async def test_stop_leaves_a_running_task_paused_never_running(make_service):
    store = MemoryStore()
    gated = GatedProvider()
    service = await make_service(gated, store=store)
    running = await service.create_task("running", "")
    waiting = await service.create_task("waiting", "")
    service.start_task_execution(running.id)
    await gated.started.wait()

    await service.stop()

    tasks = {task.id: task for task in await store.load_tasks()}
    assert all(t.metadata.status is not TaskStatus.RUNNING for t in tasks.values())
    assert tasks[running.id].metadata.status is TaskStatus.PAUSED
    assert tasks[running.id].metadata.output[-1] == "Paused due to shutdown."
    assert tasks[waiting.id].metadata.status is TaskStatus.PENDING
    assert gated.finished == []
