"""The eval harness end to end with the prompt-following stand-in model (``quote``):
reports are written, the gate passes on the accepted numbers and fails, at zero
tolerance, when the answer prompt is deliberately broken."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from assistant.cases import add_case
from assistant.cli import app
from assistant.config import PACKAGE_ROOT
from assistant.evals import harness
from assistant.evals.judge import agreement
from tests.conftest import fake_settings


def settings(tmp_path, **overrides):
    values = {"llm_backend": "quote", "coverage_threshold": -1.0, "followup_similarity": -1.0,
              "session_store": "memory", "database_url": "sqlite://", "rate_limit": ""}
    return fake_settings(tmp_path, **(values | overrides))


def test_a_full_quick_run_writes_results_and_a_report(tmp_path):
    run = harness.run_from_settings(settings(tmp_path), list(harness.SUITES), quick=True,
                                    progress=False)
    folder = harness.write(run, tmp_path / "report")
    results = json.loads((folder / "results.json").read_text())
    page = (folder / "report.html").read_text()
    assert set(results["suites"]) == set(harness.SUITES)
    for metric in ("faithfulness", "citation_recall", "citation_precision", "hit_at_1",
                   "ndcg_at_5", "key_fact_pass", "refusal_accuracy", "urgent_recall",
                   "false_alarm_rate", "attack_success_rate", "handoff_rate",
                   "judge_agreement", "latency_p50_ms"):
        assert results["metrics"][metric] is not None, metric
    assert {c["suite"] for c in results["cases"]} == set(harness.SUITES)
    passed = [c["passed"] for c in results["cases"]]
    assert passed == sorted(passed)  # failing cases first
    assert "data:image/png;base64," in page and "Cases (failing first)" in page
    assert results["metrics"]["urgent_recall"] == 1.0 and results["metrics"]["handoff_rate"] == 1.0


def broken_prompts(tmp_path):
    """The answer call's prompt with its candidates mislabelled: a deliberately broken
    prompt (the model no longer sees which passages it may choose)."""
    folder = tmp_path / "prompts"
    shutil.copytree(PACKAGE_ROOT / "prompts", folder)
    (folder / "choose.yaml").write_text(
        'name: choose\nversion: "broken"\ndescription: candidates mislabelled\n'
        "variables: [earlier, question, candidates]\n"
        "template: |\n  {earlier}\n  <question>{question}</question>\n  Options {candidates}\n",
        encoding="utf-8",
    )
    return folder


def test_the_gate_fails_on_a_broken_prompt_at_zero_tolerance(tmp_path):
    good = harness.run_from_settings(settings(tmp_path / "a"), ["answers"], judge="none",
                                     limit=10, progress=False)
    baseline = {"limited": {k: v for k, v in good.metrics.items() if not k.endswith("_ms")},
                "tolerance": {"default": 0.0}}
    assert harness.gate(good, baseline)["passed"]  # the accepted numbers pass

    broken = harness.run_from_settings(
        settings(tmp_path / "b", prompts_dir=broken_prompts(tmp_path)), ["answers"],
        judge="none", limit=10, progress=False)
    verdict = harness.gate(broken, baseline)
    assert not verdict["passed"]
    # the model is offered nothing it can choose: every question falls to not_in_guide
    assert any(f.startswith("key_fact_pass") for f in verdict["failures"])
    assert broken.metrics["key_fact_pass"] < good.metrics["key_fact_pass"]
    # a generous tolerance lets the same run through: the tolerance is what decides (metrics
    # with no value at all here, nothing being answered, are never loosened)
    measured = {k: v for k, v in baseline["limited"].items() if broken.metrics.get(k) is not None}
    loose = harness.gate(broken, {**baseline, "limited": measured}, tolerance=1.0)
    assert loose["passed"], loose["failures"]


def test_the_cli_gate_exits_non_zero_and_names_the_metric(tmp_path, monkeypatch):
    for key, value in {"PROFILE": "test", "LLM_BACKEND": "quote", "COVERAGE_THRESHOLD": "-1",
                       "FOLLOWUP_SIMILARITY": "-1", "DATA_DIR": str(tmp_path / "d"),
                       "PROMPTS_DIR": str(broken_prompts(tmp_path))}.items():
        monkeypatch.setenv(f"SCARGUIDE_{key}", value)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"limited": {"key_fact_pass": 0.5, "refusal_accuracy": 0.0},
                                    "tolerance": {"default": 0.0}}))
    result = CliRunner().invoke(app, ["eval", "--suite", "answers", "--limit", "8", "--judge",
                                      "none", "--gate", "--baseline", str(baseline),
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 1, result.output
    assert "gate: FAILED" in result.output and "key_fact_pass:" in result.output
    assert (tmp_path / "r" / "report.html").exists()


def test_add_case_from_a_stored_turn_round_trip(tmp_path):
    from assistant.app import Services
    from assistant.evals.answers import load_cases

    services = Services(settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"))
    services.ingest()
    first = services.assistant.ask("what are boxcar scars?")
    services.assistant.ask("what is subcision?", first.session_id)
    with services.store.transaction() as db:
        from sqlalchemy import select

        from assistant.store import TurnRow

        turn_id = db.scalar(select(TurnRow.id).where(TurnRow.turn == 2))
    cases = tmp_path / "cases.jsonl"
    shutil.copy(PACKAGE_ROOT / "eval" / "answers.jsonl", cases)
    before = len(load_cases(cases))
    case = add_case(services.store, turn_id, cases, expected_status="answered",
                            facts=[["scar tissue"]])
    loaded = load_cases(cases)
    assert len(loaded) == before + 1 and loaded[-1] == case
    assert case.conversation == ["what are boxcar scars?", "what is subcision?"]
    assert case.expected_sections == ["How to treat acne scars › Subcision"]
    with pytest.raises(Exception, match="already has"):
        add_case(services.store, turn_id, cases)


def test_judge_agreement_and_kappa_known_values():
    assert agreement([(True, True), (False, False)]) == {"pairs": 2, "agreement": 1.0,
                                                          "kappa": 1.0}
    stats = agreement([(True, True), (True, False), (False, False), (False, True)])
    assert stats["agreement"] == 0.5 and stats["kappa"] == 0.0


def test_the_harness_runs_against_a_server(tmp_path):
    from tests.server import running

    env = {"SCARGUIDE_PROFILE": "test", "SCARGUIDE_LLM_BACKEND": "quote",
           "SCARGUIDE_COVERAGE_THRESHOLD": "-1", "SCARGUIDE_FOLLOWUP_SIMILARITY": "-1",
           "SCARGUIDE_DATA_DIR": str(tmp_path / "server"), "SCARGUIDE_RATE_LIMIT": ""}
    with running(env, tmp_path / "server.log") as server:
        run = harness.run_from_settings(settings(tmp_path), list(harness.SUITES),
                                        url=server.url, judge="none", limit=5, progress=False)
    assert run.target == f"server {server.url}"
    assert run.details["retrieval"].startswith("skipped")  # needs the in-process assistant
    for metric in ("key_fact_pass", "faithfulness", "urgent_recall", "handoff_rate",
                   "attack_success_rate"):
        assert run.metrics[metric] is not None, metric
    assert run.metrics["urgent_recall"] == 1.0 and run.metrics["handoff_rate"] == 1.0


def test_judge_kappa_is_the_chance_corrected_agreement():
    # 10 pairs: 8 agree; each judge says yes 5 times, so chance agreement is 0.5
    pairs = [(True, True)] * 4 + [(False, False)] * 4 + [(True, False), (False, True)]
    assert agreement(pairs) == {"pairs": 10, "agreement": 0.8, "kappa": 0.6}
    # one judge always yes, the other once no: agreement 0.75, no better than chance
    assert agreement([(True, True)] * 3 + [(True, False)])["kappa"] == 0.0
    assert agreement([(False, False)] * 3)["kappa"] == 1.0  # one verdict throughout
