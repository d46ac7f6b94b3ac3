"""The Python step of ``research.toml``."""

from __future__ import annotations


def merge(upstream):
    """Join the research findings, one per topic, in a stable order."""
    findings = sorted(result.summary for result in upstream.values())
    return " | ".join(findings)
