"""The contract models read and write the reference's camelCase dicts (spec §1.2-1.3).

Every test here states one rule of the stored format: which keys ``to_dict()`` always writes,
which only when set, which defaults ``from_dict()`` fills in, and that keys this version does not
know pass through unchanged in ``extra``.
"""

from __future__ import annotations

import uuid

import pytest

from hookspecs.models import (
    OrchestratedTask,
    OrchestratedTaskMetadata,
    TaskEvent,
    TaskEventType,
    TaskResult,
    TaskStatus,
    TaskStep,
    TaskUserStatus,
)

# The keys the reference always writes for metadata (spec §1.3).
REFERENCE_METADATA_ALWAYS = {
    "status",
    "progress",
    "output",
    "steps",
    "workingDirectory",
    "providerId",
    "createdAt",
    "userStatus",
    "filesCreated",
    "filesModified",
}
# The keys the reference writes for metadata only when they are not None.
REFERENCE_METADATA_OPTIONAL = {
    "result",
    "error",
    "startedAt",
    "completedAt",
    "providerLabel",
    "subAgentType",
    "userStatusUpdatedAt",
}
# dagorch's own always-written metadata keys (the DAG and the execution policy).
DAGORCH_METADATA_ALWAYS = {"dependsOn", "retries", "attempts", "params"}


def full_metadata() -> OrchestratedTaskMetadata:
    """Metadata with every optional field set."""
    return OrchestratedTaskMetadata(
        status=TaskStatus.FAILED,
        progress=40,
        output=["line 1", "line 2"],
        steps=[TaskStep(id="s1", description="plan", status=TaskStatus.COMPLETED, output="ok")],
        working_directory="/tmp/work",
        provider_id="coder",
        created_at=1_700_000_000_000,
        result=TaskResult(success=False, summary="did not work", error="boom"),
        error="boom",
        started_at=1_700_000_000_100,
        completed_at=1_700_000_000_200,
        provider_label="Coder",
        sub_agent_type="coder",
        user_status=TaskUserStatus.DONE,
        user_status_updated_at=1_700_000_000_300,
        files_created=["new.py"],
        files_modified=["old.py"],
        depends_on=["upstream"],
        retries=2,
        timeout=1.5,
        attempts=3,
        params={"model": "small"},
    )


# -- enums ------------------------------------------------------------------------------------


def test_task_status_values_are_the_reference_strings():
    assert {s.name: s.value for s in TaskStatus} == {
        "PENDING": "pending",
        "RUNNING": "running",
        "COMPLETED": "completed",
        "FAILED": "failed",
        "PAUSED": "paused",
        "CANCELLED": "cancelled",
    }


def test_task_user_status_values_are_the_reference_strings():
    assert {s.name: s.value for s in TaskUserStatus} == {"OPEN": "open", "DONE": "done"}


def test_task_event_type_values_are_the_reference_event_names():
    assert {e.name: e.value for e in TaskEventType} == {
        "CREATED": "task:created",
        "STARTED": "task:started",
        "PROGRESS": "task:progress",
        "OUTPUT": "task:output",
        "COMPLETED": "task:completed",
        "FAILED": "task:failed",
        "CANCELLED": "task:cancelled",
        "PAUSED": "task:paused",
        "RESUMED": "task:resumed",
        "MESSAGE": "task:message",
    }


def test_enums_are_strings_equal_to_their_values():
    assert TaskStatus.PENDING == "pending"
    assert TaskUserStatus.DONE == "done"
    assert TaskEventType.CREATED == "task:created"


def test_only_completed_failed_and_cancelled_are_terminal():
    terminal = {s for s in TaskStatus if s.is_terminal}
    assert terminal == {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}


# -- TaskStep ---------------------------------------------------------------------------------


def test_task_step_create_gives_a_fresh_uuid4_id_and_pending_status():
    first = TaskStep.create("write the code")
    second = TaskStep.create("write the code")
    assert first.id != second.id
    assert uuid.UUID(first.id).version == 4
    assert first.description == "write the code"
    assert first.status is TaskStatus.PENDING
    assert first.output is None
    assert first.extra == {}


def test_task_step_to_dict_writes_id_description_and_status_value():
    step = TaskStep(id="s1", description="plan", status=TaskStatus.RUNNING)
    assert step.to_dict() == {"id": "s1", "description": "plan", "status": "running"}


def test_task_step_to_dict_writes_output_only_when_it_is_set():
    assert "output" not in TaskStep(id="s1", description="d").to_dict()
    with_output = TaskStep(id="s1", description="d", output="").to_dict()
    assert with_output["output"] == ""


def test_task_step_from_dict_defaults_a_missing_status_to_pending():
    step = TaskStep.from_dict({"id": "s1", "description": "d"})
    assert step.status is TaskStatus.PENDING
    assert step.output is None


def test_task_step_from_dict_reads_status_and_output():
    step = TaskStep.from_dict(
        {"id": "s1", "description": "d", "status": "completed", "output": "done"}
    )
    assert step == TaskStep(id="s1", description="d", status=TaskStatus.COMPLETED, output="done")


def test_task_step_from_dict_refuses_an_invalid_status_with_value_error():
    with pytest.raises(ValueError, match="status"):
        TaskStep.from_dict({"id": "s1", "description": "d", "status": "finished"})


def test_task_step_unknown_keys_go_to_extra_and_are_written_back():
    data = {"id": "s1", "description": "d", "status": "pending", "owner": "ann", "eta": 3}
    step = TaskStep.from_dict(data)
    assert step.extra == {"owner": "ann", "eta": 3}
    assert step.to_dict() == data


# -- TaskResult -------------------------------------------------------------------------------


def test_task_result_to_dict_writes_the_reference_keys_in_camel_case():
    result = TaskResult(
        success=True, summary="built", files_modified=["a.py"], files_created=["b.py"]
    )
    assert result.to_dict() == {
        "success": True,
        "summary": "built",
        "filesModified": ["a.py"],
        "filesCreated": ["b.py"],
    }


def test_task_result_to_dict_writes_error_only_when_it_is_set():
    assert "error" not in TaskResult(success=True, summary="ok").to_dict()
    failed = TaskResult(success=False, summary="no", error="boom").to_dict()
    assert failed["error"] == "boom"


def test_task_result_from_dict_defaults_missing_success_to_false():
    result = TaskResult.from_dict({"summary": "?"})
    assert result.success is False


def test_task_result_from_dict_defaults_missing_lists_summary_and_error():
    result = TaskResult.from_dict({"success": True})
    assert result.summary == ""
    assert result.files_modified == []
    assert result.files_created == []
    assert result.error is None


def test_task_result_from_dict_reads_camel_case_keys():
    result = TaskResult.from_dict(
        {
            "success": False,
            "summary": "s",
            "filesModified": ["m"],
            "filesCreated": ["c"],
            "error": "e",
        }
    )
    assert result == TaskResult(
        success=False, summary="s", files_modified=["m"], files_created=["c"], error="e"
    )


def test_task_result_unknown_keys_go_to_extra_and_are_written_back():
    data = {
        "success": True,
        "summary": "s",
        "filesModified": [],
        "filesCreated": [],
        "tokensUsed": 1234,
    }
    result = TaskResult.from_dict(data)
    assert result.extra == {"tokensUsed": 1234}
    assert result.to_dict() == data


# -- OrchestratedTaskMetadata -----------------------------------------------------------------


def test_metadata_to_dict_writes_only_the_always_written_keys_when_optional_fields_are_unset():
    keys = set(OrchestratedTaskMetadata().to_dict())
    assert keys == REFERENCE_METADATA_ALWAYS | DAGORCH_METADATA_ALWAYS


def test_metadata_to_dict_writes_each_optional_key_once_it_is_set():
    keys = set(full_metadata().to_dict())
    assert keys == (
        REFERENCE_METADATA_ALWAYS
        | REFERENCE_METADATA_OPTIONAL
        | DAGORCH_METADATA_ALWAYS
        | {"timeout"}
    )


def test_metadata_to_dict_writes_values_in_the_reference_format():
    data = full_metadata().to_dict()
    assert data == {
        "status": "failed",
        "progress": 40,
        "output": ["line 1", "line 2"],
        "steps": [{"id": "s1", "description": "plan", "status": "completed", "output": "ok"}],
        "workingDirectory": "/tmp/work",
        "providerId": "coder",
        "createdAt": 1_700_000_000_000,
        "result": {
            "success": False,
            "summary": "did not work",
            "filesModified": [],
            "filesCreated": [],
            "error": "boom",
        },
        "error": "boom",
        "startedAt": 1_700_000_000_100,
        "completedAt": 1_700_000_000_200,
        "providerLabel": "Coder",
        "subAgentType": "coder",
        "userStatus": "done",
        "userStatusUpdatedAt": 1_700_000_000_300,
        "filesCreated": ["new.py"],
        "filesModified": ["old.py"],
        "dependsOn": ["upstream"],
        "retries": 2,
        "timeout": 1.5,
        "attempts": 3,
        "params": {"model": "small"},
    }


def test_metadata_from_dict_of_an_empty_dict_applies_the_reference_defaults():
    md = OrchestratedTaskMetadata.from_dict({})
    assert md.status is TaskStatus.PENDING
    assert md.progress == 0
    assert md.output == []
    assert md.steps == []
    assert md.working_directory == ""
    assert md.provider_id == ""
    assert md.created_at == 0
    assert md.user_status is TaskUserStatus.OPEN
    assert md.result is None
    assert md.error is None
    assert md.started_at is None
    assert md.completed_at is None
    assert md.provider_label is None
    assert md.sub_agent_type is None
    assert md.user_status_updated_at is None
    assert md.files_created == []
    assert md.files_modified == []
    assert md.extra == {}


def test_metadata_from_dict_of_to_dict_gives_back_an_equal_model():
    md = full_metadata()
    assert OrchestratedTaskMetadata.from_dict(md.to_dict()) == md


def test_metadata_from_dict_reads_steps_and_result_as_models():
    md = OrchestratedTaskMetadata.from_dict(
        {
            "steps": [{"id": "s1", "description": "d", "status": "running"}],
            "result": {"success": True, "summary": "ok"},
        }
    )
    assert md.steps == [TaskStep(id="s1", description="d", status=TaskStatus.RUNNING)]
    assert md.result == TaskResult(success=True, summary="ok")


def test_metadata_from_dict_refuses_an_invalid_status_with_value_error():
    with pytest.raises(ValueError, match="status"):
        OrchestratedTaskMetadata.from_dict({"status": "done"})


def test_metadata_from_dict_refuses_an_invalid_step_status_with_value_error():
    with pytest.raises(ValueError, match="status"):
        OrchestratedTaskMetadata.from_dict(
            {"steps": [{"id": "s1", "description": "d", "status": "later"}]}
        )


def test_metadata_from_dict_refuses_an_invalid_user_status_with_value_error():
    with pytest.raises(ValueError, match=r"userStatus|user_status"):
        OrchestratedTaskMetadata.from_dict({"userStatus": "closed"})


def test_metadata_dependencies_retries_timeout_and_params_are_written_in_camel_case():
    md = OrchestratedTaskMetadata(
        depends_on=["a", "b"], retries=3, timeout=2.5, params={"model": "m", "n": [1, None]}
    )
    data = md.to_dict()
    assert data["dependsOn"] == ["a", "b"]
    assert data["retries"] == 3
    assert data["timeout"] == 2.5
    assert data["params"] == {"model": "m", "n": [1, None]}


def test_metadata_dependencies_retries_timeout_and_params_are_read_from_camel_case():
    md = OrchestratedTaskMetadata.from_dict(
        {"dependsOn": ["a"], "retries": 1, "timeout": 10, "params": {"k": {"deep": True}}}
    )
    assert md.depends_on == ["a"]
    assert md.retries == 1
    assert md.timeout == 10
    assert md.params == {"k": {"deep": True}}
    assert md.extra == {}


def test_metadata_timeout_is_written_only_when_set():
    assert "timeout" not in OrchestratedTaskMetadata().to_dict()


def test_metadata_from_dict_refuses_negative_retries_and_non_positive_timeout():
    with pytest.raises(ValueError, match="retries"):
        OrchestratedTaskMetadata.from_dict({"retries": -1})
    with pytest.raises(ValueError, match="timeout"):
        OrchestratedTaskMetadata.from_dict({"timeout": 0})


def test_metadata_unknown_keys_go_to_extra_and_are_written_back():
    data = {**OrchestratedTaskMetadata().to_dict(), "priority": "high", "labels": ["x"]}
    md = OrchestratedTaskMetadata.from_dict(data)
    assert md.extra == {"priority": "high", "labels": ["x"]}
    assert md.to_dict() == data


def test_unknown_keys_inside_steps_and_result_survive_a_metadata_round_trip():
    data = {
        **OrchestratedTaskMetadata().to_dict(),
        "steps": [
            {"id": "s1", "description": "d", "status": "pending", "assignee": "bob"},
            {"id": "s2", "description": "e", "status": "completed", "output": "o"},
        ],
        "result": {
            "success": True,
            "summary": "ok",
            "filesModified": [],
            "filesCreated": [],
            "costUsd": 0.25,
        },
    }
    md = OrchestratedTaskMetadata.from_dict(data)
    assert md.steps[0].extra == {"assignee": "bob"}
    assert md.steps[1].extra == {}
    assert md.result is not None
    assert md.result.extra == {"costUsd": 0.25}
    assert md.to_dict() == data


def test_a_document_written_by_the_reference_keeps_every_key_it_had():
    # As the reference's to_dict() writes it: no dagorch keys, one unknown key at each level.
    reference_doc = {
        "status": "completed",
        "progress": 100,
        "output": ["Starting: t"],
        "steps": [{"id": "s1", "description": "d", "status": "completed", "note": "n"}],
        "workingDirectory": "/w",
        "providerId": "eliza",
        "createdAt": 1,
        "result": {
            "success": True,
            "summary": "ok",
            "filesModified": ["m"],
            "filesCreated": [],
            "model": "big",
        },
        "startedAt": 2,
        "completedAt": 3,
        "providerLabel": "Eliza",
        "subAgentType": "eliza",
        "userStatus": "open",
        "userStatusUpdatedAt": 1,
        "filesCreated": [],
        "filesModified": ["m"],
        "customField": {"nested": [1, 2]},
    }
    written = OrchestratedTaskMetadata.from_dict(reference_doc).to_dict()
    assert {k: written[k] for k in reference_doc} == reference_doc
    assert set(written) - set(reference_doc) == DAGORCH_METADATA_ALWAYS


def test_changing_the_dict_from_to_dict_does_not_change_the_model():
    md = OrchestratedTaskMetadata.from_dict({"custom": {"items": [1]}, "params": {"p": [1]}})
    data = md.to_dict()
    data["params"]["p"].append(2)
    data["custom"]["items"].append(2)
    assert md.params == {"p": [1]}
    assert md.extra == {"custom": {"items": [1]}}


# -- OrchestratedTask -------------------------------------------------------------------------


def test_task_to_dict_writes_id_name_description_metadata_and_tags():
    task = OrchestratedTask(id="t1", name="build", description="Build it", tags=["code"])
    assert task.to_dict() == {
        "id": "t1",
        "name": "build",
        "description": "Build it",
        "metadata": OrchestratedTaskMetadata().to_dict(),
        "tags": ["code"],
    }


def test_task_to_dict_writes_room_id_and_world_id_only_when_set():
    bare = OrchestratedTask(id="t1", name="n").to_dict()
    assert "roomId" not in bare
    assert "worldId" not in bare
    placed = OrchestratedTask(id="t1", name="n", room_id="r", world_id="w").to_dict()
    assert placed["roomId"] == "r"
    assert placed["worldId"] == "w"


def test_task_from_dict_reads_camel_case_keys_and_nested_metadata():
    task = OrchestratedTask.from_dict(
        {
            "id": "t1",
            "name": "n",
            "description": "d",
            "roomId": "r",
            "worldId": "w",
            "tags": ["a"],
            "metadata": {"status": "running", "providerId": "p", "dependsOn": ["t0"]},
        }
    )
    assert (task.id, task.name, task.description) == ("t1", "n", "d")
    assert (task.room_id, task.world_id, task.tags) == ("r", "w", ["a"])
    assert task.metadata.status is TaskStatus.RUNNING
    assert task.metadata.provider_id == "p"
    assert task.status is TaskStatus.RUNNING
    assert task.depends_on == ["t0"]


def test_task_from_dict_defaults_missing_metadata_description_and_tags():
    task = OrchestratedTask.from_dict({"id": "t1", "name": "n"})
    assert task.description == ""
    assert task.tags == []
    assert task.room_id is None
    assert task.world_id is None
    assert task.metadata == OrchestratedTaskMetadata()


def test_task_from_dict_refuses_an_invalid_metadata_status_with_value_error():
    with pytest.raises(ValueError, match="status"):
        OrchestratedTask.from_dict({"id": "t1", "name": "n", "metadata": {"status": "x"}})


def test_unknown_keys_at_every_level_of_a_task_survive_a_round_trip():
    data = OrchestratedTask(
        id="t1",
        name="n",
        metadata=OrchestratedTaskMetadata(
            steps=[TaskStep(id="s1", description="d")],
            result=TaskResult(success=True, summary="ok"),
        ),
    ).to_dict()
    data["entityId"] = "e1"
    data["metadata"]["priority"] = 5
    data["metadata"]["steps"][0]["assignee"] = "bob"
    data["metadata"]["result"]["costUsd"] = 0.5

    task = OrchestratedTask.from_dict(data)

    assert task.extra == {"entityId": "e1"}
    assert task.metadata.extra == {"priority": 5}
    assert task.metadata.steps[0].extra == {"assignee": "bob"}
    assert task.metadata.result is not None
    assert task.metadata.result.extra == {"costUsd": 0.5}
    assert task.to_dict() == data


# -- TaskEvent --------------------------------------------------------------------------------


def test_task_event_to_dict_writes_type_value_task_id_timestamp_and_seq():
    event = TaskEvent(type=TaskEventType.CREATED, task_id="t1", timestamp=5, seq=7)
    assert event.to_dict() == {"type": "task:created", "taskId": "t1", "timestamp": 5, "seq": 7}


def test_task_event_to_dict_writes_data_only_when_set():
    event = TaskEvent(
        type=TaskEventType.COMPLETED,
        task_id="t1",
        data={"success": True, "summary": "s", "error": None},
        timestamp=5,
        seq=1,
    )
    # None values inside data are part of the payload and are kept.
    assert event.to_dict()["data"] == {"success": True, "summary": "s", "error": None}


def test_task_event_data_defaults_to_none_and_timestamp_to_now():
    event = TaskEvent(type=TaskEventType.PAUSED, task_id="t1")
    assert event.data is None
    assert event.seq == 0
    assert event.timestamp > 1_600_000_000_000  # epoch milliseconds


def test_task_event_from_dict_of_to_dict_gives_back_an_equal_event():
    event = TaskEvent(
        type=TaskEventType.OUTPUT, task_id="t1", data={"output": ["a"]}, timestamp=9, seq=3
    )
    assert TaskEvent.from_dict(event.to_dict()) == event


def test_task_event_from_dict_refuses_an_unknown_event_type_with_value_error():
    with pytest.raises(ValueError, match="type"):
        TaskEvent.from_dict({"type": "task:exploded", "taskId": "t1"})


def test_task_event_unknown_keys_go_to_extra_and_are_written_back():
    data = {"type": "task:message", "taskId": "t1", "timestamp": 1, "seq": 2, "source": "ui"}
    event = TaskEvent.from_dict(data)
    assert event.extra == {"source": "ui"}
    assert event.to_dict() == data
