from orchestrator import TaskStatus


async def test_a_chain_runs_in_dependency_order(make_service):
    service = await make_service()
    a = await service.create_task("a", "first")
    b = await service.create_task("b", "second", depends_on=[a.id])
    summary = await service.run()
    assert summary.ok
    assert summary.statuses == {a.id: TaskStatus.COMPLETED, b.id: TaskStatus.COMPLETED}
