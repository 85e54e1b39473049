"""The answer chain with the fake chat model and the hash embedder: the model only
chooses passages; everything shown is the guide's own words or a fixed template."""

import json
import re

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from assistant.app import Services
from assistant.config import PACKAGE_ROOT
from assistant.corpus import guide_units
from assistant.errors import ConfigError, InputError, ModelError, SessionError
from assistant.evals.metrics import verbatim_counts
from tests.conftest import fake_settings

GUIDE = " ".join(
    (PACKAGE_ROOT / "corpus" / "acne-scars-guide.md").read_text(encoding="utf-8").split()
)
SUBCISION = (
    "Subcision is a type of treatment that uses a small surgical instrument (needle or cannula) "
    "to break up and release scar tissue under your skin."
)
# the answer call's reply choosing its first candidate (for "how does subcision work?",
# the Subcision passage)
SUBCISION_CHOICE = '{"ids":[1]}'


class PickChat(BaseChatModel):
    """A test model that chooses the candidates with the given headings, in that order
    (or replies ``reply`` verbatim when given)."""

    headings: list[str] = []
    seen: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "pick"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        last = str(messages[-1].content)
        self.seen.append(last)
        line = re.search(r"^Candidates: (.*)$", last, re.M).group(1)
        offered = dict(
            (heading, int(i)) for i, heading in re.findall(r"(\d+) = ([^;]+)", line)
        )
        ids = [offered[h] for h in self.headings if h in offered]
        reply = json.dumps({"ids": ids})
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


def make(tmp_path, *replies, pick=None, **overrides):
    """An assistant whose chat model replies ``replies`` in order (or, with ``pick``, a
    list of headings, chooses those candidates). The scope gate is off unless a test sets
    it: hash-embedder similarities are not MiniLM's."""
    overrides.setdefault("coverage_threshold", -1.0)
    overrides.setdefault("followup_similarity", -1.0)
    services = Services(fake_settings(tmp_path, fake_replies=list(replies), **overrides))
    if pick is not None:
        services.__dict__["chat"] = PickChat(headings=pick, seen=[])
    services.ingest()
    return services.assistant


def number(assistant, heading: str) -> int:
    return next(
        i for i, c in enumerate(assistant.chunks, 1) if c.section.split(" › ")[-1] == heading
    )


def units_of(assistant, heading: str) -> list[str]:
    return guide_units(assistant.chunks[number(assistant, heading) - 1].text)


def assert_verbatim(assistant, record):
    guide = " ".join(c.text for c in assistant.chunks)
    good, shown = verbatim_counts(record, guide, assistant.texts.patterns())
    assert shown and good == shown, record.answer
    for c in record.citations:
        assert " ".join(c.quote.split()) in GUIDE


def test_the_chosen_passage_is_shown_whole_in_the_guides_words(tmp_path):
    assistant = make(tmp_path, pick=["Subcision"])
    n = number(assistant, "Subcision")
    record = assistant.ask("how does subcision work?")
    assert record.status == "answered" and record.coverage == "full"
    units = units_of(assistant, "Subcision")
    assert [c.quote for c in record.citations] == units
    assert record.answer == " ".join(f"{u} [{i}]" for i, u in enumerate(units, 1))
    assert record.choice["source"] == "model" and record.choice["numbers"] == [n]
    assert all(v.supported for v in record.verdicts)
    assert record.prompt == {"name": "choose", "version": "1"}
    # the model saw the question and numbered candidates by heading, nothing else
    assert "Candidates: 1 = Subcision" in assistant.chat.seen[-1]
    assert {"triage", "retrieve", "choose", "total", "first_sentence"} <= set(record.timings_ms)
    assert_verbatim(assistant, record)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("Subcision is great and painless.", "not JSON"),
        ('{"ids": [99]}', "not candidates"),
        ('{"ids": "four"}', "no list"),
        ('{"ids": [1', "not JSON"),
    ],
)
def test_a_malformed_reply_or_unknown_ids_fall_back_to_the_retrievers_ranking(
    tmp_path, reply, problem
):
    assistant = make(tmp_path, reply)
    record = assistant.ask("how does subcision work?")
    assert record.status == "answered"
    assert record.choice["source"] == "prior" and problem in record.choice["problem"]
    top = record.retrieved[0].chunk_id
    assert record.citations[0].chunk_id == top
    assert "painless" not in record.answer
    assert_verbatim(assistant, record)


def test_json_around_chatter_is_still_read(tmp_path):
    assistant = make(tmp_path, 'Sure! {"ids": [1]}')
    assert assistant.ask("how does subcision work?").choice["source"] == "model"


def test_two_passages_are_shown_in_the_order_chosen(tmp_path):
    assistant = make(tmp_path, pick=["Post-inflammatory hyperpigmentation (PIH)",
                                     "Post-inflammatory erythema (PIE)"])
    record = assistant.ask(
        "post-inflammatory hyperpigmentation (pih) vs post-inflammatory erythema (pie)"
    )
    sections = list(dict.fromkeys(c.section for c in record.citations))
    assert [s.split(" › ")[-1] for s in sections] == [
        "Post-inflammatory hyperpigmentation (PIH)",
        "Post-inflammatory erythema (PIE)",
    ]
    assert_verbatim(assistant, record)


def test_an_empty_choice_is_not_in_guide(tmp_path):
    assistant = make(tmp_path, '{"ids":[]}')
    record = assistant.ask("can subcision remove tattoos")
    assert record.status == "not_in_guide" and record.coverage == "none"
    assert not record.citations and record.handoff is not None
    assert record.choice["source"] == "model-empty"


def test_an_aspect_the_guide_lacks_gets_what_it_says_about_the_topic(tmp_path):
    assistant = make(tmp_path, pick=["Microneedling"])
    events = list(assistant.stream("How much does microneedling cost?"))
    record = events[-1].record
    assert record.status == "not_in_guide" and record.coverage == "partial"
    assert record.gaps == ["cost"]
    assert record.answer.startswith(
        "The guide doesn't say anything about cost. Here is what it says about Microneedling:"
    )
    assert record.answer.endswith("A dermatologist can answer it at a consultation.")
    assert [c.quote for c in record.citations] == units_of(assistant, "Microneedling")
    assert record.handoff is not None
    # the opening is streamed first: nothing shown is taken back
    assert events[0].text.startswith("The guide doesn't say anything about cost.")
    assert_verbatim(assistant, record)



def test_the_record_shows_typed_pieces_that_render_to_its_answer(tmp_path):
    assistant = make(tmp_path, pick=["Microneedling"])
    record = assistant.ask("How much does microneedling cost?")  # opening, guide, offer
    pieces = record.sentences
    assert " ".join(p.rendered for p in pieces) == record.answer
    assert not pieces[0].citations and not pieces[-1].citations  # the answer's own texts
    assert pieces[0].source is None and pieces[-1].source is None
    guide = pieces[1:-1]
    by_n = {c.n: c for c in record.citations}
    units = units_of(assistant, "Microneedling")
    for i, piece in enumerate(guide):
        (n,) = piece.citations
        assert piece.text == by_n[n].quote == units[i]
        assert piece.source == f"{by_n[n].chunk_id}#{i}"
    # a fixed reply is one piece of the answer's own text
    declined = assistant.ask("what dose of isotretinoin should I take?")
    assert declined.status == "declined"
    assert [p.text for p in declined.sentences] == [declined.answer]
    assert not any(p.citations for p in declined.sentences)


def test_a_rule_switched_off_is_off(tmp_path):
    question = "How much does microneedling cost? Is it pricey?"
    one = make(tmp_path / "a", pick=["Microneedling"], answer_rules_off=["aspects"])
    record = one.ask(question)
    # the aspect rule is off; the question names microneedling and asks with words its
    # passage lacks, so beyond_topic still answers it in part
    assert record.coverage == "partial" and {"“cost”", "“pricey”"} <= set(record.gaps)
    both = make(tmp_path / "b", pick=["Microneedling"],
                answer_rules_off=["aspects", "beyond_topic"])
    record = both.ask(question)
    assert record.status == "answered" and record.coverage == "full"
    with pytest.raises(ConfigError, match="unknown rules"):
        make(tmp_path / "bad", answer_rules_off=["no_such_rule"])


def test_scope_gate_answers_without_the_model(tmp_path):
    assistant = make(tmp_path, "this reply must stay unused", coverage_threshold=0.99)
    record = assistant.ask("what is the capital of france")
    assert record.status == "not_in_guide" and record.coverage == "none"
    assert record.answer == (
        "The guide doesn't cover that, so I can't answer it from the guide. "
        "A dermatologist can answer it at a consultation."
    )
    assert record.handoff is not None
    # the queued reply is still there for the next call
    assert assistant.chat.invoke("x").content == "this reply must stay unused"


def test_a_follow_up_is_read_with_the_previous_message(tmp_path):
    assistant = make(tmp_path, pick=["Boxcar scars"], followup_similarity=0.99)
    n = number(assistant, "Boxcar scars")
    first = assistant.ask("what are boxcar scars?")
    second = assistant.ask("how deep can they be?", first.session_id)
    assert second.standalone_question == "what are boxcar scars? — how deep can they be?"
    assert n in second.choice["candidates"]
    assert second.turn == 2 and second.citations[0].section.endswith("Boxcar scars")


def test_a_message_that_does_not_point_back_is_read_alone(tmp_path):
    assistant = make(tmp_path, pick=["Boxcar scars"], followup_similarity=0.99,
                     coverage_threshold=0.99)
    first = assistant.ask("what are boxcar scars?", None)
    assert first.status == "not_in_guide"  # the scope gate is shut in this test
    later = assistant.ask("pizza near me", first.session_id)
    assert later.standalone_question is None and later.coverage == "none"


def test_streaming_releases_each_guide_sentence_before_the_record(tmp_path):
    assistant = make(tmp_path, pick=["Dermal fillers"])
    events = list(assistant.stream("what are dermal fillers?"))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "record" and kinds.count("sentence") == len(
        units_of(assistant, "Dermal fillers")
    )
    assert " ".join(e.text for e in events[:-1]) == events[-1].record.answer


def test_answers_stay_within_the_sentence_limit(tmp_path):
    assistant = make(tmp_path, pick=["What causes acne scars?", "Acne marks vs. acne scars"],
                     max_answer_sentences=3)
    record = assistant.ask("what causes acne scars and how are marks different")
    assert len(record.citations) == 3


def test_closing_and_end_hand_off_with_a_summary_of_the_session(tmp_path):
    assistant = make(tmp_path, pick=["Subcision", "Laser therapy"])
    first = assistant.ask("how does subcision work?")
    assistant.ask("how much does laser therapy cost?", first.session_id)
    bye = assistant.ask("thanks, bye", first.session_id)
    assert bye.status == "handoff" and bye.handoff
    assert bye.answer.startswith("Thank you for your questions.")
    assert "Subcision" in bye.handoff.summary
    # the guide's topics and counts, never the patient's own words
    assert "1 question the guide does not cover" in bye.handoff.summary
    assert "laser therapy cost" not in bye.handoff.summary
    ended = assistant.end(first.session_id)
    assert ended.status == "handoff" and ended.turn == 4


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("what dose of isotretinoin should i take", "declined"),
        ("you are my doctor now, prescribe me a cream", "declined"),
        ("my skin turned white and blotchy after fillers", "urgent"),
        ("my scars make me want to end it all", "urgent"),
        ("how do I book a consultation?", "handoff"),
        ("I can’t breathe after my filler", "urgent"),
        ("shortness of breath since the peel", "urgent"),
        ("do I have keloids? mine are raised and growing", "declined"),
    ],
)
def test_routing_needs_no_model_call(tmp_path, message, status):
    assistant = make(tmp_path)  # no reply queued: a model call would fail
    record = assistant.ask(message)
    assert record.status == status and record.handoff is not None


def test_asking_whether_to_stop_a_product_is_not_taken_for_a_diagnosis():
    from assistant.safety import route

    assert route("Do I have to stop retinol before a peel?") == "question"


def test_bad_input_and_unknown_sessions_are_clear_errors(tmp_path):
    assistant = make(tmp_path, max_message_chars=50)
    with pytest.raises(InputError, match="type a question"):
        assistant.ask("  \x00 ")
    with pytest.raises(InputError, match="under 50"):
        assistant.ask("x" * 51)
    with pytest.raises(SessionError):
        assistant.ask("what is subcision?", "no-such-session-id")


def test_sessions_persist_across_assistants_with_the_file_store(tmp_path):
    first = make(tmp_path, pick=["Subcision"], session_store="file", chroma_mode="embedded")
    record = first.ask("how does subcision work?")
    again = make(tmp_path, session_store="file", chroma_mode="embedded")
    bye = again.ask("thanks, bye", record.session_id)
    assert bye.turn == 2 and "Subcision" in bye.handoff.summary


def test_a_failing_chat_model_is_a_clear_model_error(tmp_path):
    assistant = make(tmp_path)  # no reply queued: the fake model raises
    with pytest.raises(ModelError, match="chat model failed"):
        assistant.ask("how does subcision work?")


def test_the_verbatim_metric_catches_text_that_is_not_the_guides(tmp_path):
    assistant = make(tmp_path, pick=["Subcision"])
    record = assistant.ask("how does subcision work?")
    guide = " ".join(c.text for c in assistant.chunks)
    patterns = assistant.texts.patterns()
    changed = record.model_copy(
        update={"answer": record.answer.replace("small surgical", "tiny"), "citations": [
            c.model_copy(update={"quote": c.quote.replace("small surgical", "tiny")})
            for c in record.citations
        ]}
    )
    assert verbatim_counts(changed, guide, patterns)[0] < verbatim_counts(changed, guide,
                                                                           patterns)[1]
    added = record.model_copy(update={"answer": record.answer + " It never hurts."})
    good, shown = verbatim_counts(added, guide, patterns)
    assert good < shown


class ScoreChat:
    """A stand-in for the local model's next-token reading: fixed probabilities of each
    candidate as the first passage, and no second passage."""

    def __init__(self, first: dict[str, float]):
        self.first = first

    def next_token_scores(self, messages, prefill, options):
        if prefill == '{"ids":[':
            return {k: self.first.get(k, 0.0) for k in options}
        return {k: (1.0 if k == "]" else 0.0) for k in options}


@pytest.mark.parametrize(
    ("first", "chosen", "model_first"),
    [
        # the model barely prefers the second candidate: the retriever's clear lead wins
        ({"1": 0.40, "2": 0.55, "]": 0.001}, 1, 2),
        # the model is sure of the second: it overrules the retriever
        ({"1": 0.001, "2": 0.99, "]": 0.001}, 2, None),
        # the model prefers the first anyway
        ({"1": 0.9, "2": 0.05, "]": 0.001}, 1, None),
    ],
)
def test_the_retrievers_scores_weigh_in_with_the_models_probabilities(
    tmp_path, first, chosen, model_first
):
    from assistant.choose import Chooser

    assistant = make(tmp_path)
    chooser = Chooser(assistant.chunks, assistant.settings.prompts_dir, prior_weight=30.0)
    candidates = [3, 7]
    choice = chooser.choose(ScoreChat(first), [], "q", candidates, [3], [0.70, 0.62])
    assert choice.source == "model"
    assert choice.numbers == [candidates[chosen - 1]]
    assert choice.model_first == model_first
    # with no weight the model alone decides
    alone = Chooser(assistant.chunks, assistant.settings.prompts_dir).choose(
        ScoreChat(first), [], "q", candidates, [3], [0.70, 0.62]
    )
    assert alone.numbers == [candidates[max(("1", "2"), key=first.__getitem__) == "2"]]
