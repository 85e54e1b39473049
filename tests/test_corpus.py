import hashlib
import re
from pathlib import Path

import pytest
import yaml

from assistant.config import PACKAGE_ROOT
from assistant.corpus import build_chunks, chunk_guide, load_corpus, load_guide, split_sentences
from assistant.errors import CorpusError

ORIGINAL = PACKAGE_ROOT / "tests" / "data" / "acne-scars-guide.original.txt"
SHARED = PACKAGE_ROOT.parent / "shared" / "guide" / "acne-scars-guide.txt"
GUIDE = PACKAGE_ROOT / "corpus" / "acne-scars-guide.md"
META = PACKAGE_ROOT / "corpus" / "acne-scars-guide.meta.yaml"


def norm(text: str) -> str:
    text = re.sub(r"^\s*(?:\d+\.|•|-)\s+", " ", text, flags=re.M)  # list markers
    return " ".join(text.split())


def original_sentences() -> list[str]:
    text = ORIGINAL.read_text(encoding="utf-8")
    return [
        norm(s) for line in text.splitlines() if line.strip() for s in split_sentences(norm(line))
    ]


def test_original_copy_is_the_source_named_in_the_metadata():
    meta = yaml.safe_load(META.read_text(encoding="utf-8"))
    assert hashlib.sha256(ORIGINAL.read_bytes()).hexdigest() == meta["source_sha256"]
    if SHARED.exists():
        assert SHARED.read_bytes() == ORIGINAL.read_bytes()


def test_every_original_sentence_is_in_the_corpus_file():
    corpus = norm(GUIDE.read_text(encoding="utf-8"))
    missing = [s for s in original_sentences() if s not in corpus]
    assert len(original_sentences()) > 60
    assert missing == []


def test_corpus_adds_no_sentence_and_headings_use_only_the_guides_words():
    original = norm(ORIGINAL.read_text(encoding="utf-8"))
    original_words = set(re.findall(r"[a-z]+", original.lower()))
    body = GUIDE.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    for line in body.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            if heading not in original:  # a restored heading: a short name in the guide's words
                assert set(re.findall(r"[a-z]+", heading.lower())) <= original_words, heading
                assert len(heading.split()) <= 6, heading
        else:
            for sentence in split_sentences(norm(line)):
                assert sentence in original, sentence


def test_heading_tree_is_restored():
    guide = load_guide(GUIDE)
    paths = {s.heading_path for s in guide.sections}
    treatments = [
        "Dermabrasion",
        "Laser therapy",
        "Chemical peels",
        "Microneedling",
        "PRP therapy",
        "TCA CROSS",
        "Subcision",
        "Dermal fillers",
    ]
    for name in treatments:
        assert ("How to treat acne scars", name) in paths
    types = "What are the different types of acne scars?"
    assert (types, "Atrophic scars", "Ice pick scars") in paths
    assert (types, "Keloids") in paths
    assert ("Acne marks vs. acne scars",) in paths


def test_call_to_action_is_metadata_not_a_chunk():
    guide = load_guide(GUIDE)
    assert guide.meta.call_to_action["label"] == "Book a Consultation"
    assert guide.meta.title == "All about acne scars"
    assert guide.meta.publisher and guide.meta.version and guide.meta.date
    chunks = chunk_guide(guide, 120)
    assert not any("Book a Consultation" in c.text or "No worries" in c.text for c in chunks)
    assert not any("Learn about the fundamentals" in c.text for c in chunks)


def test_chunks_have_stable_ids_breadcrumbs_and_hashes():
    first = build_chunks(GUIDE.parent, 120)
    second = build_chunks(GUIDE.parent, 120)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert len({c.chunk_id for c in first}) == len(first)
    by_id = {c.chunk_id: c for c in first}
    subcision = by_id["acne-scars-guide:how-to-treat-acne-scars/subcision:0"]
    assert subcision.section == "How to treat acne scars › Subcision"
    assert subcision.doc_title == "All about acne scars"
    assert subcision.text.startswith("Subcision is a type of treatment")
    assert subcision.content_hash == second[first.index(subcision)].content_hash


def test_chunks_never_straddle_sections_and_long_ones_split_on_sentences():
    guide = load_guide(GUIDE)
    section_text = {s.breadcrumb(guide.meta.title): "\n".join(s.paragraphs) for s in guide.sections}
    small = chunk_guide(guide, 30)
    assert len(small) > len(chunk_guide(guide, 120))
    for chunk in small:
        assert norm(chunk.text) in norm(section_text[chunk.section])
        assert re.search(r"[.!?:)]$", chunk.text.strip()), chunk.text  # ends on a sentence
    causes = [c for c in small if c.section == "What causes acne scars?"]
    assert [c.ordinal for c in causes] == list(range(len(causes))) and len(causes) > 1


def test_sentence_splitter_keeps_abbreviations():
    text = "They’re called PIH (or PIH, a.k.a. dark acne marks) and more. Next one."
    assert split_sentences(text) == [
        "They’re called PIH (or PIH, a.k.a. dark acne marks) and more.",
        "Next one.",
    ]
    assert split_sentences("2. Healing. As the tissue heals.") == [
        "2. Healing.",
        "As the tissue heals.",
    ]


def test_further_guides_are_loaded(corpus_copy: Path):
    (corpus_copy / "aftercare.txt").write_text(
        "Aftercare\n\nKeep the skin clean.\n", encoding="utf-8"
    )
    (corpus_copy / "sun.md").write_text(
        "# Sun\n\n## Sunscreen\n\nWear it daily.\n", encoding="utf-8"
    )
    guides = {g.meta.doc_id: g for g in load_corpus(corpus_copy)}
    assert set(guides) == {"acne-scars-guide", "aftercare", "sun"}
    chunks = build_chunks(corpus_copy, 120)
    assert any(c.chunk_id == "sun:sunscreen:0" and c.section == "Sunscreen" for c in chunks)
    assert any(c.doc_id == "aftercare" and "Keep the skin clean." in c.text for c in chunks)


def test_missing_corpus_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nowhere")


def test_empty_corpus_folder_is_a_clear_error(tmp_path: Path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(CorpusError, match="holds no guide"):
        load_corpus(tmp_path)


def test_empty_guide_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "blank.md").write_text("# Title only\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="has no text"):
        load_corpus(tmp_path)


def test_bad_front_matter_is_a_clear_error(tmp_path: Path):
    (tmp_path / "bad.md").write_text("---\n: [unclosed\n---\n# T\n\nText.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="not valid YAML"):
        load_corpus(tmp_path)
