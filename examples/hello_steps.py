"""The Python steps of ``hello.toml`` (the ``python`` provider imports them from this folder)."""

from __future__ import annotations


def count_words(upstream):
    """Count the words the upstream tasks said."""
    words = sum(len(result.summary.split()) for result in upstream.values())
    return f"{words} words"


async def report(task, upstream, ctx):
    """Put every upstream summary together, one output line each."""
    for task_id, result in sorted(upstream.items()):
        await ctx.append_output(f"{task_id.split('/')[-1]}: {result.summary}")
    return f"report of {len(upstream)} results"
