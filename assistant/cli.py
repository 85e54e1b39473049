"""The ``scarguide`` command: one sub-command per verb."""

from __future__ import annotations

import json
import sys
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
    help="Measure the assistant on the labelled cases in eval/.", no_args_is_help=True
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


@eval_app.command("retrieval")
def eval_retrieval(
    cases: Annotated[Path | None, typer.Option(help="Cases file (JSON lines).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """hit@1, hit@3 and MRR of the retriever, its parts and the naive recipe, in one run."""
    from assistant.evals import retrieval

    results = retrieval.evaluate(_services(), cases or retrieval.DEFAULT_CASES)
    typer.echo(retrieval.to_json(results) if as_json else retrieval.render(results))


@app.command()
def bench(
    queries: Annotated[int, typer.Option(min=10, help="Warm queries to time.")] = 240,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
) -> None:
    """Time ingest, query embedding and retrieval; report peak memory."""
    from assistant import bench as bench_module

    bench_module.run(load_settings(), queries=queries, out=out)


def main() -> None:
    try:
        app()
    except ScarguideError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
