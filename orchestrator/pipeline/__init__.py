"""Pipelines written down as TOML files: loading and checking them, and running them.

See ``orchestrator.pipeline._spec`` for the file format and ``orchestrator.templating`` for the
``{{ tasks.<id>.<field> }}`` placeholders.
"""

from orchestrator.pipeline._run import (
    RunNotFoundError,
    RunRecord,
    find_run,
    qualified,
    recorded_runs,
    resume_run,
    start_run,
)
from orchestrator.pipeline._spec import (
    Pipeline,
    PipelineError,
    PipelineFile,
    PipelineSettings,
    Problem,
    TaskSpec,
    load_pipeline,
    parse_pipeline,
)

__all__ = [
    "Pipeline",
    "PipelineError",
    "PipelineFile",
    "PipelineSettings",
    "Problem",
    "RunNotFoundError",
    "RunRecord",
    "TaskSpec",
    "find_run",
    "load_pipeline",
    "parse_pipeline",
    "qualified",
    "recorded_runs",
    "resume_run",
    "start_run",
]
