import pytest

from assistant.config import load_settings
from assistant.embeddings import build_embeddings, resolve_model_path
from assistant.errors import ConfigError


def test_defaults_are_the_real_backends():
    s = load_settings()
    assert s.embedding_backend == "sentence-transformers"
    assert s.chroma_mode == "embedded"
    assert s.torch_threads == 1


def test_environment_sets_values(monkeypatch):
    monkeypatch.setenv("SCARGUIDE_K", "7")
    monkeypatch.setenv("SCARGUIDE_CHROMA_MODE", "http")
    s = load_settings()
    assert s.k == 7 and s.chroma_mode == "http"


def test_test_profile_switches_to_fakes_but_explicit_values_win(monkeypatch):
    monkeypatch.setenv("SCARGUIDE_PROFILE", "test")
    assert load_settings().embedding_backend == "hash"
    assert load_settings().chroma_mode == "memory"
    monkeypatch.setenv("SCARGUIDE_CHROMA_MODE", "embedded")
    assert load_settings().chroma_mode == "embedded"


def test_unreadable_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("SCARGUIDE_K", "five")
    with pytest.raises(ConfigError, match=r"SCARGUIDE_K='five'.*integer"):
        load_settings()


def test_out_of_range_and_unknown_choice_are_clear(monkeypatch):
    monkeypatch.setenv("SCARGUIDE_CHROMA_MODE", "cloud")
    with pytest.raises(ConfigError, match="SCARGUIDE_CHROMA_MODE='cloud'"):
        load_settings()
    with pytest.raises(ConfigError, match="SCARGUIDE_TORCH_THREADS"):
        load_settings(chroma_mode="memory", torch_threads=0)


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("SCARGUIDE_K=9\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_settings().k == 9


def test_embedding_model_must_be_packaged_or_local():
    assert resolve_model_path("all-MiniLM-L6-v2").endswith("model")
    with pytest.raises(ConfigError, match="never downloaded"):
        build_embeddings(load_settings(embedding_model="sentence-transformers/some-hub-model"))


def test_choose_lists_the_known_names():
    from assistant.config import choose

    assert choose({"a": 1, "b": 2}, "b", "thing") == 2
    with pytest.raises(ConfigError, match="Unknown thing 'c'; known: a, b"):
        choose({"a": 1, "b": 2}, "c", "thing")
