"""The ``scarguide`` command: one sub-command per verb."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from assistant.config import load_settings
from assistant.errors import ScarguideError

app = typer.Typer(
    help="scarguide answers patients' questions about acne scars from one trusted guide.\n\n"
    "Settings come from SCARGUIDE_* environment variables or a .env file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(
    help="Measure the assistant on the labelled cases in eval/. With no subcommand: every "
    "suite, a results.json and a report.html under eval/reports/<timestamp>/."
)
app.add_typer(eval_app, name="eval")


# evaluations keep their conversations in memory, out of the clinic's database
EVAL_STORES = {"session_store": "memory", "database_url": "sqlite://"}


def _services():
    from assistant.app import Services

    return Services(load_settings())


def _print_hits(result) -> None:
    covered = "" if result.covered else "  (weak match: the guide may not cover this)"
    typer.echo(f"top similarity {result.top_similarity:.3f}{covered}")
    for rank, hit in enumerate(result.hits, start=1):
        dense = "-" if hit.dense_score is None else f"{hit.dense_score:.3f}"
        lexical = "-" if hit.lexical_score is None else f"{hit.lexical_score:.2f}"
        typer.echo(
            f"{rank}. {hit.section}  [fused {hit.fused_score:.3f} · dense {dense} · bm25 {lexical}]"
        )
        typer.echo(f"   {hit.chunk_id}")
        snippet = hit.text.replace("\n", " ")
        typer.echo(f"   {snippet[:160]}{'…' if len(snippet) > 160 else ''}")


@app.command()
def ingest(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build or update the index: embeds only new or changed chunks, deletes removed ones."""
    services = _services()
    typer.echo(f"Corpus: {services.settings.corpus_dir}  →  index: {_where(services)}")
    report = services.ingest(progress=not quiet)
    typer.echo(report.summary())


def _where(services) -> str:
    s = services.settings
    place = {"embedded": str(s.chroma_path), "http": s.chroma_url, "memory": "memory"}[
        s.chroma_mode
    ]
    return f"{place} (collection {s.chroma_collection!r})"


@app.command()
def search(
    query: Annotated[
        str | None, typer.Argument(help="The question. Leave out for an interactive loop.")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, max=50, help="Number of hits.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
) -> None:
    """Show the guide's sections ranked for a question, with their scores."""
    services = _services()
    services.ensure_index(progress=True)
    retriever = services.retriever
    if query is not None:
        result = retriever.search(query, k)
        if as_json:
            typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            _print_hits(result)
        return
    typer.echo("Ask about acne scars (empty line or Ctrl-D to quit).")
    while True:
        try:
            line = input("› ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo()
            return
        if not line:
            return
        _print_hits(retriever.search(line, k))


def _print_record(record) -> None:
    if record.status == "not_in_guide":
        typer.echo("[not covered in the guide]")
    elif record.status == "urgent":
        typer.echo("[URGENT]")
    typer.echo(record.answer)
    if record.citations:
        typer.echo("Sources:")
        for c in record.citations:
            typer.echo(f"  [{c.n}] {c.section}: “{c.quote}”")
    if record.handoff:
        typer.echo(f"Book a consultation: {record.handoff.booking_url}")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The patient's question.")],
    session: Annotated[str | None, typer.Option(help="Continue this conversation.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the answer record as JSON.")
    ] = False,
) -> None:
    """Answer one question from the guide, with citations (the record as JSON with --json)."""
    record = _services().assistant.ask(question, session)
    if as_json:
        typer.echo(record.model_dump_json(indent=2))
    else:
        _print_record(record)
        typer.echo(f"(session {record.session_id})")


@app.command()
def chat(
    session: Annotated[str | None, typer.Option(help="Continue this conversation.")] = None,
) -> None:
    """A conversation in the terminal: answers stream sentence by sentence, sources below."""
    assistant = _services().assistant
    typer.echo("Preparing the assistant…")
    assistant.warm()
    typer.echo("Ask about acne scars. Type 'bye' to finish (or Ctrl-D).")
    while True:
        try:
            line = input("you › ").strip()
        except (EOFError, KeyboardInterrupt):
            line = ""
        if not line:
            if session:
                _print_record(assistant.end(session))
            return
        record = None
        typer.echo("guide › ", nl=False)
        for event in assistant.stream(line, session):
            if event.kind == "notice":
                typer.echo(f"URGENT: {event.text}\nguide › ", nl=False)
            elif event.kind == "sentence":
                typer.echo(event.text + " ", nl=False)
            elif event.translation is not None:  # after the sentences: each on its line
                typer.echo(f"\n  [{event.translation.n}] {event.translation.shown}", nl=False)
            else:
                record = event.record
        typer.echo()
        assert record is not None
        session = record.session_id
        if not record.citations:
            _print_record(record)
        else:
            for c in record.citations:
                typer.echo(f"  [{c.n}] {c.section}: “{c.quote}”")
        if record.status == "handoff":
            return


@app.command()
def translations(
    languages: Annotated[str | None, typer.Option(
        help="Comma-separated languages (default: every offered one but English).")] = None,
) -> None:
    """Translate and check every sentence the guide can show, now (kept under
    data_dir/cache), so patients writing in those languages never wait for a translation;
    prints how many passed their check per language."""
    assistant = _services().assistant
    wanted = [x.strip() for x in (languages or "").split(",") if x.strip()] or [
        x for x in assistant.settings.languages if x != "en"]
    for language in wanted:
        started = time.perf_counter()
        done = assistant.translate_guide(language)
        passed = sum(t.passed for t in done)
        typer.echo(f"{language}: {passed} of {len(done)} sentences passed the check "
                   f"({100 * passed / max(1, len(done)):.1f}%), "
                   f"{time.perf_counter() - started:.0f} s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 7860,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (share the Chroma server, the "
                          "model server and the database set in the settings).")
    ] = 1,
) -> None:
    """The web app: patients' chat at /, the REST API at /api, its docs at /docs."""
    from assistant.web.server import serve as run_server

    services = _services()
    services.ensure_index(progress=True)
    run_server(services, host=host, port=port, workers=workers)


staff_app = typer.Typer(help="Staff accounts for the console at /staff.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


@staff_app.command("add")
def staff_add(
    username: Annotated[str, typer.Argument(help="The new account's name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a staff account (the password is asked twice, or read from stdin)."""
    from assistant.staff import StaffDesk

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    StaffDesk(_services().store).add_user(username, password)
    typer.echo(f"Staff account {username.strip().lower()} created; log in at /staff.")


@staff_app.command("list")
def staff_list() -> None:
    """The staff accounts."""
    from assistant.staff import StaffDesk

    for name in StaffDesk(_services().store).users():
        typer.echo(name)


@staff_app.command("remove")
def staff_remove(username: Annotated[str, typer.Argument(help="The account to remove.")]) -> None:
    """Delete a staff account and end its sessions."""
    from assistant.staff import StaffDesk

    if not StaffDesk(_services().store).remove_user(username):
        raise typer.BadParameter(f"no staff account {username!r}")
    typer.echo(f"Removed {username}.")


@app.command()
def loadtest(
    url: Annotated[str, typer.Option(help="The server (loopback only).")] = "http://127.0.0.1:7860",
    sessions: Annotated[str, typer.Option(help="Concurrent sessions per level.")] = "1,4,16,50",
    questions: Annotated[int, typer.Option(min=1, max=20, help="Questions per session.")] = 2,
    pid: Annotated[int | None, typer.Option(help="Server process id, for its peak RSS.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the numbers as JSON here.")] = None,
    database: Annotated[str | None, typer.Option(
        help="The server's database URL: check afterwards that every answered turn is "
        "stored once.")] = None,
    stack: Annotated[bool, typer.Option(
        help="Start the scaled deployment on loopback first (assistant.stack: PostgreSQL, "
        "Chroma's server, llama.cpp's server for answers and one for triage, --workers API "
        "workers), test it, stop it.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=16, help="API workers with --stack.")] = 2,
) -> None:
    """N concurrent patients against a running server: latency, busy replies, errors."""
    import tempfile

    from assistant import loadtest as lt

    levels = [int(n) for n in sessions.split(",") if n.strip()]
    procs = None
    if stack:
        from assistant import stack as st

        procs = st.Processes(Path(tempfile.mkdtemp(prefix="scarguide-stack-")))
        procs.cleanup.append(procs.root)
        typer.echo(f"Starting the scaled deployment ({workers} workers) …")
        started = st.scaled(procs, _services().settings.data_dir, workers, rate_limit="")
        url, pid, database = started["url"], int(started["api_pid"]), started["database"]
    try:
        results = lt.run(url, levels, questions, pid=pid)
        if database:
            lt.check_stored(database, results)
    finally:
        if procs is not None:
            procs.stop()
    typer.echo(lt.render(results))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(lt.to_json(results), encoding="utf-8")


@app.command()
def purge(
    days: Annotated[
        int | None, typer.Option(min=1, help="Older than this (default: retention_days).")
    ] = None,
) -> None:
    """Delete conversations older than the retention period (bookings are kept)."""
    services = _services()
    days = days or services.settings.retention_days
    counts = services.store.purge(days)
    typer.echo(
        f"Deleted {counts['sessions']} conversation(s) older than {days} days: "
        f"{counts['turns']} answer(s), {counts['feedback']} feedback entr(ies)."
    )


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
    from assistant.app import Services
    from assistant.evals import attacks

    overrides = EVAL_STORES | ({"llm_model": model} if model else {})
    services = Services(load_settings(**overrides))
    assistant = services.assistant
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
    from assistant.app import Services
    from assistant.evals import languages

    assistant = Services(load_settings(**EVAL_STORES)).assistant
    typer.echo(f"Warming the model ({assistant.model_name})…", err=True)
    assistant.warm()
    selected = languages.load_cases(cases or languages.DEFAULT_CASES)[:limit]
    summary, results = languages.evaluate(assistant, selected)
    typer.echo(languages.render(summary, results))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(languages.to_json(summary, results), encoding="utf-8")


@eval_app.command("answers")
def eval_answers(
    model: Annotated[str | None, typer.Option(help="Packaged model for the local backend.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write every case's record here (JSON).")] = None,
) -> None:
    """Key facts, citations, refusals, unsupported sentences and latency of whole answers."""
    from assistant.app import Services
    from assistant.evals import answers

    overrides = EVAL_STORES | ({"llm_model": model} if model else {})
    services = Services(load_settings(**overrides))
    assistant = services.assistant
    typer.echo(f"Warming the model ({assistant.model_name})…", err=True)
    assistant.warm()
    selected = answers.load_cases(cases or answers.DEFAULT_CASES)[:limit]
    summary, results = answers.evaluate(assistant, selected)
    typer.echo(answers.render(summary, results))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(answers.to_json(summary, results), encoding="utf-8")


@eval_app.command("followups")
def eval_followups(
    model: Annotated[str | None, typer.Option(help="Packaged model for the local backend.")] = None,
) -> None:
    """How well follow-ups ("how deep can they be?") become standalone questions."""
    from assistant.app import Services
    from assistant.evals import followups

    overrides = EVAL_STORES | ({"llm_model": model} if model else {})
    assistant = Services(load_settings(**overrides)).assistant
    assistant.warm()
    typer.echo(followups.render(followups.evaluate(assistant, followups.load_cases())))


@app.command()
def bench(
    queries: Annotated[int, typer.Option(min=10, help="Warm queries to time.")] = 240,
    answers: Annotated[int, typer.Option(min=0, help="Warm answers to time (0: skip).")] = 20,
    naive: Annotated[
        int, typer.Option(min=0, help="Answers of the naive recipe to time, same model (0: skip).")
    ] = 8,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Time retrieval and answers (first verified sentence, full answer) against the naive
    recipe on the same model; report peak memory."""
    from assistant import bench as bench_module

    bench_module.run(load_settings(), queries=queries, answers=answers, out=out, naive=naive)


def main() -> None:
    try:
        app()
    except ScarguideError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
