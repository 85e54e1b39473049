import json

import pytest
from typer.testing import CliRunner

from assistant import cli


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("SCARGUIDE_PROFILE", "test")
    monkeypatch.setenv("SCARGUIDE_CHROMA_MODE", "embedded")
    monkeypatch.setenv("SCARGUIDE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli.app, list(args))

    return invoke


def test_help_lists_every_command(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in ("ingest", "search", "eval", "bench"):
        assert command in result.output


def test_ingest_twice_then_search_json(run):
    first = run("ingest", "--quiet")
    assert first.exit_code == 0 and "Embedded 22 chunk(s) (22 new" in first.output
    second = run("ingest", "--quiet")
    assert "Embedded 0 chunk(s)" in second.output and "22 unchanged" in second.output
    result = run("search", "ice pick scars", "--k", "2", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert len(data["hits"]) == 2
    assert data["hits"][0]["section"].endswith("Ice pick scars")
    assert {"chunk_id", "section", "text", "dense_score", "lexical_score", "fused_score"} <= set(
        data["hits"][0]
    )


def test_search_builds_a_missing_index_and_prints_ranked_sections(run):
    result = run("search", "chemical peels")
    assert result.exit_code == 0
    assert "1. How to treat acne scars › Chemical peels" in result.output


def test_errors_are_clear_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SCARGUIDE_PROFILE", "test")
    monkeypatch.setenv("SCARGUIDE_CORPUS_DIR", str(tmp_path / "missing"))
    monkeypatch.setattr("sys.argv", ["scarguide", "ingest", "--quiet"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: Corpus folder" in err and "does not exist" in err and "Traceback" not in err


def test_bad_setting_exits_2_with_the_variable_name(monkeypatch, capsys):
    monkeypatch.setenv("SCARGUIDE_K", "lots")
    monkeypatch.setattr("sys.argv", ["scarguide", "search", "x"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert "SCARGUIDE_K='lots'" in capsys.readouterr().err
