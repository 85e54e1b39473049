"""The claim checker on labelled (sentence, passage, supported?) pairs.

Cases live in ``eval/verifier.jsonl``: ``id``, ``sentence``, ``chunk_id`` (the
passage), ``supported`` (the human label) and ``kind``. Reports precision and
recall of the "supported" verdict (precision is what protects patients: a
sentence judged supported is shown), and accuracy per kind.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from assistant.config import Settings
from assistant.corpus import build_chunks
from assistant.errors import ConfigError
from assistant.evals import load_jsonl
from assistant.verify import ClaimChecker

DEFAULT_CASES = Path(__file__).resolve().parents[2] / "eval" / "verifier.jsonl"


class VerifierCase(BaseModel):
    id: str = Field(min_length=1)
    sentence: str = Field(min_length=1)
    chunk_id: str = Field(min_length=1)
    supported: bool
    kind: str = "other"


@dataclass(frozen=True)
class VerifierScores:
    n: int
    precision: float
    recall: float
    f1: float
    unsupported_caught: float
    per_kind: dict[str, float]
    errors: list[dict[str, object]]


def load_cases(path: Path) -> list[VerifierCase]:
    return load_jsonl(path, VerifierCase)


def scores(labels: list[bool], verdicts: list[bool], kinds: list[str]) -> tuple[float, ...]:
    """precision, recall, F1 of the positive ("supported") class, and the share of
    unsupported sentences the checker rejected."""
    tp = sum(1 for y, v in zip(labels, verdicts, strict=True) if y and v)
    fp = sum(1 for y, v in zip(labels, verdicts, strict=True) if not y and v)
    fn = sum(1 for y, v in zip(labels, verdicts, strict=True) if y and not v)
    tn = sum(1 for y, v in zip(labels, verdicts, strict=True) if not y and not v)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    caught = tn / (tn + fp) if tn + fp else 0.0
    return precision, recall, f1, caught


def evaluate(
    settings: Settings, checker: ClaimChecker, path: Path = DEFAULT_CASES
) -> VerifierScores:
    chunks = {c.chunk_id: c for c in build_chunks(settings.corpus_dir, settings.chunk_max_words)}
    cases = load_cases(path)
    unknown = sorted({c.chunk_id for c in cases} - set(chunks))
    if unknown:
        raise ConfigError(f"{path}: unknown chunk id(s) {unknown}")
    labels, verdicts, kinds, errors = [], [], [], []
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for case in cases:
        chunk = chunks[case.chunk_id]
        verdict = checker.check(case.sentence, chunk.text, chunk.section)
        labels.append(case.supported)
        verdicts.append(verdict.supported)
        kinds.append(case.kind)
        by_kind[case.kind].append(verdict.supported == case.supported)
        if verdict.supported != case.supported:
            errors.append({"id": case.id, "label": case.supported,
                           **verdict.model_dump(include={"sentence", "supported", "quote",
                                                         "reasons"}),
                           "similarity": round(verdict.similarity or 0.0, 4),
                           "novelty": round(verdict.novelty or 0.0, 4)})
    precision, recall, f1, caught = scores(labels, verdicts, kinds)
    return VerifierScores(
        n=len(cases),
        precision=precision,
        recall=recall,
        f1=f1,
        unsupported_caught=caught,
        per_kind={k: sum(v) / len(v) for k, v in sorted(by_kind.items())},
        errors=errors,
    )


def render(s: VerifierScores) -> str:
    lines = [
        f"pairs: {s.n}",
        f"precision (supported verdicts that are right): {s.precision:.3f}",
        f"recall (supported sentences kept):             {s.recall:.3f}",
        f"F1:                                            {s.f1:.3f}",
        f"unsupported sentences rejected:                {s.unsupported_caught:.3f}",
        "accuracy by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in s.per_kind.items()),
    ]
    for e in s.errors:
        lines.append(f"  wrong on {e['id']} (label {e['label']}): {e['sentence']} {e['reasons']}")
    return "\n".join(lines)


def to_json(s: VerifierScores) -> str:
    return json.dumps(asdict(s), indent=2, ensure_ascii=False)
