import json

import pytest

from assistant.errors import ConfigError
from assistant.evals.retrieval import DEFAULT_CASES, first_relevant_rank, load_cases, score


def test_score_formulas_on_known_ranks():
    s = score("x", {"a": 1, "b": 3, "c": None, "d": 2})
    assert s.hit_at_1 == 0.25
    assert s.hit_at_3 == 0.75
    assert s.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert s.misses_at_1 == ("b", "c", "d")


def test_first_relevant_rank():
    assert first_relevant_rank([False, True, True]) == 2
    assert first_relevant_rank([False]) is None


def test_shipped_cases_are_valid_and_cover_patient_wording():
    cases = load_cases(DEFAULT_CASES)
    assert len(cases) >= 50
    kinds = {c.kind for c in cases}
    assert {"lay", "typo", "comparison"} <= kinds
    questions = {c.question for c in cases}
    assert {
        "dark spots after pimples",
        "raised scar that keeps growing",
        "sanding the skin",
    } <= questions


def test_a_label_naming_an_unknown_section_is_rejected(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "q", "sections": ["Nope"]}) + "\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_cases(path, {"Subcision"})
    path.write_text('{"id": "x"}\n')
    with pytest.raises(ConfigError, match="not a valid case"):
        load_cases(path)


def test_ndcg_at_5_known_values():
    from math import log2

    from assistant.evals.retrieval import ndcg_at_k

    assert ndcg_at_k([{"a"}], 1) == 1.0
    assert ndcg_at_k([set(), {"a"}], 1) == pytest.approx(1 / log2(3))
    assert ndcg_at_k([{"a"}, set(), {"b"}], 2) == pytest.approx(1.5 / (1 + 1 / log2(3)))
    assert ndcg_at_k([{"a"}, {"a"}], 2) == pytest.approx(1 / (1 + 1 / log2(3)))  # repeat: no gain
    assert ndcg_at_k([set()] * 5 + [{"a"}], 1) == 0.0  # beyond the cut-off


def test_held_out_sets_name_only_sections_the_corpus_has():
    from assistant.config import PACKAGE_ROOT
    from assistant.corpus import build_chunks
    from assistant.evals import answers

    sections = {c.section for c in build_chunks(PACKAGE_ROOT / "corpus", 200)}
    retrieval = load_cases(PACKAGE_ROOT / "eval" / "retrieval_holdout.jsonl", sections)
    assert len(retrieval) == 40
    assert not {c.question for c in retrieval} & {c.question for c in load_cases(DEFAULT_CASES)}
    held = answers.load_cases(PACKAGE_ROOT / "eval" / "answers_holdout.jsonl")
    assert len(held) == 30 and sum(c.expected_status == "not_in_guide" for c in held) == 14
    assert {s for c in held for s in c.expected_sections} <= sections


@pytest.mark.parametrize(
    "name", ["answers.jsonl", "answers_dev2.jsonl", "answers_holdout.jsonl",
             "answers_holdout2.jsonl", "languages_dev.jsonl", "languages.jsonl"],
)
def test_answer_sets_name_real_sections_and_share_no_question(name):
    from assistant.config import PACKAGE_ROOT
    from assistant.corpus import build_chunks
    from assistant.evals import answers

    sections = {c.section for c in build_chunks(PACKAGE_ROOT / "corpus", 200)}
    cases = answers.load_cases(PACKAGE_ROOT / "eval" / name)
    assert cases and {s for c in cases for s in c.expected_sections} <= sections
    assert all(c.expected_sections for c in cases if c.expected_status == "answered")
    # a tuning set and a held-out set never share a scored question
    others = [n for n in ("answers.jsonl", "answers_dev2.jsonl", "answers_holdout.jsonl",
                          "answers_holdout2.jsonl", "languages_dev.jsonl", "languages.jsonl")
              if n != name]
    mine = {" ".join(c.conversation[-1].lower().split()) for c in cases}
    for other in others:
        theirs = answers.load_cases(PACKAGE_ROOT / "eval" / other)
        assert not mine & {" ".join(c.conversation[-1].lower().split()) for c in theirs}, other
