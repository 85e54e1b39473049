"""The ``scarguide`` command: one sub-command per verb (``eval`` in assistant/cli_eval.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli_eval import eval_app
from assistant.config import load_settings
from assistant.errors import ScarguideError

app = typer.Typer(
    help="scarguide answers patients' questions about acne scars from one trusted guide.\n\n"
    "Settings come from SCARGUIDE_* environment variables or a .env file.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(eval_app, name="eval")


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
    from assistant.door import Door

    record = Door(_services().assistant).ask(question, session)
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
    from assistant.door import Door

    assistant = _services().assistant
    door = Door(assistant)
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
                _print_record(door.end(session))
            return
        record = None
        typer.echo("guide › ", nl=False)
        for event in door.stream(line, session):
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
