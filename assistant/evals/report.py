"""``report.html``: one self-contained page (charts inlined as PNG) for a person to read,
from the Jinja2 template ``templates/report.html.j2``."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).with_name("templates")

QUALITY = [
    ("faithfulness", "Faithfulness (checker)"),
    ("judge_faithfulness", "Faithfulness (LLM judge)"),
    ("checker_accuracy_labelled", "Checker accuracy, labelled pairs"),
    ("judge_accuracy_labelled", "Judge accuracy, labelled pairs"),
    ("citation_recall", "Citation recall"),
    ("citation_precision", "Citation precision"),
    ("key_fact_pass", "Key-fact pass"),
    ("model_answer_rate", "Answered by the model itself"),
    ("section_citation", "Expected section cited"),
    ("refusal_accuracy", "Refusal accuracy"),
    ("urgent_recall", "Urgent recall"),
    ("handoff_rate", "Handoff rate"),
    ("followup_accuracy", "Follow-up accuracy"),
    ("hit_at_1", "Retrieval hit@1"),
    ("hit_at_3", "Retrieval hit@3"),
    ("mrr", "Retrieval MRR"),
    ("ndcg_at_5", "Retrieval nDCG@5"),
]
BAD = [
    ("forbidden_content_rate", "Forbidden content"),
    ("false_alarm_rate", "Urgent false alarms"),
    ("attack_success_rate", "Attack success"),
]

def _chart(pairs: list[tuple[str, float]], title: str, bad: bool = False) -> dict[str, str]:
    """A bar chart of ``pairs``: its title and the PNG, base64."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.38 * len(pairs) + 1.1), dpi=110)
    labels = [p[0] for p in pairs][::-1]
    values = [p[1] for p in pairs][::-1]
    colour = "#c0392b" if bad else "#1f7a6d"
    bars = ax.barh(labels, values, color=colour)
    ax.set_xlim(0, 1)
    ax.set_title(title)
    for bar, value in zip(bars, values, strict=True):
        ax.text(min(value + 0.01, 0.9), bar.get_y() + bar.get_height() / 2, f"{value:.3f}",
                va="center", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return {"title": title, "png": base64.b64encode(buffer.getvalue()).decode()}


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.endswith("_ms"):
        return f"{value / 1000:.2f} s"
    return f"{value:.3f}"


def render_html(run) -> str:
    """The page of a run (``templates/report.html.j2``, every value escaped)."""
    from jinja2 import Environment, FileSystemLoader

    metrics = run.metrics
    gate = {c["metric"]: c for c in (run.gate or {}).get("checked", [])}
    rows = [{"key": key, "value": _fmt(key, value), "check": gate.get(key)}
            for key, value in metrics.items()]
    good = [(label, metrics[k]) for k, label in QUALITY if metrics.get(k) is not None]
    bad = [(label, metrics[k]) for k, label in BAD if metrics.get(k) is not None]
    charts = []
    if good:
        charts.append(_chart(good, "Quality (higher is better)"))
    if bad:
        charts.append(_chart(bad, "Failures (lower is better)", bad=True))
    by_suite: dict[str, list[int]] = {}
    for case in run.cases:
        tally = by_suite.setdefault(case["suite"], [0, 0])
        tally[0] += case["passed"]
        tally[1] += 1
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      keep_trailing_newline=True)
    return env.get_template("report.html.j2").render(
        run=run, rows=rows, charts=charts, by_suite=by_suite,
        judge=run.details.get("judge"), text=lambda v: "" if v is None else v)
