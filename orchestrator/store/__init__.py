"""Where an orchestrator keeps its state: the ``Store`` protocol and its implementations."""

from orchestrator.store._base import Store
from orchestrator.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
