"""Call-to-action lines in any wording (plain functions, no Beam).

The pattern families of `clutter.yaml` name whole phrasings; a site's own
"Get the Morning Dispatch in your inbox" is in none of them. What such lines
share is their words: they ask the reader to act (subscribe, sign up, turn
off the ad blocker, donate, share, download) and speak to the reader (you,
your, now, free), in few words. A sentence of reporting that uses the same
words speaks about someone (said, according to, the ministry). The words are
data (`schemas/data/cues.yaml`); the rule is `is_cue_line`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from schemas import load_data
from schemas.settings import CleanSettings

from .textnorm import fold

# A line that opens with a quotation mark is someone's words, never the site's appeal.
_QUOTED = re.compile(r"^\s*[\"“”„«»‘’‹›'「『]")


@dataclass(frozen=True)
class CueWords:
    cue: re.Pattern
    address: re.Pattern
    report: re.Pattern


def _words_pattern(entries: list[str]) -> re.Pattern:
    """One regex over folded text for entries of all languages: "sign up"
    in a row, "subscrib*" with any ending, whole words only."""
    alternatives = {re.escape(fold(entry.rstrip("*"))) + (r"\w*" if entry.endswith("*") else "")
                    for entry in entries if fold(entry.rstrip("*"))}
    ordered = sorted(alternatives, key=len, reverse=True)  # longest first: "sign up" before "sign"
    return re.compile(r"(?<!\w)(?:" + "|".join(ordered) + r")(?!\w)")


def load_cue_words(text: str | None = None) -> CueWords:
    spec = load_data("cues.yaml", text)
    return CueWords(*(_words_pattern([entry for entries in spec[kind].values() for entry in entries])
                      for kind in ("cue", "address", "report")))


def is_cue_line(line: str, cues: CueWords, settings: CleanSettings, folded: str | None = None) -> bool:
    """A short line that asks the reader to act: a cue and no reporting, and
    either speaking to the reader or made mostly of cues ("Sign Up", "Join
    our mailing list"). Longer lines need two cues; quotations are never
    appeals. `folded`: the line folded, when the caller has it."""
    folded = fold(line) if folded is None else folded
    words = len(folded.split())
    if not words or words > settings.cue_max_words or _QUOTED.match(line):
        return False
    if cues.report.search(folded):
        return False
    found = cues.cue.findall(folded)
    if not found or (words > settings.cue_one_cue_max_words and len(found) < 2):
        return False
    if words <= settings.cue_one_cue_max_words and 2 * sum(len(cue.split()) for cue in found) >= words:
        return True  # mostly cues: "Sign Up", "Join our mailing list"
    return cues.address.search(folded) is not None
