"""The booted container fixture of tests/system (machinery in container.py)."""

from system.container import container

__all__ = ["container"]
