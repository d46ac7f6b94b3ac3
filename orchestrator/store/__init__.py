"""Where an orchestrator keeps its state: the ``Store`` protocol and its implementations."""

from orchestrator.store._base import Store
from orchestrator.store.memory import MemoryStore
from orchestrator.store.sqlite import SqliteStore, default_store_path

__all__ = ["MemoryStore", "SqliteStore", "Store", "default_store_path"]
