import hashlib

import pytest
from langchain_core.messages import HumanMessage

from assistant import models
from assistant.config import load_settings
from assistant.errors import ConfigError, ModelError
from assistant.llm import build_chat_model
from assistant.models import PackagedModel, assemble, model_identity, model_path


def test_fake_backend_replies_in_order_and_streams():
    chat = build_chat_model(load_settings(llm_backend="fake", fake_replies=["One two.", "Three."]))
    assert chat.invoke([HumanMessage("hi")]).content == "One two."
    assert "".join(c.content for c in chat.stream([HumanMessage("again")])) == "Three."


def test_test_profile_uses_the_fake_backend():
    assert load_settings(profile="test").llm_backend == "fake"


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="known: qwen2.5-coder-1.5b"):
        model_path("gpt-9", tmp_path)


def test_openai_backend_is_built_from_settings():
    chat = build_chat_model(
        load_settings(
            llm_backend="openai", openai_base_url="http://127.0.0.1:9/v1", openai_model="m"
        )
    )
    assert chat.model_name == "m" and "127.0.0.1:9" in str(chat.openai_api_base)


def test_bad_backend_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="SCARGUIDE_LLM_BACKEND"):
        load_settings(llm_backend="gpt")


def _parts(tmp_path, monkeypatch, chunks):
    files = []
    for i, data in enumerate(chunks):
        f = tmp_path / f"p{i}.bin"
        f.write_bytes(data)
        files.append(f)
    monkeypatch.setattr(models, "part_files", lambda model: files)


def test_parts_are_joined_and_verified(tmp_path, monkeypatch):
    _parts(tmp_path, monkeypatch, [b"abc", b"def"])
    good = PackagedModel(
        "m", "test", parts=(("x", "y"),), size=6, sha256=hashlib.sha256(b"abcdef").hexdigest()
    )
    target = assemble(good, tmp_path / "models" / "m.gguf")
    assert target.read_bytes() == b"abcdef"
    assert target.with_name("m.gguf.sha256").read_text().strip() == good.sha256


def test_the_same_weights_in_another_data_folder_share_one_saved_prefix(tmp_path, monkeypatch):
    _parts(tmp_path, monkeypatch, [b"abc", b"def"])
    good = PackagedModel(
        "m", "test", parts=(("x", "y"),), size=6, sha256=hashlib.sha256(b"abcdef").hexdigest()
    )
    first = assemble(good, tmp_path / "a" / "models" / "m.gguf")
    copied = assemble(good, tmp_path / "b" / "models" / "m.gguf")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "models").symlink_to(tmp_path / "a" / "models")
    linked = tmp_path / "c" / "models" / "m.gguf"
    assert model_identity(first) == model_identity(copied) == model_identity(linked) == good.sha256
    other = tmp_path / "other.gguf"  # not assembled here: known by where it really is
    other.write_bytes(b"x")
    (tmp_path / "link.gguf").symlink_to(other)
    assert model_identity(tmp_path / "link.gguf") == model_identity(other) == str(other.resolve())


def test_a_corrupt_part_fails_clearly_and_leaves_nothing(tmp_path, monkeypatch):
    _parts(tmp_path, monkeypatch, [b"abc", b"deX"])
    good = PackagedModel(
        "m", "test", parts=(("x", "y"),), size=6, sha256=hashlib.sha256(b"abcdef").hexdigest()
    )
    with pytest.raises(ModelError, match="expected 6 bytes"):
        assemble(good, tmp_path / "models" / "m.gguf")
    assert list((tmp_path / "models").iterdir()) == []


@pytest.mark.real
def test_real_default_model_is_assembled_verified_and_answers(tmp_path_factory):
    settings = load_settings(data_dir=tmp_path_factory.mktemp("llm"), llm_max_tokens=12)
    path = model_path(settings.llm_model, settings.data_dir, verify=True)
    assert path.stat().st_size == 1_117_320_768
    chat = build_chat_model(settings)
    reply = chat.invoke([HumanMessage("Reply with just the word: ready")]).content
    assert "ready" in reply.lower()
    streamed = "".join(c.content for c in chat.stream([HumanMessage("Say: ok")]))
    assert streamed.strip()
