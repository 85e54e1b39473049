"""Checks that run before retrieval: input limits and deterministic routing.

Routing is by reviewed patterns, never by the chat model: urgent symptoms and
crisis language go to ``urgent`` with a fixed message; requests for doses,
prescriptions or diagnoses go to ``declined``; goodbyes and booking requests go
to ``handoff``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from assistant.errors import InputError

Route = Literal["urgent", "crisis", "declined", "closing", "question"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_message(message: str, max_chars: int) -> str:
    """Normalise a patient's message; raise InputError with a patient-readable reason."""
    if not isinstance(message, str):
        raise InputError("Please type your question as text.")
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", message))
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = " ".join(text.split())
    if not text:
        raise InputError("Please type a question about acne scars.")
    if len(text) > max_chars:
        raise InputError(
            f"Your message is {len(text):,} characters long; please keep it under {max_chars:,}."
        )
    return text


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


_URGENT = _any(
    r"\b(can'?t|cannot|trouble|hard to|difficulty|struggling to) breath",
    r"\b(throat|tongue|lips?|face) (is |are |getting |keeps )?(swell|swollen|closing)",
    r"\bswollen (throat|tongue|face|lips?)\b",
    r"\bhives\b",
    r"\bshort(ness)? of breath\b",
    r"\b(vision|eyesight|seeing) (is |has |went |getting )?(blur|blurr|dark|double|loss|lost|changed)",
    r"\b(blurry|blurred|double|lost my|loss of) (vision|sight)\b",
    r"\bcan'?t see\b",
    r"\b(turn|turning|turned|gone|went|going) (white|gr[ae]y|blue|purple|dusky|blotchy|pale)\b",
    r"\b(white|gr[ae]y|blue|blotchy) (patch|patches|skin)\b.*\b(filler|inject)",
    r"\bfever\b",
    r"\bpus\b",
    r"\bspreading (redness|red)\b",
    r"\bred(ness)? (is )?spreading\b",
    r"\bblister",
    r"\b(burn|burned|burnt|burns)\b.*\b(peel|laser|treatment)",
    r"\b(peel|laser|treatment)\b.*\b(burn|burned|burnt|burns)\b",
    r"\b(severe|extreme|unbearable|excruciating) pain\b",
)
_CRISIS = _any(
    r"\bsuicid",
    r"\bkill (myself|me)\b",
    r"\bend (it all|my life)\b",
    r"\bwant(ing)? to die\b",
    r"\bself[- ]?harm",
    r"\bhurt(ing)? myself\b",
    r"\bno reason to live\b",
)
_DECLINED = _any(
    r"\b(doses|dosage|dosing|mg|milligrams?)\b",
    r"\b(what|which|right|correct|the|a|max|maximum|daily) dose\b",
    r"\bdose (of|for)\b",
    r"\bhow (much|many|often)\b.*\b(should|can|do) i (take|use|apply)\b",
    r"\bwhat (strength|concentration|percent(age)?)\b",
    r"\b(should|can) i (use|take|apply)\b.*\b(at home|how often|every day|daily|twice)\b",
    r"\bprescri(be|ption)\b",
    r"\bdiagnos(e|is)\b",
    r"\b(do|did) i have (an? )?(keloids?|hypertrophic|boxcar|ice ?pick|rolling|atrophic|pih|pie|acne scars?|scars?|scarring)\b",
    r"\bwhat (kind of |type of )?(scar|scars) do i have\b",
    r"\b(are|is) (mine|my scars?|these|they) (an? )?(ice ?pick|boxcar|rolling|keloids?|hypertrophic|atrophic)",
    r"\bwhich (type|kind|one) (is|are) (mine|my scars?)\b",
    r"\bis (this|it|mine|my scar) (a |an )?(keloid|hypertrophic|boxcar|ice ?pick|rolling)",
    r"\b(pretend|act|role-?play)\b.*\b(doctor|dermatologist|physician)\b",
    r"\byou are (now )?my (doctor|dermatologist)\b",
)
_CLOSING = _any(
    r"^(ok(ay)?[,.!]? )?(thanks|thank you|thx|ty|cheers)[,.! ]*(so much|a lot)?[,.! ]*(bye|goodbye|that'?s all)?[.! ]*$",
    r"^(bye|goodbye|see you|that'?s all|that is all|i'?m done|no more questions)\b",
    r"\b(i think )?i'?m (all )?(done|finished|good)( here| now| for now)?[.! ]*$",
    r"^(great|ok(ay)?|cool|perfect|awesome|thanks)[,.! ]+(that|this) (helped|helps|was helpful)",
    r"\b(that'?s all|that is all|bye|goodbye)[.! ]*$",
    r"\bhow (do|can) i (book|make an appointment|schedule)\b",
    r"\b(book|schedule|make) (a |an )?(consult|consultation|appointment)\b",
    r"\b(want|like) to (see|talk to|speak to|speak with) (a |an )?(dermatologist|doctor|specialist)\b",
)


def route(text: str) -> Route:
    """The route of a cleaned message: crisis and urgent first, then declined, then closing."""
    if _CRISIS.search(text):
        return "crisis"
    if _URGENT.search(text):
        return "urgent"
    if _DECLINED.search(text):
        return "declined"
    if _CLOSING.search(text.strip()):
        return "closing"
    return "question"
