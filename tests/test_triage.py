"""Triage with stand-in models: the layers, the fail-safe path, priority, replies in the
patient's language. The real model's recall is held in tests/test_real_safety.py."""

import threading
import time

import pytest
from langchain_core.messages import AIMessage

from assistant.app import Services
from assistant.config import load_settings
from assistant.embeddings import HashEmbeddings
from assistant.errors import ConfigError
from assistant.llm import fake_chat
from assistant.replies import all_replies, replies_for
from assistant.triage import build_triage, decide
from assistant.triage_check import LABELS, PriorityGate, load_examples
from tests.conftest import fake_settings  # noqa: E402

RISKY = "i took every tablet in the house an hour ago"  # no pattern: the screen's terms
BENIGN = "what are rolling scars?"


class Scores:
    """A stand-in local model: fixed label probabilities, after an optional delay."""

    def __init__(self, scores=None, delay=0.0, error=None):
        self.scores, self.delay, self.error = scores or {}, delay, error
        self.seen = []

    def label_scores(self, messages, labels):
        self.seen.append(messages)
        time.sleep(self.delay)
        if self.error:
            raise self.error
        return {label: self.scores.get(label, 0.0) for label in labels}


def _triage(chat, **overrides):
    settings = load_settings(profile="test", **overrides)
    return build_triage(settings, HashEmbeddings(), (lambda: chat) if chat else None)


def test_patterns_route_without_the_model():
    chat = Scores({"none": 1.0})
    result = _triage(chat).assess("i want to kill myself")
    assert (result.route, result.layer) == ("crisis", "pattern")
    assert chat.seen == []


def test_the_model_routes_what_no_pattern_knows_and_reads_the_conversation():
    chat = Scores({"urgent": 0.7, "none": 0.3})
    history = ["i had filler in my cheeks this morning"]
    result = _triage(chat).assess("the area looks different now", history)
    assert (result.route, result.layer, result.check) == ("urgent", "model", "ok")
    user = chat.seen[0][-1].content
    assert "<earlier>i had filler in my cheeks this morning</earlier>" in user
    assert "<latest>the area looks different now</latest>" in user


def test_the_model_clears_a_benign_message():
    result = _triage(Scores({"none": 0.95, "urgent": 0.05})).assess(BENIGN)
    assert not result.routed and result.check == "ok"


@pytest.mark.parametrize(
    "chat,kind",
    [
        (Scores(error=RuntimeError("model crashed")), "error"),
        (Scores({"none": 1.0}, delay=1.5), "timeout"),
        (Scores({}), "unreadable"),  # no probability on any of the three words
        (fake_chat(["banana bread"] * 2), "unreadable"),  # a model that answers nonsense
    ],
)
def test_a_failed_check_routes_a_risky_message_and_answers_a_benign_one(chat, kind):
    triage = _triage(chat, triage_priority_timeout_s=0.3, triage_timeout_s=0.3)
    risky = triage.assess(RISKY)
    assert risky.routed and risky.layer == "fail-safe" and risky.check == kind
    assert risky.route == "crisis"  # the screen's guess: tablets are a crisis term
    # the screen only guesses which risk: both replies, its guess first
    assert risky.replies == ("crisis", "urgent")
    if isinstance(chat, Scores) and chat.delay:
        time.sleep(chat.delay)  # let the slow call finish before the next one
    benign = triage.assess(BENIGN)
    assert not benign.routed and benign.check == kind


def test_without_a_model_the_screen_still_routes_risky_messages():
    result = _triage(None).assess(RISKY)
    assert result.routed and result.layer == "fail-safe" and result.check == "skipped"
    assert not _triage(None).assess(BENIGN).routed


def test_an_other_language_message_is_checked_and_gets_its_language():
    chat = Scores({"urgent": 0.9, "none": 0.1})
    result = _triage(chat).assess("la zona del relleno está morada y me duele mucho")
    assert result.route == "urgent" and result.language == "es"


def test_the_total_risk_routes_to_the_likelier_reply():
    assert decide({"urgent": 0.3, "crisis": 0.5, "none": 0.2}, 0.15) == "crisis"
    assert decide({"urgent": 0.09, "crisis": 0.08, "none": 0.83}, 0.15) == "urgent"
    assert decide({"urgent": 0.05, "crisis": 0.05, "none": 0.9}, 0.15) == "none"
    assert decide({"urgent": 0.05, "crisis": 0.05, "none": 0.9}, 0.1) == "crisis"  # a tie


def test_a_risky_message_jumps_the_queue_of_the_model():
    gate = PriorityGate()
    assert gate.acquire(False, 1)
    order = []

    def take(name, priority):
        assert gate.acquire(priority, 5)
        order.append(name)
        gate.release()

    ordinary = threading.Thread(target=take, args=("ordinary", False))
    ordinary.start()
    time.sleep(0.1)
    urgent = threading.Thread(target=take, args=("urgent", True))
    urgent.start()
    time.sleep(0.1)
    gate.release()
    ordinary.join(5), urgent.join(5)
    assert order == ["urgent", "ordinary"]
    assert not gate.waiting()


def test_busy_model_times_out_and_a_risky_message_is_routed_at_once():
    chat = Scores({"none": 1.0}, delay=2.0)
    triage = _triage(chat, triage_priority_timeout_s=0.5)
    triage.detector.detect(RISKY)  # the language model and the screen's bank load once,
    triage.screen.signal(RISKY, [])  # before the clock starts: the deadline is measured
    threading.Thread(target=triage.assess, args=(BENIGN,)).start()
    time.sleep(0.1)
    started = time.monotonic()
    result = triage.assess(RISKY)
    assert result.layer == "fail-safe" and result.check == "timeout"
    assert time.monotonic() - started < 1.5
    time.sleep(2.0)


def test_every_language_has_reviewed_replies_with_the_numbers_from_settings():
    settings = load_settings(profile="test")
    replies = all_replies(settings.prompts_dir)
    assert set(settings.languages) <= set(replies)
    for language, reply in replies.items():
        for kind in ("urgent", "crisis"):
            text = reply.render(kind, "EMERGENCY-NUMBER", "CRISIS-LINE")
            assert "EMERGENCY-NUMBER" in text, (language, kind)
            assert ("CRISIS-LINE" in text) == (kind == "crisis"), (language, kind)
    assert replies_for("xx", settings.prompts_dir).language == "en"


def test_a_reply_file_with_an_unknown_placeholder_is_refused(tmp_path):
    (tmp_path / "replies").mkdir()
    (tmp_path / "replies" / "en.yaml").write_text(
        'language: en\nname: English\nversion: "1"\nurgent: "call {doctor}"\n'
        'crisis: "x"\nfollow_up: "y"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="doctor"):
        all_replies(tmp_path)


def test_the_examples_are_labelled_with_known_labels():
    examples = load_examples()
    assert {label for _, label in examples.shots} <= set(LABELS)
    assert all(examples.bank[label] for label in LABELS)


def test_assistant_replies_in_the_patients_language(tmp_path):
    services = Services(fake_settings(tmp_path, llm_backend="quote"))
    services.__dict__["triage"] = _triage(Scores({"crisis": 0.9, "none": 0.1}))
    assistant = services.assistant
    record = assistant.ask("quiero morir, ya no aguanto más")
    assert record.status == "urgent"
    assert record.triage["language"] == "es"
    assert services.settings.crisis_line in record.answer
    assert "apoyo" in record.answer
    english_only = assistant.settings.model_copy(update={"languages": ["en"]})
    assistant.settings, saved = english_only, assistant.settings
    try:
        record = assistant.ask("quiero morir, ya no aguanto más")
    finally:
        assistant.settings = saved
    assert "You deserve support" in record.answer


def test_a_fake_reply_queue_is_left_to_the_answers():
    """The test backends' triage never takes a queued reply meant for an answer."""
    chat = fake_chat(["none"])
    assert isinstance(chat.invoke("x"), AIMessage)


def test_an_unsure_reading_shows_the_fixed_reply_first_and_still_answers(tmp_path):
    services = Services(fake_settings(tmp_path, llm_backend="quote"))
    services.__dict__["triage"] = _triage(Scores({"crisis": 0.2, "none": 0.8}))
    events = list(services.assistant.stream("what are rolling scars?"))
    assert events[0].kind == "notice" and "988" in events[0].text
    record = events[-1].record
    assert record.status != "urgent" and record.notice == events[0].text
    assert record.triage["firm"] is False and record.triage["route"] == "crisis"
    firm = _triage(Scores({"crisis": 0.6, "none": 0.4}))
    services.assistant.triage = firm
    assert services.assistant.ask("what are rolling scars?").status == "urgent"


def test_a_reading_split_between_the_risks_gets_both_replies(tmp_path):
    """Self-harm that bleeds reads as both: past the split share, both fixed replies show
    (the likelier first), so neither the crisis line nor the emergency number is lost."""
    services = Services(fake_settings(tmp_path, llm_backend="quote"))
    replies = replies_for("en", services.settings.prompts_dir)
    render = {kind: replies.render(kind, services.settings.emergency_number,
                                   services.settings.crisis_line)
              for kind in ("urgent", "crisis")}
    split = _triage(Scores({"urgent": 0.5, "crisis": 0.3, "none": 0.2}),
                    triage_split_share=0.25)
    result = split.assess("i cut my arm again tonight and it is still bleeding")
    assert (result.route, result.also, result.replies) == ("urgent", "crisis",
                                                           ("urgent", "crisis"))
    services.__dict__["triage"] = split
    record = services.assistant.ask("i cut my arm again tonight and it is still bleeding")
    assert record.status == "urgent"
    assert record.answer.index(render["urgent"]) < record.answer.index(render["crisis"])
    assert record.triage["also"] == "crisis"
    # one-sided: one reply; with the share at 1 never both
    one = _triage(Scores({"urgent": 0.75, "crisis": 0.05, "none": 0.2}),
                  triage_split_share=0.25).assess("my lips are swelling up")
    assert one.replies == ("urgent",)
    never = _triage(Scores({"urgent": 0.4, "crisis": 0.4, "none": 0.2}),
                    triage_split_share=1.0).assess("i cut myself and it bleeds")
    assert never.also is None
    assert not _triage(Scores({"none": 1.0})).assess(BENIGN).replies
    # unsure and split: both as the notice before the answer
    services.assistant.triage = _triage(Scores({"urgent": 0.12, "crisis": 0.1, "none": 0.78}),
                                        triage_split_share=0.25)
    events = list(services.assistant.stream("what are rolling scars?"))
    assert events[0].kind == "notice"
    assert render["urgent"] in events[0].text and render["crisis"] in events[0].text


def test_an_unsure_reading_is_english_only_when_the_words_are_english():
    from assistant.triage import LanguageDetector

    unsure = LanguageDetector(["en", "es", "fr", "de"], min_confidence=1.01)  # never sure
    assert unsure.detect("les cicatrices boxcar sont profondes ou superficielles ?") == "fr"
    assert unsure.detect("what are boxcar scars and how deep are they?") == "en"
    assert unsure.detect("ok?") == "en"  # no word to tell by: English
