"""End to end with the real default chat model, the real MiniLM and a real Chroma index."""

import re

import pytest

from assistant.app import Services
from assistant.config import PACKAGE_ROOT
from assistant.evals.metrics import verbatim_counts

pytestmark = pytest.mark.real

GUIDE = " ".join(
    (PACKAGE_ROOT / "corpus" / "acne-scars-guide.md").read_text(encoding="utf-8").split()
)


@pytest.fixture
def assistant(real_assistant):
    return real_assistant


def test_acne_marks_vs_scars_is_answered_from_its_section_in_the_guides_words(assistant):
    record = assistant.ask("What's the difference between acne marks and acne scars?")
    assert record.status == "answered" and record.coverage == "full"
    assert record.choice["source"] == "model"
    assert any(c.section == "Acne marks vs. acne scars" for c in record.citations)
    guide = " ".join(c.text for c in assistant.chunks)
    good, shown = verbatim_counts(record, guide, assistant.texts.patterns())
    assert shown and good == shown
    numbers = {c.n for c in record.citations}
    sentences = re.findall(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", record.answer)
    assert "".join(s + m for s, m in sentences).strip() == record.answer
    assert all(int(n) in numbers for _, m in sentences for n in re.findall(r"\d+", m))


def test_laser_cost_gets_what_the_guide_says_about_lasers_and_hands_off(assistant):
    record = assistant.ask("How much does a laser session cost?")
    assert record.status == "not_in_guide" and record.coverage == "partial"
    assert record.answer.startswith("The guide doesn't say anything about cost")
    assert any(c.section.endswith("Laser therapy") for c in record.citations)
    shown = re.sub(r"\[\d+\]", "", record.answer)  # the [n] markers aside, no number at all
    assert "$" not in shown and not re.search(r"\d", shown)
    assert record.handoff is not None and record.handoff.booking_url


def test_a_follow_up_is_understood(assistant):
    first = assistant.ask("what are boxcar scars?")
    second = assistant.ask("how deep can they be?", first.session_id)
    assert second.status == "answered"
    assert second.citations[0].section.endswith("Boxcar scars")


def test_an_off_topic_question_is_not_answered_and_a_goodbye_hands_off(assistant):
    record = assistant.ask("can you recommend a good pizza place near me")
    assert record.status == "not_in_guide" and record.coverage == "none"
    assert not record.citations
    bye = assistant.ask("cheers, that's me done for today", record.session_id)
    assert bye.status == "handoff" and bye.handoff is not None


def test_the_saved_prefix_is_restored_by_a_new_process(assistant, real_services):
    services = Services(real_services.settings.model_copy(update={"session_store": "memory"}))
    services.__dict__.update(embeddings=real_services.embeddings, index=real_services.index)
    again = services.assistant
    again.warm()
    assert again.prefix_source == "restored"
    record = again.ask("what are boxcar scars?")
    assert record.status == "answered" and record.timings_ms["total"] < 20_000
