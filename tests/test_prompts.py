import pytest

from assistant.errors import PromptError
from assistant.prompts import load_prompt, load_texts


def test_shipped_prompts_load_and_render_strictly():
    choose = load_prompt("choose")
    assert choose.variables == {"earlier", "question", "candidates"}
    text = choose.render(earlier="none", question="why", candidates="1, 2")
    assert "<question>why</question>" in text
    with pytest.raises(PromptError, match="missing"):
        choose.render(question="why")
    with pytest.raises(PromptError, match="unexpected"):
        choose.render(earlier="", question="why", candidates="", extra=1)
    assert load_prompt("choose_system").variables == {"passages"}


def test_answer_templates_load_strictly_and_match_their_renderings(tmp_path):
    texts = load_texts("answer_text", needs=("partial", "none", "offer", "closing"))
    shown = texts.render("partial", missing="cost", topic="Laser therapy")
    assert any(p.match(shown) for p in texts.patterns())
    with pytest.raises(PromptError, match="no template"):
        texts.render("invented")
    (tmp_path / "answer_text.yaml").write_text(
        "name: answer_text\nversion: '1'\ntemplates:\n  a:\n    variables: []\n"
        "    template: 'uses {b}'\n", encoding="utf-8")
    with pytest.raises(PromptError, match="placeholders"):
        load_texts("answer_text", tmp_path)
    with pytest.raises(PromptError, match="missing templates"):
        (tmp_path / "answer_text.yaml").write_text(
            "name: answer_text\nversion: '1'\ntemplates:\n  a:\n    variables: []\n"
            "    template: 'fine'\n", encoding="utf-8")
        load_texts("answer_text", tmp_path, needs=("offer",))


def test_a_prompt_whose_variables_do_not_match_its_template_is_rejected(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nversion: '1'\nvariables: [a]\ntemplate: 'uses {b}'\n", encoding="utf-8"
    )
    with pytest.raises(PromptError, match="differ"):
        load_prompt("bad", tmp_path)
    with pytest.raises(PromptError, match="does not exist"):
        load_prompt("missing", tmp_path)
