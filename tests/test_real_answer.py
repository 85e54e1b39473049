"""End to end with the real default chat model, the real MiniLM and a real Chroma index."""

import re

import pytest

from assistant.app import Services
from assistant.config import PACKAGE_ROOT

pytestmark = pytest.mark.real

GUIDE = " ".join(
    (PACKAGE_ROOT / "corpus" / "acne-scars-guide.md").read_text(encoding="utf-8").split()
)


@pytest.fixture
def assistant(real_assistant):
    return real_assistant


def test_acne_marks_vs_scars_is_answered_from_its_section_with_exact_quotes(assistant):
    record = assistant.ask("What's the difference between acne marks and acne scars?")
    assert record.status == "answered"
    assert any(c.section == "Acne marks vs. acne scars" for c in record.citations)
    for c in record.citations:
        assert " ".join(c.quote.split()) in GUIDE
    numbers = {c.n for c in record.citations}
    sentences = re.findall(r"(.+?)((?:\s*\[\d+\])+)(?=\s|$)", record.answer)
    assert "".join(s + m for s, m in sentences).strip() == record.answer
    assert all(int(n) in numbers for _, m in sentences for n in re.findall(r"\d+", m))


def test_laser_cost_is_not_in_the_guide_and_hands_off(assistant):
    record = assistant.ask("How much does a laser session cost?")
    assert record.status == "not_in_guide"
    assert "$" not in record.answer and not re.search(r"\d", record.answer)
    assert record.handoff is not None and record.handoff.booking_url


def test_a_follow_up_is_understood(assistant):
    first = assistant.ask("what are boxcar scars?")
    second = assistant.ask("how deep can they be?", first.session_id)
    assert "boxcar" in (second.standalone_question or "").lower()
    assert second.status == "answered"


def test_the_saved_prefix_is_restored_by_a_new_process(assistant, real_services):
    services = Services(real_services.settings.model_copy(update={"session_store": "memory"}))
    services.__dict__.update(embeddings=real_services.embeddings, index=real_services.index)
    again = services.assistant
    again.warm()
    assert again.prefix_source == "restored"
    record = again.ask("what are boxcar scars?")
    assert record.status == "answered" and record.timings_ms["total"] < 20_000
