"""The engine-neutral action layer: the reference's seven actions over the service, minus its bugs.

Spec: the reference's §3 (names, similes, descriptions, reply texts) and §6.1 (its bugs).
"""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import (
    AgentOrchestratorPluginOptions,
    AgentOrchestratorService,
    MemoryStore,
    SqliteStore,
    TaskStatus,
)
from orchestrator.actions import (
    ACTIONS,
    CANCEL_TASK,
    CREATE_TASK,
    LIST_TASKS,
    PAUSE_TASK,
    RESUME_TASK,
    SEARCH_TASKS,
    SWITCH_TASK,
    ActionReply,
    ActionRequest,
    dependency_names,
    get_action,
)
from orchestrator.cli._remote import RemoteTasks
from orchestrator.testing import GatedProvider


async def ask(action, service, text="", **params):
    return await action.run(service, ActionRequest(text, room_id="room-1", params=params))


async def task_count(service: AgentOrchestratorService) -> int:
    return len(await service.get_tasks())


# -- names and texts ------------------------------------------------------------------------


def test_the_seven_actions_keep_the_reference_names_similes_and_descriptions():
    assert [(a.name, a.similes, a.description) for a in ACTIONS] == [
        (
            "CREATE_TASK",
            ("START_TASK", "SPAWN_TASK", "NEW_TASK", "BEGIN_TASK"),
            "Create an orchestrated background task to be executed by a selected agent provider.",
        ),
        (
            "LIST_TASKS",
            ("SHOW_TASKS", "GET_TASKS", "TASKS", "VIEW_TASKS"),
            "List tasks managed by the orchestrator.",
        ),
        (
            "SWITCH_TASK",
            ("SELECT_TASK", "SET_TASK", "CHANGE_TASK", "GO_TO_TASK"),
            "Switch the current task context to a different task.",
        ),
        ("SEARCH_TASKS", ("FIND_TASK", "LOOKUP_TASK"), "Search tasks by query."),
        ("PAUSE_TASK", ("STOP_TASK", "HALT_TASK"), "Pause a running task."),
        ("RESUME_TASK", ("CONTINUE_TASK", "RESTART_TASK", "RUN_TASK"), "Resume a paused task."),
        ("CANCEL_TASK", ("DELETE_TASK", "REMOVE_TASK", "ABORT_TASK"), "Cancel a task."),
    ]


def test_get_action_finds_an_action_by_name_or_simile():
    assert get_action("create_task") is CREATE_TASK
    assert get_action("ABORT_TASK") is CANCEL_TASK
    with pytest.raises(KeyError):
        get_action("DANCE")


# -- validate -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Create task: implement the login page", True),
        ("add a settings page", True),
        ("please fix the flaky test", True),
        ("what is the address?", False),
        ("set the prefix", False),
        ("rebuilding is slow", False),
    ],
)
async def test_create_task_validates_on_whole_words(make_service, text, expected):
    service = await make_service()
    assert CREATE_TASK.validate(text, service) is expected


@pytest.mark.parametrize(
    ("action", "text"),
    [
        (LIST_TASKS, "list my tasks"),
        (LIST_TASKS, "tasks"),
        (SWITCH_TASK, "switch to task Build API"),
        (SEARCH_TASKS, "find task named Deploy to prod"),
        (PAUSE_TASK, "pause the login task"),
        (RESUME_TASK, "resume task-3"),
        (CANCEL_TASK, "cancel my current task"),
        # Control verbs inflected, too.
        (CANCEL_TASK, "I'm cancelling the login task"),
        (RESUME_TASK, "resuming the build task now"),
        (PAUSE_TASK, "the deploy task should be paused"),
        (SWITCH_TASK, "switching to the docs task"),
    ],
)
async def test_each_action_validates_its_own_requests(make_service, action, text):
    service = await make_service()
    assert action.validate(text, service)


@pytest.mark.parametrize(
    ("action", "text"),
    [
        (PAUSE_TASK, "stop it"),
        (CANCEL_TASK, "remove the tasklist widget"),
        (LIST_TASKS, "multitasking tips"),
    ],
)
async def test_actions_do_not_validate_on_parts_of_words(make_service, action, text):
    service = await make_service()
    assert not action.validate(text, service)


def test_validate_is_false_without_a_service():
    assert not any(action.validate("create task: list my tasks", None) for action in ACTIONS)


# -- CREATE_TASK ----------------------------------------------------------------------------


async def test_create_task_replies_as_the_reference_and_starts_the_task(make_service):
    service = await make_service()
    reply = await ask(CREATE_TASK, service, "Create task: implement the login page")
    assert reply.success
    assert reply.text == (
        "Created task: Create task: implement the login page\nProvider: ok\nStarting execution…"
    )
    done = await service.wait_for_task(reply.data["taskId"])
    assert done.metadata.status is TaskStatus.COMPLETED
    assert done.room_id == "room-1"


async def test_create_task_replies_before_the_task_starts(make_service):
    service = await make_service()
    seen: list[TaskStatus] = []

    async def respond(reply: ActionReply) -> None:
        task = await service.get_task(reply.data["taskId"])
        seen.append(task.metadata.status)

    request = ActionRequest("create task: write the docs")
    reply = await CREATE_TASK.run(service, request, respond)
    assert seen == [TaskStatus.PENDING]
    await service.wait_for_task(reply.data["taskId"])


async def test_create_task_takes_title_and_description_parameters(make_service):
    service = await make_service()
    reply = await ask(CREATE_TASK, service, "do it", title="  Login page ", description="The form")
    task = await service.get_task(reply.data["taskId"])
    assert (task.name, task.description) == ("Login page", "The form")


async def test_create_task_with_dependson_creates_edges_to_the_named_tasks(make_service):
    service = await make_service(GatedProvider())
    schema = await service.create_task("schema", "Design the schema")
    lint = await service.create_task("lint", "Lint", task_id="lint-1")
    reply = await ask(CREATE_TASK, service, "build the api", dependsOn=["schema", "lint-1"])
    assert reply.success
    assert reply.text.splitlines()[2] == "Waits on: schema, lint"
    assert service.get_dependencies(reply.data["taskId"]) == [schema.id, lint.id]


async def test_create_task_reads_a_dependency_from_the_text(make_service):
    service = await make_service(GatedProvider())
    login = await service.create_task("login", "Build the login page")
    reply = await ask(CREATE_TASK, service, "Create a deploy task after the login task")
    assert reply.success
    assert service.get_dependencies(reply.data["taskId"]) == [login.id]


async def test_create_task_with_an_unknown_dependency_creates_nothing(make_service):
    service = await make_service()
    await service.create_task("schema", "")
    reply = await ask(CREATE_TASK, service, "build the api", dependsOn=["no such thing"])
    assert reply == ActionReply(
        False, 'No task found matching "no such thing" to wait for; nothing was created.'
    )
    assert await task_count(service) == 1


async def test_create_task_drops_blank_steps_and_numbers_the_rest(make_service):
    service = await make_service(GatedProvider())
    reply = await ask(CREATE_TASK, service, "create task: ship it", steps=["plan", "  ", "build"])
    task = await service.get_task(reply.data["taskId"])
    assert [step.description for step in task.metadata.steps] == ["plan", "build"]
    assert "Plan:\n1. plan\n2. build" in "\n".join(task.metadata.output)


async def test_create_task_with_chain_makes_one_task_per_step_each_after_the_last(make_service):
    service = await make_service()
    reply = await ask(
        CREATE_TASK,
        service,
        "create task: release",
        steps=["test", "", "tag", "publish"],
        chain=True,
    )
    ids = reply.data["taskIds"]
    assert len(ids) == 3
    assert reply.text.splitlines()[:4] == [
        "Created 3 tasks, each after the one before:",
        "1. test",
        "2. tag",
        "3. publish",
    ]
    assert service.get_dependencies(ids[1]) == [ids[0]]
    assert service.get_dependencies(ids[2]) == [ids[1]]
    for task_id in ids:
        done = await service.wait_for_task(task_id)
        assert done.metadata.status is TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"dependsOn": 5}, 'Parameter "dependsOn" must be a list of task names or ids.'),
        ({"steps": {"a": 1}}, 'Parameter "steps" must be a list of step texts.'),
        ({"title": ["x"]}, 'Parameter "title" must be text, got list.'),
        ({"chain": "maybe"}, 'Parameter "chain" must be true or false.'),
    ],
)
async def test_create_task_refuses_parameters_of_the_wrong_type(make_service, params, error):
    service = await make_service()
    reply = await ask(CREATE_TASK, service, "create task: x", **params)
    assert reply == ActionReply(False, error)
    assert await task_count(service) == 0


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("", "Please describe the task to create."),
        ("   \n ", "Please describe the task to create."),
        ("x" * 100_000, "The request is too long (100,000 characters; at most 20,000)."),
        (
            "create task: bad\x07bell",
            "The request contains a control character (U+0007); remove it and try again.",
        ),
    ],
)
async def test_create_task_refuses_unusable_text_and_stores_nothing(make_service, text, reply):
    service = await make_service()
    assert await ask(CREATE_TASK, service, text) == ActionReply(False, reply)
    assert await task_count(service) == 0


async def test_create_task_with_an_unknown_provider_lists_the_known_ones(make_service):
    service = await make_service()
    reply = await ask(CREATE_TASK, service, "create task: x", provider="nope")
    assert not reply.success
    assert reply.text == 'Unknown provider "nope". Available: acp, echo, ok, openai, python, shell'


# -- LIST_TASKS -----------------------------------------------------------------------------


async def test_list_tasks_with_none_says_so(make_service):
    service = await make_service()
    assert await ask(LIST_TASKS, service, "list tasks") == ActionReply(True, "No tasks.")


async def test_list_tasks_shows_status_progress_the_current_task_and_what_each_waits_on(
    make_service,
):
    service = await make_service(GatedProvider())
    schema = await service.create_task("schema", "")
    await service.create_task("api", "", depends_on=[schema.id])
    reply = await ask(LIST_TASKS, service, "list tasks")
    assert (
        reply.text
        == "Tasks:\n- api — pending 0% — waits on: schema\n- schema — pending 0% (current)"
    )


# -- SEARCH_TASKS and SWITCH_TASK ------------------------------------------------------------


async def test_search_ranks_exact_id_then_name_then_prefix_then_substring(make_service):
    service = await make_service()
    await service.create_task("deploy staging", "", task_id="t-1")
    await service.create_task("deploy", "", task_id="t-2")
    await service.create_task("predeploy checks", "", task_id="deploy")
    reply = await ask(SEARCH_TASKS, service, "search tasks", query="deploy")
    assert reply.data["taskIds"] == ["deploy", "t-2", "t-1"]
    assert reply.text.splitlines()[0] == 'Found 3 task(s) matching "deploy":'


async def test_search_never_matches_every_task_through_the_fixed_tags(make_service):
    service = await make_service()
    await service.create_task("deploy", "")
    reply = await ask(SEARCH_TASKS, service, "find task named code")
    assert reply == ActionReply(True, 'No tasks found matching: "code"')


async def test_search_without_a_query_asks_for_one(make_service):
    service = await make_service()
    assert await ask(SEARCH_TASKS, service, "find task") == ActionReply(
        False, "What would you like to search for?"
    )


async def test_an_id_like_query_survives_extraction(make_service):
    service = await make_service(GatedProvider())
    await service.create_task("first", "", task_id="task-3")
    await service.create_task("other", "")
    reply = await ask(SWITCH_TASK, service, "switch to task-3")
    assert reply == ActionReply(True, "Switched to task: first", {"taskId": "task-3"})
    assert service.get_current_task_id() == "task-3"


async def test_switch_task_replies_when_nothing_matches_or_nothing_is_named(make_service):
    service = await make_service()
    assert await ask(SWITCH_TASK, service, "switch task") == ActionReply(
        False, "Please specify which task to switch to (by name or id)."
    )
    assert await ask(SWITCH_TASK, service, "switch to task Build API") == ActionReply(
        False, 'No task found matching: "build api"'
    )


# -- PAUSE, RESUME, CANCEL --------------------------------------------------------------------


async def test_pause_with_no_task_says_no_task_to_pause(make_service):
    service = await make_service()
    assert await ask(PAUSE_TASK, service, "pause the task") == ActionReply(
        False, "No task to pause."
    )


@pytest.mark.parametrize(
    ("action", "verb"), [(PAUSE_TASK, "pause"), (RESUME_TASK, "resume"), (CANCEL_TASK, "cancel")]
)
async def test_an_unmatched_query_gets_the_friendly_reply_not_an_error(make_service, action, verb):
    service = await make_service()
    await service.create_task("login", "")
    reply = await ask(action, service, f"{verb} the zebra task")
    assert reply == ActionReply(False, f'No task to {verb} matching "zebra".')


async def test_pause_names_the_downstream_tasks_it_holds(make_service):
    gated = GatedProvider()
    service = await make_service(gated)
    build = await service.create_task("build", "")
    test = await service.create_task("test", "", depends_on=[build.id])
    await service.create_task("ship", "", depends_on=[test.id])
    service.start_task_execution(build.id)
    await gated.started.wait()
    reply = await ask(PAUSE_TASK, service, "pause the build task")
    assert reply.text == "Paused task: build\nHeld downstream: test, ship"
    assert (await service.get_task(build.id)).metadata.status is TaskStatus.PAUSED
    gated.release()


async def test_resume_continues_a_paused_task(make_service):
    gated = GatedProvider()
    service = await make_service(gated)
    build = await service.create_task("build", "")
    service.start_task_execution(build.id)
    await gated.started.wait()
    await service.pause_task(build.id)
    reply = await ask(RESUME_TASK, service, "resume the build task")
    assert reply == ActionReply(True, "Resumed task: build", {"taskId": build.id})
    gated.release()
    done = await service.wait_for_task(build.id)
    assert done.metadata.status is TaskStatus.COMPLETED
    assert gated.calls == [build.id]


async def test_resuming_a_finished_task_is_refused_and_never_reruns_it(make_service):
    service = await make_service()
    task = await service.create_task("done", "")
    await service.run()
    reply = await ask(RESUME_TASK, service, "resume the done task")
    assert not reply.success
    assert reply.text.startswith(f"Cannot resume task {task.id}: it is completed")


async def test_cancel_names_the_downstream_tasks_it_cancels(make_service):
    service = await make_service(GatedProvider())
    build = await service.create_task("build", "")
    await service.create_task("test", "", depends_on=[build.id])
    reply = await ask(CANCEL_TASK, service, "cancel the build task")
    assert reply.text == "Cancelled task: build\nAlso cancelled downstream: test"
    statuses = {t.name: t.metadata.status for t in await service.get_tasks()}
    assert statuses == {"build": TaskStatus.CANCELLED, "test": TaskStatus.CANCELLED}


async def test_an_action_without_a_service_replies_instead_of_raising():
    reply = await ask(LIST_TASKS, None, "list tasks")
    assert reply == ActionReply(False, "Task orchestrator service is not available")


# -- hostile text ---------------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(max_size=300),
    params=st.dictionaries(
        st.sampled_from(
            ["title", "description", "steps", "dependsOn", "query", "chain", "provider"]
        ),
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.integers(),
            st.lists(st.text(max_size=10), max_size=3),
            st.booleans(),
        ),
        max_size=3,
    ),
)
def test_random_text_and_parameters_never_make_validate_or_a_handler_raise(text, params):
    async def scenario() -> None:
        options_store = MemoryStore()
        async with await AgentOrchestratorService.start(store=options_store) as service:
            await service.create_task("seed", "a task to find", provider_id="echo")
            for action in ACTIONS:
                assert isinstance(action.validate(text, service), bool)
                reply = await action.run(service, ActionRequest(text, params=params))
                assert isinstance(reply, ActionReply)
                assert isinstance(reply.text, str) and reply.text

    anyio.run(scenario)


# -- names in any script, prose that is not a dependency, ordinary Unicode ------------------


@pytest.mark.parametrize(
    ("name", "command", "action", "reply"),
    [
        ("Отчёт", "cancel task Отчёт", CANCEL_TASK, "Cancelled task: Отчёт"),
        (
            "日本語の翻訳",
            "switch to task 日本語の翻訳",
            SWITCH_TASK,
            "Switched to task: 日本語の翻訳",
        ),
        ("naïve parser", "pause the naïve parser task", PAUSE_TASK, "Paused task: naïve parser"),
        ("Deploy to prod", "switch to task ‘Deploy to prod’", SWITCH_TASK, None),
    ],
)
async def test_a_command_finds_a_task_by_a_name_in_any_script_or_in_curly_quotes(
    make_service, name, command, action, reply
):
    service = await make_service(GatedProvider())
    current = await service.create_task("Release notes", "")
    named = await service.create_task(name, "")

    answer = await ask(action, service, command)

    assert answer.success, answer.text
    assert answer.text == (reply or f"Switched to task: {name}")
    if action is CANCEL_TASK:
        assert (await service.get_task(current.id)).metadata.status is TaskStatus.PENDING
    if action is SWITCH_TASK:
        assert service.get_current_task_id() == named.id


@pytest.mark.parametrize(
    "text", ["Fix the crash that happens after login", "Implement the following features."]
)
async def test_after_or_following_in_plain_prose_is_not_a_dependency(make_service, text):
    service = await make_service(GatedProvider())
    await service.create_task("Write docs", "Document the login flow and its features")

    reply = await ask(CREATE_TASK, service, text)

    assert reply.success, reply.text
    assert reply.data["dependsOn"] == []


async def test_a_dependency_named_in_the_text_is_matched_by_name_not_description(make_service):
    service = await make_service(GatedProvider())
    await service.create_task("Write docs", "Document the login flow")

    reply = await ask(CREATE_TASK, service, "Deploy after the login task")

    assert not reply.success
    assert reply.text == 'No task found matching "login" to wait for; nothing was created.'
    assert await task_count(service) == 1


@pytest.mark.parametrize(
    "text", ["Create task: redesign the 👩\u200d💻 dev page", "create task: תרגום\u200f README"]
)
async def test_ordinary_format_characters_are_accepted(make_service, text):
    service = await make_service(GatedProvider())

    reply = await ask(CREATE_TASK, service, text)

    assert reply.success, reply.text


async def test_text_that_reorders_how_it_is_shown_is_refused(make_service):
    service = await make_service(GatedProvider())

    reply = await ask(CREATE_TASK, service, "create task: invoice \u202etxt.exe")

    assert not reply.success
    assert reply.text.startswith("The request contains a control character (U+202E)")
    assert await task_count(service) == 0


@pytest.mark.parametrize("text", ["stop the build task", "cancel the fix task", "pause task add-3"])
async def test_a_request_about_an_existing_task_does_not_offer_create_task(make_service, text):
    service = await make_service()

    assert not CREATE_TASK.validate(text, service)


@pytest.mark.parametrize(
    "text", ["abort the build task", "find the fix task", "show the build task"]
)
async def test_a_verb_no_control_action_answers_leaves_create_task_offered(make_service, text):
    # As in the reference: no other action matches these, so the request is not dropped.
    service = await make_service()

    assert CREATE_TASK.validate(text, service)
    assert [a.name for a in ACTIONS if a.validate(text, service)] == ["CREATE_TASK"]


# -- each room has its own current task (the reference had one for every room) --------------


async def two_rooms(make_service, **options):
    service = await make_service(GatedProvider(), **options)
    first = await CREATE_TASK.run(service, ActionRequest("create task: room A work", room_id="A"))
    second = await CREATE_TASK.run(service, ActionRequest("create task: room B work", room_id="B"))
    return service, first.data["taskId"], second.data["taskId"]


async def test_a_command_without_a_name_acts_on_its_own_rooms_current_task(make_service):
    service, in_a, in_b = await two_rooms(make_service)

    reply = await PAUSE_TASK.run(service, ActionRequest("pause the task", room_id="B"))

    assert reply.text == "Paused task: create task: room B work"
    assert (await service.get_task(in_a)).metadata.status is not TaskStatus.PAUSED
    assert (await service.get_task(in_b)).metadata.status is TaskStatus.PAUSED


async def test_switching_in_one_room_leaves_the_other_rooms_selection(make_service):
    service, _, in_b = await two_rooms(make_service)
    other = await CREATE_TASK.run(service, ActionRequest("create task: more for A", room_id="A"))

    await SWITCH_TASK.run(service, ActionRequest("switch to task more for A", room_id="A"))

    assert service.get_current_task_id("A") == other.data["taskId"]
    assert service.get_current_task_id("B") == in_b
    assert (await service.get_task_context("B")).startswith(
        "## Current Task (selected): create task: room B work"
    )


async def test_each_rooms_selection_survives_a_restart_and_goes_with_its_task(make_service):
    service, in_a, in_b = await two_rooms(make_service)
    await service.stop()

    again = await make_service(GatedProvider(), store=service.store)

    assert (again.get_current_task_id("A"), again.get_current_task_id("B")) == (in_a, in_b)
    await again.delete_task(in_b)
    assert again.get_current_task_id("B") is None
    assert again.get_current_task_id("A") == in_a


async def test_clearing_a_rooms_selection_clears_it_even_when_it_showed_the_shared_one(
    make_service,
):
    service = await make_service()
    task = await service.create_task("no room", "")
    assert service.get_current_task_id("r1") == task.id

    await service.select_task(None, "r1")

    assert service.get_current_task_id("r1") is None
    assert service.get_current_task_id() is None


async def test_clearing_a_room_that_saw_nothing_keeps_the_shared_selection(make_service):
    service = await make_service()
    task = await service.create_task("in r2", "", room_id="r2")

    await service.select_task(None, "r1")

    assert service.get_current_task_id() == task.id
    assert service.get_current_task_id("r2") == task.id


@pytest.mark.parametrize(
    "text",
    [
        "Fix the bug where deleted tasks still show in the sidebar",
        "add a task that pauses the build",
    ],
)
async def test_a_request_for_a_new_task_that_mentions_a_control_verb_offers_create_task(
    make_service, text
):
    service = await make_service()

    assert CREATE_TASK.validate(text, service)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Fix the crash that happens after login and make sure the fix is done", []),
        ("Write the notes after the deploy task, and mark the ticket done", ["deploy"]),
        ("Write the notes after the ‘deploy’ task", ["deploy"]),
        ("Ship it after the login and signup tasks", ["login", "signup"]),
        ("Show the list after login then restart the task", []),
    ],
)
def test_a_dependency_name_stays_within_its_clause(text, names):
    assert dependency_names(text) == names


async def test_a_quoted_name_keeps_its_apostrophe(make_service):
    service = await make_service(GatedProvider())
    await service.create_task("Bob", "")
    await service.create_task("Bob’s report", "")

    reply = await ask(CANCEL_TASK, service, "cancel the ‘Bob’s report’ task")

    assert reply.text == "Cancelled task: Bob’s report"


async def test_a_short_dependency_name_is_not_matched_by_the_start_of_an_id(make_service):
    service = await make_service(GatedProvider())
    await service.create_task("write newsletter", "", task_id="db5f0c2e-1111-4222-8333-44445555")
    wanted = await service.create_task("migrate db", "")

    reply = await ask(CREATE_TASK, service, "Create a task to seed data after the db task")

    assert reply.data["dependsOn"] == [wanted.id]


async def test_the_command_lines_view_of_a_store_selects_by_the_services_rules(tmp_path):
    path = tmp_path / "s.db"
    options = AgentOrchestratorPluginOptions(providers=[GatedProvider()])
    service = await AgentOrchestratorService.start(options=options, store=SqliteStore(path))
    task = await service.create_task("in r2", "", room_id="r2")
    await service.stop()

    async with RemoteTasks(path) as remote:
        await remote.select_task(None, "r1")
        await remote.refresh()

        assert remote.get_current_task_id() == task.id
        assert remote.get_current_task_id("r1") is None
        assert remote.get_current_task_id("r2") == task.id
