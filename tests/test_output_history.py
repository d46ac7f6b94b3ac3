"""Without an event log, a task's output history is the window it keeps."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("store_kind", ["memory"], indirect=True)
async def test_without_an_event_log_the_history_is_the_kept_window(make_service):
    service = await make_service()
    task = await service.create_task("chatty", "")
    await service.append_output(task.id, "\n".join(f"line {i}" for i in range(600)))

    assert await service.get_task_output(task.id) == [f"line {i}" for i in range(100, 600)]
