"""What the chat shows: an answer as chat messages (its text with each ``[n]`` a link to
the guide, its collapsed Sources, its checked translations, the terms it uses), the bubble
of an answer on its way or a question in line, the banner of an urgent answer, and the
guide's topics offered under a "not covered" one."""

from __future__ import annotations

from typing import Any

from assistant.records import AnswerRecord
from assistant.web.guide import Guide
from assistant.web.render import guide_link, link_markers, link_terms, plain

NOT_COVERED = "**Not covered in the guide.**"
PARTLY_COVERED = "**Partly covered in the guide.**"

# an answer on its way: the bubble says so, and carries no copy or thumbs button (the CSS
# hides them in a message row holding ``.sg-pending``)
LOOKING = "Looking in the guide…"
IN_LINE = "Many people are asking right now: you are number {n} in line…"
WAITING = "In line: answered after the question above."
MAX_WAITING = 3  # the questions one tab may have waiting behind the one being answered
TOO_MANY = (f"{MAX_WAITING} questions are already waiting for their answers. Your question "
            "is still in the box: send it once an answer has arrived.")
ENDING = ("The chat is ending after the answer on its way. Your question is still in the "
          "box: send it then, and it starts a new conversation.")
ENDED = ("<strong>This conversation has ended.</strong> Your next question starts a new "
         "conversation, or choose New conversation.")
BOOKED_ENDED = ("<strong>This conversation has ended.</strong> Your booking request is with "
                "the clinic. Your next question starts a new conversation, or choose New "
                "conversation.")


def pending_html(text: str, live: bool = True) -> str:
    """The in-progress part of a bubble (our own words, never the patient's)."""
    role = ' role="status"' if live else ""
    return f'<span class="sg-pending"{role}>{text}</span>'


def is_pending(message: dict[str, Any]) -> bool:
    return "sg-pending" in str(message.get("content", ""))


def waiting_messages(questions) -> list[dict[str, Any]]:
    """Questions in line behind the one being answered: each shows as sent, with a note."""
    shown: list[dict[str, Any]] = []
    for question in questions:
        shown.append({"role": "user", "content": plain(question)})
        shown.append({"role": "assistant", "content": pending_html(WAITING, live=False)})
    return shown


def _source_title(n: int, section: str) -> str:
    return f"Source {n}: {section} (opens the guide in a new tab)"


def sources_markdown(record: AnswerRecord, guide: Guide | None = None) -> str:
    """Each footnote: its number, its section (a link to its place in the guide page) and
    the exact quote."""

    def section(c) -> str:
        href = guide.href(c.chunk_id, c.quote) if guide else None
        return guide_link(plain(c.section), href, _source_title(c.n, c.section))

    parts = [f"**\\[{c.n}\\]** {section(c)}  \n“{plain(c.quote)}”" for c in record.citations]
    if record.glossary:  # the terms, readable without hover: the guide's own definitions
        parts.append("**Terms, as the guide defines them**")
        for g in record.glossary:
            href = guide.href(g.chunk_id, g.definition) if guide else None
            where = guide_link(plain(g.section.split(" › ")[-1]), href,
                               f"{g.term} in the guide (opens the guide in a new tab)")
            parts.append(f"**{plain(g.term)}**: “{plain(g.definition)}” ({where})")
    return "\n\n".join(parts)


def translations_markdown(record: AnswerRecord) -> str:
    """The cited sentences' automatic translations, under a label saying so: each after
    its ``[n]``; one that failed its check is a note that the English stands alone."""
    if not record.translations:
        return ""
    lines = [f"_{plain(record.translation_label or '')}_"]
    for t in record.translations:
        shown = plain(t.shown) if t.passed else f"_{plain(t.shown)}_"
        lines.append(f"\\[{t.n}\\] {shown}")  # escaped as plain() escapes a marker
    return "\n\n" + "  \n".join(lines)


def answer_markdown(record: AnswerRecord, guide: Guide | None = None) -> str:
    """The answer's text, escaped, with each ``[n]`` a link to its source in the guide,
    then the sentences' checked translations when the patient wrote in another language."""
    text = plain(record.answer)
    if guide is None:
        return text + translations_markdown(record)
    hrefs = {c.n: guide.href(c.chunk_id, c.quote) for c in record.citations}
    titles = {c.n: _source_title(c.n, c.section) for c in record.citations}
    terms = [((g.term, *g.also), guide.href(g.chunk_id, g.definition), term_title(g))
             for g in record.glossary]
    return link_markers(link_terms(text, terms) + translations_markdown(record), hrefs, titles)


def term_title(entry) -> str:
    """A glossary term's title: the guide's defining sentence, said as the guide's."""
    return f"{entry.term}, as the guide defines it: {entry.definition}"


def answer_messages(record: AnswerRecord, guide: Guide | None = None,
                    booked: str | None = None) -> list[dict[str, Any]]:
    """The chat messages that show one answer: the text, then its collapsed sources.
    With ``guide``, its markers and sources link to the guide page. ``booked``: the
    reference of a booking made in this conversation (the consultation is not offered
    again; the closing message names the reference instead)."""
    if booked and record.status == "handoff" and record.handoff is not None:
        thanks = record.answer.removesuffix(record.handoff.message).strip()
        text = (f"{plain(thanks)} Your booking request (reference "
                f"**{plain(booked)}**) is with the clinic: they will contact you.")
        return [{"role": "assistant", "content": text}]
    text = answer_markdown(record, guide)
    if record.status == "not_in_guide" and record.language == "en":  # (else its own text
        # says so in the patient's language)
        text = f"{PARTLY_COVERED if record.coverage == 'partial' else NOT_COVERED} {text}"
    elif record.status == "urgent":
        text = f"**Urgent.** {text}"
    if record.notice:
        text = f"**Urgent.** {plain(record.notice)}\n\n{text}"
    # a "not covered" answer already offers the consultation, with a booking button under it
    if (record.handoff is not None and record.status not in ("handoff", "not_in_guide")
            and not booked):
        text += f"\n\n_{plain(record.handoff.message)}_"
    messages: list[dict[str, Any]] = [{"role": "assistant", "content": text}]
    if record.citations:
        messages.append(
            {
                "role": "assistant",
                "content": sources_markdown(record, guide),
                "metadata": {"title": f"Sources ({len(record.citations)})", "status": "done"},
            }
        )
    return messages


def urgent_markdown(record: AnswerRecord) -> str:
    return f"## Get help now\n\n{plain(record.notice or record.answer)}"


NEARBY = 4  # the most topics offered under a "not covered" answer


def nearby_for(record: AnswerRecord, guide: Guide) -> list[str]:
    """The questions offered under a "not covered" answer: the guide's sections nearest to
    the question (its retrieved candidates), less those the answer already quotes."""
    return guide.nearby_questions(
        record.retrieved, [c.section for c in record.citations], limit=NEARBY
    )
