"""Every error the assistant raises on purpose is defined in ``assistant/errors.py``,
under ``ScarguideError``, and named in the tree at its top."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import assistant
from assistant import errors
from assistant.errors import ScarguideError


def test_every_scarguide_error_lives_in_errors_py_and_its_tree():
    for info in pkgutil.walk_packages(assistant.__path__, "assistant."):
        if info.name.startswith("assistant.migrations"):
            continue  # Alembic's scripts run only inside Alembic
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ScarguideError):
                assert cls.__module__ == "assistant.errors", (cls, info.name)
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, ScarguideError) and cls is not ScarguideError:
            assert cls.__name__ in errors.__doc__, cls.__name__
