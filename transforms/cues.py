"""Call-to-action lines in any wording (plain functions, no Beam).

The pattern families of `clutter.yaml` name whole phrasings; a site's own
"Get the Morning Dispatch in your inbox" is in none of them. What such lines
share is their words: they ask the reader to act, in imperatives and fixed
phrases (subscribe to, sign up, turn off your ad blocker, donate now,
download the app) that open or end the line or speak to the reader (you,
your, free), in few words. A sentence of reporting that uses the same words
speaks about someone (said, according to, the ministry), and a heading with
a noun of the field ("NATO membership") asks nothing. The words are data
(`schemas/data/cues.yaml`); the rule is `is_cue_line`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from schemas import load_data
from schemas.settings import CleanSettings

from .textnorm import fold

# A line that opens with a quotation mark, a dash (dialogue; or a list item,
# kept to be safe) or an interview's "Q:" is never the site's appeal.
_QUOTED = re.compile(r"^\s*(?:[\"“”„«»‘’‹›'「『—–-]|(?:Q|A|В|О|S|P|R|F)\s*:)")


@dataclass(frozen=True)
class CueWords:
    appeal: re.Pattern
    disclosure: re.Pattern
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
                      for kind in ("appeal", "disclosure", "cue", "address", "report")))


def is_cue_line(line: str, cues: CueWords, settings: CleanSettings, folded: str | None = None) -> bool:
    """A short line that asks the reader to act: no reporting, and an appeal
    that opens or ends the line or speaks to the reader, or a disclosure. Longer
    lines need one more cue word; quotations and dialogue are never appeals.
    `folded`: the line folded, when the caller has it."""
    folded = fold(line) if folded is None else folded
    words = len(folded.split())
    if not words or words > settings.cue_max_words or _QUOTED.match(line) or cues.report.search(folded):
        return False
    appeals = list(cues.appeal.finditer(folded))
    asks = bool(appeals) and (appeals[0].start() == 0 or appeals[-1].end() == len(folded)
                              or cues.address.search(folded) is not None)
    if not (asks or cues.disclosure.search(folded)):
        return False
    if words <= settings.cue_one_cue_max_words:
        return True
    found = len(appeals) + len(cues.disclosure.findall(folded)) + len(cues.cue.findall(folded))
    return found >= 2
