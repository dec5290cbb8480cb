"""Runs: the queue and engine processes (manager), their on-disk state (status) and the live panel
(monitor) shown under the Start buttons and in the Runs tab."""

from ui.runs.manager import RunManager, get_manager

__all__ = ["RunManager", "get_manager"]
