from assistant.app import Services
from assistant.retrieve import lexical_tokens, word_tokens
from tests.conftest import fake_settings


def test_lexical_tokens_are_typo_tolerant():
    assert word_tokens("The Ice pick scars") == ["ice", "pick", "scar"]
    shared = set(lexical_tokens("icepick scarz")) & set(lexical_tokens("Ice pick scars"))
    assert {"#^ic", "#ice", "#pic", "#ick", "#^sc", "#sca", "#car"} <= shared


def test_hits_carry_every_score_and_are_ranked(tmp_path):
    services = Services(fake_settings(tmp_path))
    services.ingest()
    result = services.retriever.search("subcision needle", k=4)
    assert len(result.hits) == 4
    top = result.hits[0]
    assert top.section == "How to treat acne scars › Subcision"
    assert top.dense_rank is not None and top.lexical_rank is not None
    assert [h.fused_score for h in result.hits] == sorted(
        (h.fused_score for h in result.hits), reverse=True
    )
    assert set(result.timings_ms) == {"dense", "lexical", "total"}


def test_rrf_fusion_is_selectable(tmp_path):
    services = Services(fake_settings(tmp_path, fusion="rrf", rrf_k=10))
    services.ingest()
    hit = services.retriever.search("dermal fillers hyaluronic acid").hits[0]
    assert hit.section == "How to treat acne scars › Dermal fillers"
    assert hit.fused_score <= 2 / 11


def test_langchain_retriever_returns_documents(tmp_path):
    services = Services(fake_settings(tmp_path))
    services.ingest()
    docs = services.langchain_retriever(k=2).invoke("chemical peels")
    assert len(docs) == 2
    assert docs[0].metadata["section"] == "How to treat acne scars › Chemical peels"
    assert docs[0].id == docs[0].metadata["chunk_id"]
    assert "covered" in docs[0].metadata
