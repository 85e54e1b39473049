"""``report.html``: one self-contained page (charts inlined as PNG) for a person to read."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

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

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; margin: 2rem auto; max-width: 1200px;
  padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: .35rem .5rem; vertical-align: top; text-align: left; }
th { background: #eef3f3; }
.pass { color: #0b6b2e; font-weight: 600; } .fail { color: #a40018; font-weight: 600; }
tr.failed { background: #fff4f4; }
.quote { color: #333; font-size: .92em; border-left: 3px solid #8ab; padding-left: .4rem;
  margin: .2rem 0; }
.charts img { max-width: 49%; }
code { background: #f3f3f3; padding: 0 .2rem; }
"""


def _chart(pairs: list[tuple[str, float]], title: str, bad: bool = False) -> str:
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
    return (f'<img alt="{html.escape(title)}" src="data:image/png;base64,'
            f'{base64.b64encode(buffer.getvalue()).decode()}">')


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key.endswith("_ms"):
        return f"{value / 1000:.2f} s"
    return f"{value:.3f}"


def _esc(text: Any) -> str:
    return html.escape(str(text if text is not None else ""))


def render_html(run) -> str:
    metrics = run.metrics
    gate = {c["metric"]: c for c in (run.gate or {}).get("checked", [])}
    rows = []
    for key, value in metrics.items():
        check = gate.get(key)
        verdict = ""
        if check:
            verdict = ('<span class="pass">ok</span>' if check["ok"]
                       else '<span class="fail">below baseline</span>')
            verdict += f" (baseline {check['baseline']:.3f} ± {check['tolerance']:.3f})"
        rows.append(f"<tr><td><code>{_esc(key)}</code></td><td>{_fmt(key, value)}</td>"
                    f"<td>{verdict}</td></tr>")
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
    suite_rows = "".join(
        f"<tr><td>{_esc(s)}</td><td>{p}/{n}</td></tr>" for s, (p, n) in by_suite.items()
    )

    case_rows = []
    for case in run.cases:
        quotes = "".join(
            f'<div class="quote">[{c["n"]}] <b>{_esc(c["section"])}</b>: “{_esc(c["quote"])}”</div>'
            for c in case.get("citations", [])
        )
        sentences = "".join(
            f"<div>{'✔' if s['checker'] else '✘'} checker · "
            f"{'–' if s['judge'] is None else ('✔' if s['judge'] else '✘')} judge: "
            f"{_esc(s['sentence'])}</div>"
            for s in case.get("sentences", [])
        )
        result = ('<span class="pass">pass</span>' if case["passed"]
                  else '<span class="fail">fail</span>')
        case_rows.append(
            f'<tr class="{"" if case["passed"] else "failed"}"><td>{_esc(case["suite"])}</td>'
            f"<td>{_esc(case['id'])}</td><td>{result}"
            f"<br>{_esc('; '.join(case.get('reasons', [])))}</td>"
            f"<td>{_esc(case['input'])}</td><td>{_esc(case.get('status'))}</td>"
            f"<td>{_esc(case.get('answer'))}{sentences}</td><td>{quotes}</td></tr>"
        )
    disagreements = "".join(
        f"<tr><td>{_esc(d['sentence'])}</td><td>{_esc(d['passage'][:600])}</td>"
        f"<td>{'supported' if d['checker'] else 'unsupported'}</td>"
        f"<td>{'supported' if d['judge'] else 'unsupported'}: {_esc(d['judge_reason'])}</td>"
        f"<td>{'' if d.get('label') is None else ('supported' if d['label'] else 'unsupported')}"
        f"</td></tr>"
        for d in run.disagreements
    )
    judge = run.details.get("judge")
    judge_line = (
        f"<p>Second judge: <b>{_esc(judge['name'])}</b>, asked claim by claim. Together the "
        f"judges saw {judge['pairs']} claims ({judge['answer_claims']} sentences of shown "
        f"answers and {judge['labelled_pairs']} labelled pairs from eval/verifier.jsonl): "
        f"agreement {judge['agreement']:.3f}, Cohen's κ {judge['kappa']:.3f}; accuracy on "
        f"the labelled pairs: checker {run.metrics.get('checker_accuracy_labelled')}, judge "
        f"{run.metrics.get('judge_accuracy_labelled')} ({judge['unreadable']} unreadable "
        f"replies).</p>" if judge else
        "<p>The second judge did not run.</p>"
    )
    gate_line = ""
    if run.gate is not None:
        gate_line = (
            '<p class="pass">Gate passed.</p>' if run.gate["passed"] else
            '<p class="fail">Gate failed: ' + _esc("; ".join(run.gate["failures"])) + "</p>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scarguide eval {_esc(run.started)}</title>
<style>{CSS}</style></head><body>
<h1>scarguide evaluation</h1>
<p class="meta">{_esc(run.started)} · {_esc(run.target)} · mode {_esc(run.mode)} ·
suites {_esc(", ".join(run.suites))} · {run.seconds} s</p>
{gate_line}
<h2>Summary</h2>
<table><tr><th>metric</th><th>value</th><th>gate</th></tr>{"".join(rows)}</table>
<div class="charts">{"".join(charts)}</div>
<h2>Cases by suite</h2><table><tr><th>suite</th><th>passed</th></tr>{suite_rows}</table>
<h2>Judges</h2>{judge_line}
<table><tr><th>sentence</th><th>cited passage</th><th>checker</th><th>LLM judge</th>
<th>label</th></tr>
{disagreements or '<tr><td colspan="5">No disagreements.</td></tr>'}</table>
<h2>Cases (failing first)</h2>
<table><tr><th>suite</th><th>id</th><th>result</th><th>input</th><th>status</th>
<th>answer (and each sentence's verdicts)</th><th>cited quotes</th></tr>
{"".join(case_rows)}</table>
</body></html>
"""
