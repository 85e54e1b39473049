"""The real packaged MiniLM and a real on-disk Chroma index."""

import pytest

from assistant.app import Services
from assistant.config import load_settings
from assistant.evals.retrieval import evaluate

pytestmark = pytest.mark.real


def section(result, i=0):
    return result.hits[i].section


def test_acne_marks_vs_scars_ranks_that_section_first(real_services):
    result = real_services.retriever.search("acne marks vs scars")
    assert section(result) == "Acne marks vs. acne scars"
    assert result.covered


def test_misspelled_ice_pick_finds_the_ice_pick_passage(real_services):
    assert section(real_services.retriever.search("icepick scarz")).endswith("› Ice pick scars")


def test_lay_wording_finds_the_right_treatment(real_services):
    assert section(real_services.retriever.search("sanding the skin")).endswith("› Dermabrasion")


def test_off_topic_question_is_a_weak_match(real_services):
    off = real_services.retriever.search("what is the capital of france")
    on = real_services.retriever.search("what are boxcar scars")
    assert not off.covered and on.covered
    assert off.top_similarity < 0.2 < 0.5 < on.top_similarity


def test_reopened_index_embeds_nothing(real_services, real_embeddings):
    reopened = Services(real_services.settings)
    reopened.__dict__["embeddings"] = real_embeddings
    report = reopened.ingest()
    assert report.embedded == 0 and report.unchanged == report.total == 22


def test_editing_one_section_re_embeds_only_its_chunks(tmp_path, corpus_copy, real_embeddings):
    services = Services(load_settings(data_dir=tmp_path / "d", corpus_dir=corpus_copy))
    services.__dict__["embeddings"] = real_embeddings
    assert services.ingest().added == 22
    assert services.ingest().embedded == 0
    guide = corpus_copy / "acne-scars-guide.md"
    text = guide.read_text(encoding="utf-8")
    guide.write_text(text.replace("plump your skin", "plump up your skin"), encoding="utf-8")
    report = services.ingest()
    assert (report.added, report.updated, report.deleted) == (0, 1, 0)
    hit = services.retriever.search("fillers plump up skin").hits[0]
    assert hit.section.endswith("Dermal fillers") and "plump up" in hit.text


def test_retrieval_eval_meets_its_bar_and_beats_the_naive_recipe(real_services):
    results = {
        r.system.split(" (")[0] if "naive" in r.system else r.system: r
        for r in evaluate(real_services)
    }
    ours = next(r for name, r in results.items() if "this assistant" in name)
    naive = results["naive"]
    assert ours.n >= 50
    assert ours.hit_at_1 >= 0.90
    assert ours.hit_at_1 > naive.hit_at_1


def test_claim_checker_on_its_labelled_set(real_services):
    from assistant.evals.verifier import evaluate as evaluate_verifier

    scores = evaluate_verifier(real_services.settings, real_services.checker)
    assert scores.n >= 60
    assert scores.precision >= 0.9 and scores.recall >= 0.85
    assert scores.per_kind["invented-number"] == 1.0
    assert scores.per_kind["wrong-subject"] == 1.0
