"""Evaluation suites: cases are data in eval/, metrics are functions here."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from assistant.errors import ConfigError

Case = TypeVar("Case", bound=BaseModel)


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (None for no values): one of the values."""
    if not values:
        return None
    return np.percentile(values, q, method="nearest").item()


def load_jsonl(path: Path, model: type[Case]) -> list[Case]:
    """Cases from a JSON-lines file, each checked against ``model``; an error names the line.
    Case ids (an ``id`` field) must be unique."""
    if not path.exists():
        raise ConfigError(f"Cases file {path} does not exist")
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(model.model_validate_json(line))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ConfigError(
                f"{path}:{number}: not a valid case ({where}: {error['msg']})"
            ) from None
    ids = [getattr(c, "id", None) for c in cases]
    if None not in ids and len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: case ids are not unique")
    return cases
