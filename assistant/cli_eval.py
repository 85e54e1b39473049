"""``scarguide eval``: every suite in one run (with a report and a gate), one subcommand
per suite, and the eval cases made from stored turns."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.config import load_settings

eval_app = typer.Typer(
    help="Measure the assistant on the labelled cases in eval/. With no subcommand: every "
    "suite, a results.json and a report.html under eval/reports/<timestamp>/."
)

# evaluations keep their conversations in memory, out of the clinic's database
EVAL_STORES = {"session_store": "memory", "database_url": "sqlite://"}


def _services():
    from assistant.app import Services

    return Services(load_settings())


def _eval_assistant(model: str | None = None):
    """The assistant on the eval stores (and ``model``, a packaged model, when given)."""
    from assistant.app import Services

    overrides = EVAL_STORES | ({"llm_model": model} if model else {})
    return Services(load_settings(**overrides)).assistant


@eval_app.command("retrieval")
def eval_retrieval(
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """hit@1, hit@3 and MRR of the retriever, its parts and the naive recipe, in one run."""
    from assistant.evals import retrieval

    results = retrieval.evaluate(_services(), cases or retrieval.DEFAULT_CASES)
    typer.echo(retrieval.to_json(results) if as_json else retrieval.render(results))


@eval_app.callback(invoke_without_command=True)
def eval_all(
    ctx: typer.Context,
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help="Run only this suite (repeatable): retrieval, answers, "
                     "safety, attacks, followups, handoff."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Packaged model for the local backend.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N cases per suite.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="The quick subset CI runs.")] = False,
    url: Annotated[
        str | None, typer.Option(help="Evaluate a running server (its REST API) instead.")
    ] = None,
    judge: Annotated[
        str, typer.Option(help="Second judge: same (the chat model), openai, or none.")
    ] = "same",
    gate: Annotated[bool, typer.Option("--gate", help="Fail when a metric falls below "
                                       "eval/baseline.json by more than its tolerance.")] = False,
    tolerance: Annotated[
        float | None, typer.Option(min=0, help="Override every metric's tolerance.")
    ] = None,
    baseline: Annotated[Path | None, typer.Option(help="Baseline file.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: eval/reports/"
                                             "<timestamp>).")] = None,
) -> None:
    """Every suite (or --suite ones) in one run, with a report and an optional gate."""
    if ctx.invoked_subcommand is not None:
        return
    from assistant.evals import harness

    suites = suite or list(harness.SUITES)
    unknown = set(suites) - set(harness.SUITES)
    if unknown:
        raise typer.BadParameter(f"unknown suite(s): {', '.join(sorted(unknown))}")
    run = harness.run_from_settings(
        load_settings(**EVAL_STORES | ({"llm_model": model} if model else {})),
        suites, url=url, judge=judge, quick=quick, limit=limit,
    )
    if gate:
        run.gate = harness.gate(run, harness.load_baseline(baseline or harness.BASELINE),
                                tolerance)
    folder = harness.write(run, out)
    typer.echo("\n".join(harness.summary_lines(run)))
    typer.echo(f"report: {folder / 'report.html'}")
    if run.gate is not None and not run.gate["passed"]:
        raise typer.Exit(1)


@eval_app.command("add-case")
def eval_add_case(
    turn: Annotated[int, typer.Option(help="The stored turn's id (turns table).")],
    expected_status: Annotated[
        str | None, typer.Option(help="What the answer should have been (default: its status).")
    ] = None,
    section: Annotated[
        list[str] | None, typer.Option(help="An expected section (repeatable).")
    ] = None,
    fact: Annotated[
        list[str] | None,
        typer.Option(help="A required fact; alternatives separated by | (repeatable)."),
    ] = None,
    cases: Annotated[Path | None, typer.Option(
        help="Append to this cases file instead of the database's eval_cases.")] = None,
) -> None:
    """Turn a stored conversation turn into an answer-eval case (a regression test),
    personal details masked; kept in the database unless --cases names a file."""
    from assistant.cases import add_case

    services = _services()
    case = add_case(
        services.store, turn, cases, expected_status=expected_status,
        sections=section or [], facts=[f.split("|") for f in fact or []],
    )
    typer.echo(f"added case {case.id} to {cases or 'the database (eval_cases)'}")


@eval_app.command("export-cases")
def eval_export_cases(
    out: Annotated[Path, typer.Option(help="The file to write (replaced), JSON lines.")],
) -> None:
    """Write the eval cases staff added in the console (kept in the database, personal
    details masked) to a file, in the format of eval/answers.jsonl."""
    from assistant.cases import export_cases

    count = export_cases(_services().store, out)
    typer.echo(f"wrote {count} case(s) to {out}")


@eval_app.command("safety")
def eval_safety(
    cases: Annotated[list[Path] | None, typer.Option(
        help="Cases file (JSON lines); repeat for several. Default: the dev and held-out sets."
    )] = None,
    model_off: Annotated[bool, typer.Option(
        "--model-off", help="Fail every model check: what patterns and the screen alone route."
    )] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the scores (JSON) here.")] = None,
) -> None:
    """Urgent and crisis recall of triage and its false alarms, per category and language."""
    from assistant.evals import safety

    services = _services()
    result = safety.evaluate(services.triage, cases or None, model_off=model_off)
    if out is not None:
        safety.write(result, out)
    typer.echo(safety.to_json(result) if as_json else safety.render(result))


@eval_app.command("attacks")
def eval_attacks(
    model: Annotated[str | None, typer.Option(help="Packaged model for the local backend.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every outcome as JSON.")] = False,
) -> None:
    """Red-team prompts against the whole assistant; how many succeed (goal: none)."""
    from assistant.evals import attacks

    assistant = _eval_assistant(model)
    assistant.warm()
    result = attacks.evaluate(assistant, cases or attacks.DEFAULT_CASES, limit, progress=True)
    typer.echo(attacks.to_json(result) if as_json else attacks.render(result))


@eval_app.command("verifier")
def eval_verifier(
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Precision and recall of the claim checker on labelled sentence/passage pairs."""
    from assistant.evals import verifier

    services = _services()
    result = verifier.evaluate(services.settings, services.checker, cases or verifier.DEFAULT_CASES)
    typer.echo(verifier.to_json(result) if as_json else verifier.render(result))


@eval_app.command("languages")
def eval_languages(
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write every case's record here (JSON).")] = None,
) -> None:
    """Questions in other languages: key facts (on the English guide sentences cited),
    refusals, the translations' check and latency, per language."""
    from assistant.evals import languages

    _answer_cases(languages, None, limit, cases, out)


@eval_app.command("answers")
def eval_answers(
    model: Annotated[str | None, typer.Option(help="Packaged model for the local backend.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write every case's record here (JSON).")] = None,
) -> None:
    """Key facts, citations, refusals, unsupported sentences and latency of whole answers."""
    from assistant.evals import answers

    _answer_cases(answers, model, limit, cases, out)


def _answer_cases(suite, model: str | None, limit: int | None, cases: Path | None,
                  out: Path | None) -> None:
    """``eval answers`` and ``eval languages``: the assistant warmed, the first ``limit``
    cases of ``suite`` (its module) evaluated, the summary printed, the records written."""
    assistant = _eval_assistant(model)
    typer.echo(f"Warming the model ({assistant.model_name})…", err=True)
    assistant.warm()
    selected = suite.load_cases(cases or suite.DEFAULT_CASES)[:limit]
    summary, results = suite.evaluate(assistant, selected)
    typer.echo(suite.render(summary, results))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(suite.to_json(summary, results), encoding="utf-8")


@eval_app.command("followups")
def eval_followups(
    model: Annotated[str | None, typer.Option(help="Packaged model for the local backend.")] = None,
) -> None:
    """How well follow-ups ("how deep can they be?") become standalone questions."""
    from assistant.evals import followups

    assistant = _eval_assistant(model)
    assistant.warm()
    typer.echo(followups.render(followups.evaluate(assistant, followups.load_cases())))
