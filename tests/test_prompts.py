import pytest

from assistant.prompts import PromptError, load_prompt


def test_shipped_prompts_load_and_render_strictly():
    answer = load_prompt("answer")
    assert answer.variables == {"question", "hints"}
    assert "<question>why</question>" in answer.render(question="why", hints="[1]")
    with pytest.raises(PromptError, match="missing"):
        answer.render(question="why")
    with pytest.raises(PromptError, match="unexpected"):
        answer.render(question="why", hints="", extra=1)
    for name in ("system", "condense"):
        assert load_prompt(name).version


def test_a_prompt_whose_variables_do_not_match_its_template_is_rejected(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nversion: '1'\nvariables: [a]\ntemplate: 'uses {b}'\n", encoding="utf-8"
    )
    with pytest.raises(PromptError, match="differ"):
        load_prompt("bad", tmp_path)
    with pytest.raises(PromptError, match="does not exist"):
        load_prompt("missing", tmp_path)
