"""Reading what a user typed: whole-word triggers, the task a command is about, dependencies.

The reference matched substrings ("address" triggered CREATE_TASK) and stripped words so eagerly
that "resume task-3" lost its id and "find task named Deploy to prod" lost the "to". Here words
are whole words, id-like tokens survive, and a name after "named"/"called" is taken verbatim.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

MAX_TEXT = 20_000
"""The longest request text an action accepts."""

# Letters and digits of any script ("[^\W_]"): a name such as "Отчёт" or "naïve parser" is
# made of words too.
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_PLAIN_WORD = re.compile(r"[^\W_]+")  # for triggers: "task-3" holds the word "task"

_VERBS = frozenset(
    [
        "switch",
        "select",
        "go",
        "change",
        "search",
        "find",
        "look",
        "pause",
        "stop",
        "halt",
        "resume",
        "restart",
        "continue",
        "start",
        "run",
        "begin",
        "cancel",
        "delete",
        "remove",
        "abort",
        "list",
        "show",
        "view",
    ]
)
_FILLERS = frozenset(
    ["about", "for", "named", "called", "with", "to", "my", "your", "our", "this", "current"]
)
_NOUNS = frozenset(["task", "tasks", "the", "a", "an"])
_DROPPED = _VERBS | _FILLERS | _NOUNS

# "named X" / "called X": everything after is the name, as typed.
_NAMED = re.compile(r"\b(?:named|called)\s+[\"'“]?(.+?)[\"'”]?\s*[.!?]?\s*$", re.I | re.S)
# An id-like token: has a digit and a hyphen ("task-3"), or is a long hex run (a uuid prefix).
_ID_LIKE = re.compile(r"^(?=.*\d)[a-z0-9]+(?:-[a-z0-9]+)+$|^[0-9a-f]{6,}(?:-[0-9a-f-]*)?$", re.I)
# A single quote opens only where no letter comes before it and closes only where none follows,
# so the apostrophe in "Bob's report" or "Don't" is not taken for one.
_QUOTED = re.compile(r"[\"“]([^\"”]+)[\"”]|(?<!\w)'(.+?)'(?!\w)|(?<!\w)‘(.+?)’(?!\w)")


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (letters and digits, with inner hyphens kept)."""
    return _WORD.findall(text.lower())


def has_word(text: str, *candidates: str) -> bool:
    """True when one of ``candidates`` is a whole word of ``text`` ("task" also matches "tasks")."""
    found = set(_PLAIN_WORD.findall(text.lower()))
    return any(word in found or f"{word}s" in found for word in candidates)


def has_verb(text: str, *verbs: str) -> bool:
    """True when one of ``verbs`` is a whole word of ``text``, also inflected: "cancel" matches
    "cancels", "cancelling", "canceled"; "pause" matches "pausing" and "paused"; "stop" matches
    "stopping" and "stopped"."""
    found = set(_PLAIN_WORD.findall(text.lower()))
    return any(not found.isdisjoint(_inflections(verb)) for verb in verbs)


def _inflections(verb: str) -> set[str]:
    stem = verb[:-1] if verb.endswith("e") else verb
    forms = {verb, f"{verb}s", f"{stem}ing", f"{stem}ed"}
    # A doubled last consonant: "stopping", "cancelled" (and the single-l "canceled" above).
    forms |= {f"{verb}{verb[-1]}ing", f"{verb}{verb[-1]}ed"}
    return forms


def first_of(text: str, exact: Iterable[str], inflected: Iterable[str]) -> str | None:
    """The first word of ``text`` that is one of ``exact`` or an inflected form of one of
    ``inflected`` (see ``has_verb``): that word's base form, or None."""
    forms = {word: word for word in exact}
    for verb in inflected:
        for form in _inflections(verb):
            forms.setdefault(form, verb)
    for word in _PLAIN_WORD.findall(text.lower()):
        if word in forms:
            return forms[word]
    return None


def has_phrase(text: str, *phrases: str) -> bool:
    """True when one of ``phrases`` appears in ``text`` as whole words ("task" also matching
    "tasks")."""
    joined = " ".join(_PLAIN_WORD.findall(text.lower()))
    for phrase in phrases:
        pattern = r"\s".join(
            "tasks?" if word == "task" else re.escape(word) for word in phrase.split()
        )
        if re.search(rf"\b{pattern}\b", joined):
            return True
    return False


def extract_query(text: str) -> str:
    """The task a command is about: a quoted name, the name after "named"/"called", an id-like
    token, or what is left after dropping command words."""
    quoted = _QUOTED.search(text)
    if quoted:
        return (quoted.group(1) or quoted.group(2) or quoted.group(3)).strip()
    named = _NAMED.search(text)
    if named:
        return named.group(1).strip()
    tokens = [token.strip(".,!?;:()[]") for token in text.split()]
    for token in tokens:
        if _ID_LIKE.match(token):
            return token
    kept = [word for word in words(text) if word not in _DROPPED]
    return " ".join(kept)


# Only forms that say a task is meant: "once X is done", "after the X task", "depends on X".
# Plain prose ("the crash that happens after login", "the following features") is not read as a
# dependency.
# A name of one to four words, within one clause: "and", "then" and punctuation end it.
_NAME = r"((?:(?!(?:and|then)\b)[^\s.,;!?]+\s+){0,3}?(?!(?:and|then)\b)[^\s.,;!?]+)"
# Before "task(s)", which closes the phrase, names joined by "and": "the login and signup tasks".
_NAMES = r"((?:(?!then\b)[^\s.,;!?]+\s+){0,4}?(?!then\b)[^\s.,;!?]+)"
_AFTER = re.compile(
    rf"\b(?:after|following)\s+(?:the\s+)?{_NAMES}\s+tasks?\b"
    rf"|\b(?:after|once|when)\s+(?:the\s+)?{_NAME}(?:\s+tasks?)?\s+"
    r"(?:is\s+|are\s+|has\s+been\s+)?(?:done|finished|completed|complete)\b"
    r"|\b(?:depends?\s+on|depending\s+on)\s+(?:the\s+)?(.+?)(?:\s+tasks?)?\s*(?=[.,;!?]|$)",
    re.I,
)
_AND = re.compile(r"\s*(?:,|\band\b)\s*(?:the\s+)?", re.I)


def dependency_names(text: str) -> list[str]:
    """Tasks a request says it must wait for: "... after the login task", "once build is done",
    "depends on A and B". Each name is returned as typed, without "the" and "task"."""
    names: list[str] = []
    for match in _AFTER.finditer(text):
        phrase = (match.group(1) or match.group(2) or match.group(3) or "").strip()
        for part in _AND.split(phrase):
            part = re.sub(r"\s+tasks?$", "", part.strip(), flags=re.I).strip(" \"'“”‘’")
            if part and part not in names:
                names.append(part)
    return names


def text_problem(text: str) -> str | None:
    """Why a request text cannot be used (too long, control characters), or None."""
    if len(text) > MAX_TEXT:
        return f"The request is too long ({len(text):,} characters; at most {MAX_TEXT:,})."
    for char in text:
        if (char not in "\n\r\t" and unicodedata.category(char) == "Cc") or char in _BIDI_CONTROLS:
            return (
                f"The request contains a control character (U+{ord(char):04X}); "
                "remove it and try again."
            )
    return None


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""The embeddings, overrides and isolates that reorder how text is shown ("Trojan Source"). Other
format characters are ordinary chat text: the joiner in 👩‍💻, a right-to-left mark, a soft
hyphen."""
