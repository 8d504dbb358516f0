"""Line-level clutter detection for the clean stage (plain functions, no Beam).

Extractors keep whatever a site puts inside its article container. Each line
of extracted text is judged by these kinds of evidence:

- patterns: the clutter families of `schemas/data/clutter.yaml` (share,
  follow, subscribe, ad-blocker, cookie, comments, navigation, copyright,
  view counters, ... in English, Arabic, French, German, Spanish, Russian and
  Turkish), matched against the whole line;
- structure: short lines without sentence punctuation before the headline or
  at the very end of the body (breadcrumbs, section labels, tag lists), lines
  made of the page's own link texts (related-article lists, share bars);
- learned evidence (`LineEvidence`, `PageSignals.furniture`): widgets the
  page's markup labels (`transforms/furniture.py`), call-to-action lines in
  any wording (`transforms/cues.py`), lines seen as boilerplate across many
  sources (`transforms/boilerplate.py`) -- never more than half of a page;
- the site itself: lines that repeat across a source's articles are removed
  afterwards, by `transforms/templates.py`, with the key `template_key` gives.

Every removal is named, so users can audit what was taken out.
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Container
from dataclasses import dataclass, field

from schemas import data_text, load_data
from schemas.settings import CleanSettings

from .cues import CueWords, is_cue_line
from .textnorm import arabic_letters, fold, strip_marks

_LOG = logging.getLogger(__name__)

# Bullets, arrows and separators around a line say nothing about its content.
_EDGE_PUNCT = re.compile(r"^[\s\-–—•·*»›>|:]+|[\s.:!?»›…|\-–—•·*]+$")
_SENTENCE_PUNCT = re.compile(r"[.!?;:\"“”«»،؟。！？]")
_SENTENCE_END = re.compile(r"[.!?…\"“”»)。！？؟]\s*$")
_BREADCRUMB_SEPARATOR = re.compile(r"\s[›»>/|]\s|›|»")
# Two section names an extractor glued together: "Middle EastWar". Three
# letters on each side, so McGurk, YouTube and iPhone are not breadcrumbs.
_GLUED_WORDS = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z]{2})")
_DATE_LIKE = re.compile(r"\d")
# The longest clutter patterns allow about 300 characters; longer lines are
# prose and are not matched at all (which also bounds regex time per line).
LONGEST_CLUTTER_LINE = 400


@dataclass(frozen=True)
class ClutterFamily:
    name: str
    pattern: re.Pattern
    trailer: bool


def _unmarked(text: str) -> str:
    """Accents, Arabic hamza marks and letter variants removed; case is left
    to re.IGNORECASE (lower-casing would also turn regex escapes like \\S
    into others). Applied alike to patterns and to lines."""
    return arabic_letters(strip_marks(text))


def load_clutter_families(text: str | None = None) -> tuple[ClutterFamily, ...]:
    """Compile the clutter families of the YAML data file (or of `text`)."""
    families = load_data("clutter.yaml", text)["families"]
    return tuple(
        ClutterFamily(name, re.compile("^(?:" + "|".join(_unmarked(p) for p in spec["patterns"]) + ")$",
                                       re.IGNORECASE),
                      bool(spec.get("trailer", False)))
        for name, spec in families.items())


def clutter_family(line: str, families: tuple[ClutterFamily, ...]) -> ClutterFamily | None:
    """The family a whole line belongs to, or None for text."""
    if len(line) > LONGEST_CLUTTER_LINE:
        return None
    probe = " ".join(_unmarked(_EDGE_PUNCT.sub("", line.strip())).split())
    if not probe:
        return None
    return next((family for family in families if family.pattern.match(probe)), None)


def is_section_label(line: str, max_words: int) -> bool:
    """A short line without sentence punctuation: a breadcrumb or section name."""
    words = re.findall(r"\w+", line)
    return 0 < len(words) <= max_words and not _SENTENCE_PUNCT.search(line)


def is_breadcrumb(line: str) -> bool:
    """Section names joined by separators ("Home › World") or glued together
    by an extractor that dropped the separators ("Middle EastWar")."""
    return bool(_BREADCRUMB_SEPARATOR.search(line) or _GLUED_WORDS.search(line))


def template_key(line: str) -> str:
    """The key under which a line is counted as (possibly) a site's template:
    folded, so case and punctuation variants meet. Numbers are kept: a daily
    report's formula with today's figures is news, not template."""
    return fold(line)


def line_hash(line: str) -> str:
    """Hash of a line's template key: what the state remembers of a line."""
    return folded_hash(template_key(line))


def folded_hash(key: str) -> str:
    """`line_hash` of a line whose template key is `key`."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


@dataclass(frozen=True)
class PageSignals:
    """What the page itself tells about its furniture."""

    title: str | None = None
    # Section or category names the page declares (folded).
    sections: Container[str] = frozenset()
    # Texts of the page's blocks that are nothing but links (folded).
    link_only: Container[str] = frozenset()
    # Texts of the small elements its markup names as furniture (folded;
    # `transforms/furniture.py`).
    furniture: Container[str] = frozenset()
    # All are asked only about short lines, so they may be worked out on first use.


@dataclass(frozen=True)
class LineEvidence:
    """Evidence that holds on any site: call-to-action cue words
    (`transforms/cues.py`) and the hashes of lines seen as boilerplate
    across many sources (`transforms/boilerplate.py`)."""
    cues: CueWords | None = None
    boilerplate: Container[str] = frozenset()


NO_EVIDENCE = LineEvidence()


@dataclass(frozen=True)
class CleanText:
    text: str
    section: str | None
    removed: tuple[str, ...] = field(default=())


def remove_clutter(paragraphs: list[str], signals: PageSignals,
                   families: tuple[ClutterFamily, ...], settings: CleanSettings,
                   evidence: LineEvidence = NO_EVIDENCE) -> CleanText:
    """Lines of extracted text without the page's furniture, and what was removed."""
    lines = [line.strip() for line in paragraphs if line.strip()]
    removed: list[str] = []
    lines, sections = _strip_head(lines, signals, families, settings, removed)
    lines = _strip_body(lines, _LineJudge(signals, families, settings, evidence), removed)
    lines = _strip_tail(lines, signals, settings, removed)
    return CleanText("\n\n".join(lines), " › ".join(sections) or None, tuple(removed))


def _section_name(line: str) -> str:
    return " › ".join(part.strip() for part in
                      re.split(r"\s*[›»>/|]\s*", _GLUED_WORDS.sub(" › ", line)) if part.strip())


def _strip_head(lines, signals, families, settings, removed) -> tuple[list[str], list[str]]:
    """The headline (it has its own column) and the furniture before it.

    Before a headline found among the first lines, short labels are section
    names, date lines are datelines of the template. Without a headline only
    lines that are clearly labels go: a declared section name or a breadcrumb.
    """
    sections: list[str] = []
    folded_title = fold(signals.title) if signals.title else None
    headline = next((index for index, line in enumerate(lines[:settings.head_max_lines])
                     if folded_title and fold(line) == folded_title), None)
    if headline is not None:
        kept_head = []
        for line in lines[:headline]:
            family = clutter_family(line, families)
            if family is not None:
                removed.append(family.name)
            elif _DATE_LIKE.search(line) and len(line.split()) <= settings.section_label_max_words * 2:
                removed.append("dateline")
            elif is_section_label(line, settings.section_label_max_words):
                sections.append(_section_name(line))
                removed.append("section")
            else:
                kept_head.append(line)
        removed.append("headline")
        lines = kept_head + lines[headline + 1:]
    while len(lines) > 1:
        line = lines[0]
        family = clutter_family(line, families)
        if family is not None and not family.trailer:
            removed.append(family.name)
        elif is_section_label(line, settings.section_label_max_words) and (
                fold(line) in signals.sections or is_breadcrumb(line)):
            sections.append(_section_name(line))
            removed.append("section")
        else:
            break
        lines = lines[1:]
    return lines, sections


class _LineJudge:
    """Why one line of a page is furniture, by every kind of line evidence."""

    def __init__(self, signals: PageSignals, families: tuple[ClutterFamily, ...],
                 settings: CleanSettings, evidence: LineEvidence, use_learned: bool = True):
        self.signals, self.families, self.settings, self.evidence = signals, families, settings, evidence
        self.use_learned = use_learned

    def without_learned(self) -> _LineJudge:
        """The same judge with patterns and links only."""
        return _LineJudge(self.signals, self.families, self.settings, self.evidence, use_learned=False)

    def family(self, line: str) -> ClutterFamily | None:
        return clutter_family(line, self.families)

    def learned(self, line: str) -> str | None:
        """The name of the evidence beyond the patterns that takes the line, if any."""
        if not self.use_learned:
            return None
        words = len(line.split())
        settings = self.settings
        if words > max(settings.structure_line_max_words, settings.cue_max_words,
                       settings.cross_source_max_words):
            return None
        folded = fold(line)
        if words <= settings.structure_line_max_words and folded in self.signals.furniture:
            return "structure"
        if self.evidence.cues is not None and is_cue_line(line, self.evidence.cues, settings, folded):
            return "cue"
        if words <= settings.cross_source_max_words and folded_hash(folded) in self.evidence.boilerplate:
            return "cross-source"
        return None

    def removal_name(self, line: str) -> str | None:
        family = self.family(line)
        return family.name if family is not None else self.learned(line)

    def is_prose(self, line: str) -> bool:
        """Whether a line may be the article's: anything that is not a link
        of the page nor furniture by some evidence. An unlinked heading or
        list item after a misplaced marker is the article's."""
        if len(line.split()) > self.settings.trailer_line_max_words:
            return True
        return fold(line) not in self.signals.link_only and self.removal_name(line) is None

    def is_trailer(self, rest: list[str]) -> bool:
        """What follows a trailer marker is the site's trailer only if it is
        short in all and every line of it is a link or furniture. One line
        of the article after a misplaced "You may also like" keeps everything."""
        return (sum(len(part.split()) for part in rest) <= self.settings.trailer_max_words
                and not any(self.is_prose(part) for part in rest))


def _strip_body(lines: list[str], judge: _LineJudge, removed: list[str]) -> list[str]:
    """Clutter lines anywhere; a trailer marker also takes the rest when it
    is no prose; blocks of consecutive link-only lines (related stories, tag
    clouds). Learned evidence (structure, cues, cross-source) that would take
    most of the text is wrong about this page, and is not used on it."""
    families = [judge.family(line) for line in lines]
    learned = [judge.learned(line) if family is None else None
               for line, family in zip(lines, families, strict=True)]
    learned_words = sum(len(line.split()) for line, name in zip(lines, learned, strict=True) if name)
    if learned_words > judge.settings.learned_max_share * sum(len(line.split()) for line in lines):
        judge = judge.without_learned()
        learned = [None] * len(lines)
    kept: list[str] = []
    for index, (line, family) in enumerate(zip(lines, families, strict=True)):
        if family is None:
            if learned[index] is None:
                kept.append(line)
            else:
                removed.append(learned[index])
            continue
        removed.append(family.name)
        rest = lines[index + 1:]
        if family.trailer and judge.is_trailer(rest):
            removed.extend(judge.removal_name(part) or "trailer" for part in rest)
            break
    return _strip_link_blocks(kept, judge.signals, judge.settings, removed)


def _may_be_link(line: str, settings: CleanSettings) -> bool:
    return len(line.split()) <= settings.link_list_max_words and not _SENTENCE_END.search(line)


def _strip_link_blocks(lines, signals, settings, removed) -> list[str]:
    """Runs of at least `link_block_min_lines` link-only lines go; a single
    linked line amid prose is a reference the author chose, and stays.
    Only lines in a long enough run of short lines are looked up."""
    flags = _runs_of([_may_be_link(line, settings) for line in lines], settings.link_block_min_lines)
    flags = [flag and fold(line) in signals.link_only for flag, line in zip(flags, lines, strict=True)]
    flags = _runs_of(flags, settings.link_block_min_lines)
    removed.extend("link-list" for flag in flags if flag)
    return [line for flag, line in zip(flags, lines, strict=True) if not flag]


def _runs_of(flags: list[bool], min_length: int) -> list[bool]:
    """The flags that stand in a run of at least `min_length` set flags."""
    kept, start = [False] * len(flags), 0
    while start < len(flags):
        end = start
        while end < len(flags) and flags[end] == flags[start]:
            end += 1
        if flags[start] and end - start >= min_length:
            kept[start:end] = [True] * (end - start)
        start = end
    return kept


def _strip_tail(lines, signals, settings, removed) -> list[str]:
    """Short labels ending the body that are links or declared sections: tags
    and categories of the template. A short unlinked last line (a sign-off, a
    heading of a final list) stays. Never more than a few, never the last line."""
    dropped = 0
    while (len(lines) > 1 and dropped < settings.tail_label_max_lines
           and is_section_label(lines[-1], settings.tail_label_max_words)
           and (fold(lines[-1]) in signals.sections or fold(lines[-1]) in signals.link_only)):
        lines = lines[:-1]
        removed.append("tail-label")
        dropped += 1
    return lines


def load_starting_boilerplate(text: str | None = None) -> frozenset[str]:
    """Line hashes of the shipped memory ("sites<TAB>folded line" per line);
    none, with a warning, when the file cannot be read."""
    if text is None:
        try:
            text = data_text("boilerplate.txt")
        except (OSError, UnicodeDecodeError) as error:
            _LOG.warning("the starting boilerplate memory schemas/data/boilerplate.txt is unreadable "
                         "(%s: %s); cleaning without it", type(error).__name__, error)
            return frozenset()
    return frozenset(line_hash(row.split("\t", 1)[-1]) for row in text.splitlines()
                     if row.strip() and not row.startswith("#"))
