"""Checks that run before retrieval: input limits and deterministic routing.

Routing is by reviewed patterns, never by the chat model: urgent symptoms and
crisis language go to ``urgent`` with a fixed message; requests for doses,
prescriptions or diagnoses go to ``declined``; goodbyes and booking requests go
to ``handoff``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from assistant.errors import InputError
from assistant.words import alike, english_words

Route = Literal["urgent", "crisis", "declined", "closing", "question"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Code points no text may hold: UTF-16 surrogates (a lone one arrives as a JSON "\ud800"
# escape and cannot be stored or sent back) and the noncharacters U+FDD0–FDEF and
# U+xFFFE/U+xFFFF of every plane (reserved, never typed, refused by XML and some stores).
_INVALID = re.compile(
    r"[\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"\\U{p:08x}\\U{p + 1:08x}" for p in range(0xFFFE, 0x110000, 0x10000))
    + "]"
)
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BREAK = re.compile(r"\r\n?|[\u2028\u2029]")


class TextError(ValueError):
    """A text that cannot be taken as it is; ``str()`` names the character, never the text."""


def _point(char: str) -> str:
    return f"U+{ord(char):04X}"


def valid_text(text: str) -> str:
    """``text`` unchanged, or TextError when it holds a surrogate or a noncharacter."""
    bad = _INVALID.search(text)
    if bad:
        raise TextError(f"holds {_point(bad.group())}, which is not a valid character")
    return text


def clean_line(text: str) -> str:
    """A one-line field (name, phone, email, ids): NFC, runs of spaces made one, trimmed.
    TextError for an invalid code point, a control character or a line break."""
    bad = _NOT_ONE_LINE.search(valid_text(text))
    if bad:
        raise TextError(
            f"must be one line without control characters (found {_point(bad.group())})"
        )
    return " ".join(unicodedata.normalize("NFC", text).split())


def clean_lines(text: str) -> str:
    """A multi-line field (concern, preferred times, comment): NFC, line breaks kept as
    ``\\n`` (a tab reads as a space), runs of spaces and of blank lines made one, trimmed.
    TextError for an invalid code point or a control character other than tab and breaks."""
    bad = _CONTROL.search(valid_text(text))
    if bad:
        raise TextError(
            f"holds a control character ({_point(bad.group())}); only line breaks and tabs "
            "are allowed"
        )
    lines = [" ".join(line.split()) for line in _BREAK.sub("\n", text).split("\n")]
    text = "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1]))
    return unicodedata.normalize("NFC", text.strip())


def _field(clean: Callable[[str], str]) -> BeforeValidator:
    def validate(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the field's own type says what is wrong
        try:
            return clean(value)
        except TextError as exc:
            raise PydanticCustomError("invalid_text", str(exc)) from None

    return BeforeValidator(validate)


# Request fields: every text field of the API is one of these, so a bad character is a
# 422 naming the field (path parameters are checked by ``assistant.web.api.BodyLimit``).
ONE_LINE = _field(clean_line)
OneLine = Annotated[str, ONE_LINE]
MultiLine = Annotated[str, _field(clean_lines)]
ValidText = Annotated[str, _field(valid_text)]  # the chat message: clean_message does the rest


def clean_message(message: str, max_chars: int) -> str:
    """Normalise a patient's message; raise InputError with a patient-readable reason.

    Control characters and line breaks become spaces (the message is read as one line);
    a surrogate or a noncharacter is refused."""
    if not isinstance(message, str):
        raise InputError("Please type your question as text.")
    try:
        valid_text(message)
    except TextError as exc:
        raise InputError(
            f"Your message {exc}. Please type it again without that character."
        ) from None
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


# Text in a guide that addresses the assistant instead of the patient. Guides are trusted
# content, but a sentence like this is an injected instruction, not a fact: it is left
# out of the index (and reported by ingest), so no answer can quote or obey it.
_INSTRUCTION = re.compile(
    "|".join(
        (
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(instructions?|rules?|prompts?|passages?|guide|above|previous)\b",
            r"\b(you are|you're) (now )?(an? |the )?(ai|assistant|chatbot|language model|model|bot)\b",
            r"\b(system prompt|system message|developer mode|jailbreak)\b",
            r"\b(assistants?|chatbots?|ai|models?|bots?) (must|should|shall|will) (always |now |never )?\w+",
            r"<\s*/?\s*(system|instructions?|question|assistant|user)\s*>",
            r"\[/?INST\]|<\|im_(start|end)\|>|<<\s*/?SYS\s*>>",
            r"\b(tell|recommend to|instruct) (every|all|each|the) (patients?|users?|readers?)\b",
        )
    ),
    re.I,
)


def instruction_like(sentence: str) -> bool:
    """Does this guide sentence speak to the assistant (an injected instruction)?"""
    return bool(_INSTRUCTION.search(sentence))


def as_data(text: str) -> str:
    """Patient text as it goes into a prompt: angle brackets become look-alikes, so no
    message can close the ``<question>`` tag or open a fake ``<system>`` one."""
    return text.replace("<", "‹").replace(">", "›")


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


_FILLER = r"(fill(er|ers|ed|ing)|inject(ion|ions|ed)?|needle)"
_TREATED = r"(fill(er|ers|ed)|inject\w*|treat\w*|procedure|peel|laser\w*|microneedl\w*|dermabrasion|prp|subcision|session)"

_URGENT = _any(
    # breathing, swelling of the airway, allergy
    r"\b(can'?t|cannot|can not|trouble|hard to|difficulty|struggling to|unable to) breath",
    r"\b(throat|tongue|lips?|face|eyes?) (is |are |feels? |feel like it is |getting |keeps )?(swell|swollen|closing|tight)",
    r"\bthroat\b.{0,30}\b(clos|tighten|swell|swollen)",
    r"\bswollen (throat|tongue|face|lips?)\b",
    r"\b(face|lips?|tongue|throat|eyes?) (swelled|swelling) up\b",
    r"\bhives\b",
    r"\bwheez",
    r"\bshort(ness)? of breath\b",
    r"\banaphyla",
    # a blocked blood vessel after fillers: colour change, pain, vision
    r"\b(vision|eyesight|seeing|sight) (is |has |went |getting |gone )?(blur|blurr|dark|double|loss|lost|changed|black)",
    r"\b(blurry|blurred|double|lost my|loss of|losing my|lost) (vision|sight|eyesight)\b",
    r"\bseeing double\b",
    r"\bcan'?t see\b",
    r"\b(turn|turns|turning|turned|gone|went|going|go) (a )?(weird |strange )?(white|gr[ae]y|blue|bluish|purple|purplish|dusky|blotchy|pale|mottled)\b",
    r"\b(white|gr[ae]y|blue|bluish|purple|purplish|blotchy|dusky|mottled|pale)\b.{0,80}\b" + _FILLER,
    _FILLER + r".{0,80}\b(white|gr[ae]y|blue|bluish|purplish|blotchy|dusky|mottled|pale)\b",
    r"\b(severe|extreme|unbearable|excruciating|terrible|intense) pain\b",
    # infection
    r"\bfever(ish)?\b(?!\s+blisters?)",
    r"\bchills\b",
    r"\bpus+\b",
    r"\booz(e|es|ing)\b",
    r"\b(spreading|spreads) (redness|red)\b",
    r"\b(redness|red area|red skin|red patch|red streaks?|swelling)\b.{0,30}\bspread",
    r"\b(hot|warm) to (the )?touch\b",
    r"\bswollen and (hot|warm)\b",
    # burns and blisters after a peel or laser
    r"(?<!fever )\bblister",
    r"\b(burned|burnt|got burns|have burns|has burns|burns from)\b.{0,60}\b" + _TREATED,
    r"\b" + _TREATED + r"\b.{0,60}\b(burned|burnt)\b",
    r"\b(is|it's|feels?|still|keeps?) (like it is |like it's )?burning\b",
    r"\b(raw|weeping)\b.{0,40}\b(skin|patch|patches|face|areas?)\b",
    r"\b(skin|face)\b.{0,30}\b(is|feels|looks) raw\b",
)
_CRISIS = _any(
    r"\bsuicid",
    r"\bkill(ing)? myself\b",
    r"\bend(ing)? (it all|my life|things)\b",
    r"\b(want|wanna|wanting|going|ready) (to )?(die|dye)\b",
    r"\bself[- ]?harm",
    r"\b(hurt|hurting|cut|cutting|harm|harming) myself\b",
    r"\bno (reason|point) (to|in) (live|living|going on)\b",
    r"\b(don'?t|do not|no longer) want to (be alive|live|exist|wake up|be here)\b",
    r"\bbetter off without me\b",
    r"\bcan'?t go on\b",
    r"\bdone with (life|living)\b",
    r"\bdisappear (forever|for good)\b",
    r"\b(the )?point (in|of) (living|being alive|life)\b",
    r"\b(might as well|rather) not (exist|be alive|be here)\b",
    r"\b(take|taking|swallow|swallowing) (all )?(of )?(my|the|these) (pills|tablets)\b",
    r"\boverdose\b",
)
_DECLINED = _any(
    r"\b(doses|dosage|dosing|mg|milligrams?)\b",
    r"\b(what|which|right|correct|the|a|max|maximum|daily) dose\b",
    r"\bdose (of|for)\b",
    r"\bhow (much|many|often)\b.*\b(should|can|do) i (take|use|apply)\b",
    r"\bwhat (strength|concentration|percent(age)?)\b",
    r"\b(should|can) i (use|take|apply)\b.*\b(at home|how often|every day|daily|twice)\b",
    r"\bprescri(be|bes|bing|bed|ption|ptions)\b",
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


# Red-flag words a patient may misspell; a typed word that is no English word but one
# edit from one of these is read as it ("fevr", "swolen", "vison", "blistring").
_RED_FLAG_WORDS = (
    "turned turning white grey gray blue bluish purple blotchy mottled dusky pale vision "
    "blurry blurred eyesight excruciating unbearable severe swollen swelling hives fever "
    "feverish blistering blisters blistered breathe breathing breath throat suicide suicidal "
    "kill killing myself die dying wheezing spreading redness oozing burned burning chills"
).split()
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def _fix_typos(text: str) -> str:
    english = english_words()
    text = re.sub(r"\bmy self\b", "myself", text.lower())

    def fix(match: re.Match[str]) -> str:
        word = match.group(0)
        if len(word) < 3 or word in english or word in _RED_FLAG_WORDS:
            return word
        for known in _RED_FLAG_WORDS:
            if alike(word, known):
                return known
        return word

    return _WORD.sub(fix, text)


# A question about what could happen describes no event ("can a laser burn you?", "what
# are the signs of a blocked vessel?"): red-flag words in it do not route by themselves.
_HYPOTHETICAL = re.compile(
    r"^(how|what|which|why|can|could|does|do|will|would|should|are there|is there|is it "
    r"(possible|common|likely|safe|true)|are (they|there|peels|lasers|fillers)|any risk|"
    r"what if|are .{1,30} (safe|risky|dangerous))\b(?!.*\b(i|i'm|i've|my|me)\b.*\b(now|today|"
    r"since|after my|this morning|yesterday|tonight|right now)\b)",
    re.I,
)


def red_flag(text: str) -> Literal["crisis", "urgent"] | None:
    """The crisis or urgent pattern the message (or it with misspellings fixed) matches."""
    fixed = _fix_typos(text)
    if _CRISIS.search(text) or _CRISIS.search(fixed):
        return "crisis"
    if _URGENT.search(text) or _URGENT.search(fixed):
        return "urgent"
    return None


def hypothetical(text: str) -> bool:
    """Is the message a general question about what could happen (no event described)?"""
    return bool(_HYPOTHETICAL.search(text.strip()))


def route(text: str) -> Route:
    """The route of a cleaned message: crisis and urgent first, then declined, then closing.

    Crisis and urgent patterns also run on the message with red-flag misspellings fixed.
    An urgent red flag in a general question about risks is left to the semantic triage
    (``assistant.triage``), which reads it as a signal; crisis language always routes."""
    flag = red_flag(text)
    if flag == "crisis" or (flag == "urgent" and not hypothetical(text)):
        return flag
    if _DECLINED.search(text):
        return "declined"
    if _CLOSING.search(text.strip()):
        return "closing"
    return "question"
