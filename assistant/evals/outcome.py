"""What a suite of ``scarguide eval`` hands back: its cases and what it measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    suite: str
    id: str
    input: str
    passed: bool
    status: str = ""
    answer: str = ""
    reasons: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    sentences: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class Outcome:
    """One suite's run: its cases, metrics and details, in the order it measured them.
    A suite reads nothing another suite left: what spans suites is handed back here and
    combined by the harness (``near_misses``: messages that should not get the urgent
    reply, and how many got it; ``latencies``: answer times in ms by name)."""

    cases: list[Case] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    near_misses: tuple[int, int] | None = None
    latencies: dict[str, list[float]] = field(default_factory=dict)
