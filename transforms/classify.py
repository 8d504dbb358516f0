"""Classify stage: language, actors (with the primary one) and event types.

Actors come from the gazetteer data file. Names and text are cut into words
and each word folded (`fold_word`): case, diacritics, apostrophes, possessive
's, Arabic letter variants and common transliteration pairs all meet, so
"Shuhada’a’ Al-Qaryatayn" and "Shuhada al-Qaryatain" are the same words. One
pass over the words looks each up in a dict of alias starts and takes the
longest alias there; `exact` words (acronyms) are matched as written.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

import apache_beam as beam
from apache_beam.metrics import Metrics
from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException

from schemas import load_data
from schemas.records import Article, Mention
from schemas.settings import METRICS_NAMESPACE, ClassifySettings

from .textnorm import arabic_letters, strip_marks

NO_ACTOR = "none"
UNDETERMINED = "und"

# Dotted acronyms (U.S., U.N.) first, then words with inner apostrophes.
_WORD = re.compile(r"(?:[A-Z]\.){2,}|\w+(?:['’ʼ‘`´]\w*)*", re.UNICODE)
# The Arabic article written in Latin letters and joined by a hyphen:
# al-Qaeda, el-Sisi, ash-Sham, at-Tanf, ar-Raqqa.
_ARTICLE_PREFIX = re.compile(r"\b(?:al|el|ad|an|ar|as|ash|at|ath|az|adh)[-‐‑](?=\w)", re.IGNORECASE)
_ARTICLE_WORDS = frozenset({"al", "el"})
_APOSTROPHES = re.compile(r"['’ʼ‘`´]")
_POSSESSIVE = re.compile(r"['’ʼ‘`´]s$", re.IGNORECASE)
# Latin transliteration pairs folded to one spelling; applied in order.
_TRANSLITERATION = (("ou", "u"), ("oo", "u"), ("o", "u"), ("ee", "i"), ("e", "i"),
                    ("y", "i"), ("q", "k"), ("dh", "d"))
_REPEATS = re.compile(r"(.)\1+")


def fold_word(word: str) -> str:
    """One spelling for the variants of a word (see the module docstring)."""
    word = _POSSESSIVE.sub("", strip_marks(word)).casefold()
    word = arabic_letters(_APOSTROPHES.sub("", word))
    if word.isascii():
        for variant, folded in _TRANSLITERATION:
            word = word.replace(variant, folded)
        word = _REPEATS.sub(r"\1", word)
        if len(word) > 3 and word.endswith("h") and word[-2] in "aiu":
            word = word[:-1]
    elif word.startswith("ال") and len(word) > 4:
        word = word[2:]
    return word


def words_of(text: str) -> list[tuple[str, str]]:
    """(as written, folded) for every word, the Arabic article dropped."""
    text = _ARTICLE_PREFIX.sub("", strip_marks(text))
    out = []
    for match in _WORD.finditer(text):
        raw = _POSSESSIVE.sub("", match.group().replace(".", ""))
        folded = fold_word(raw)
        if folded and folded not in _ARTICLE_WORDS:
            out.append((raw, folded))
    return out


@dataclass(frozen=True)
class Actor:
    id: str
    name: str
    type: str


class Gazetteer:
    """The actors and a one-pass matcher over their aliases."""

    def __init__(self, spec: dict):
        self.actors: dict[str, Actor] = {}
        self._starts: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        self._exact: dict[str, str] = {}
        for entry in spec["actors"]:
            actor = Actor(entry["id"], entry["name"], entry["type"])
            if actor.id in self.actors:
                raise ValueError(f"gazetteer lists actor {actor.id!r} twice")
            self.actors[actor.id] = actor
            for alias in entry.get("aliases", []):
                folded = tuple(folded for _, folded in words_of(alias))
                if folded:
                    self._starts.setdefault(folded[0], []).append((folded, actor.id))
            for word in entry.get("exact", []):
                self._exact[word.replace(".", "")] = actor.id
        for candidates in self._starts.values():
            candidates.sort(key=lambda candidate: -len(candidate[0]))

    @classmethod
    def load(cls, text: str | None = None) -> Gazetteer:
        return cls(load_data("gazetteer.yaml", text))

    def find(self, text: str) -> list[str]:
        """Actor id of every mention in `text`, in order of appearance."""
        words = words_of(text)
        folded = [word for _, word in words]
        found, index = [], 0
        while index < len(words):
            length, actor = self._longest_alias(folded, index)
            if actor is None and words[index][0] in self._exact:
                length, actor = 1, self._exact[words[index][0]]
            if actor is not None:
                found.append(actor)
                index += length
            else:
                index += 1
        return found

    def _longest_alias(self, folded: list[str], index: int) -> tuple[int, str | None]:
        for alias, actor in self._starts.get(folded[index], ()):
            if tuple(folded[index:index + len(alias)]) == alias:
                return len(alias), actor
        return 0, None


def tag_actors(title: str, text: str, gazetteer: Gazetteer,
               title_weight: int) -> tuple[tuple[Mention, ...], str]:
    """Mentions per actor and the primary actor.

    Primary: highest count with title mentions weighted up; ties go to the
    actor named first (title before text), then to the smaller id.
    """
    in_title = gazetteer.find(title)
    in_text = gazetteer.find(text)
    counts = Counter(in_title) + Counter(in_text)
    if not counts:
        return (), NO_ACTOR
    title_counts = Counter(in_title)
    first_seen = {actor: position for position, actor in reversed(list(enumerate(in_title + in_text)))}
    mentions = tuple(Mention(actor, counts[actor], actor in title_counts) for actor in sorted(counts))
    primary = min(counts, key=lambda actor: (
        -(counts[actor] + (title_weight - 1) * title_counts[actor]), first_seen[actor], actor))
    return mentions, primary


def detect_language(text: str, settings: ClassifySettings) -> tuple[str, float]:
    """ISO code and probability; `und` when the text is too short to tell."""
    sample = text[: settings.language_prefix_chars]
    if sum(ch.isalpha() for ch in sample) < settings.language_min_chars:
        return UNDETERMINED, 0.0
    try:
        best = detect_langs(sample)[0]
    except LangDetectException:
        return UNDETERMINED, 0.0
    return best.lang, round(best.prob, 3)


@dataclass(frozen=True)
class EventType:
    name: str
    pattern: re.Pattern
    min_hits: int


def load_event_types(text: str | None = None) -> tuple[EventType, ...]:
    spec = load_data("event_types.yaml", text)["event_types"]
    return tuple(
        EventType(name, re.compile(r"\b(?:" + "|".join(entry["patterns"]) + r")\b", re.IGNORECASE),
                  int(entry.get("min_hits", 1)))
        for name, entry in spec.items())


def event_types_of(title: str, text: str, types: tuple[EventType, ...]) -> tuple[str, ...]:
    body = f"{title}\n{text}"
    return tuple(sorted(kind.name for kind in types
                        if len(kind.pattern.findall(body)) >= kind.min_hits))


class Classifier:
    """Language, actors and event types for one article; built once per worker."""

    def __init__(self, settings: ClassifySettings, gazetteer: Gazetteer | None = None,
                 event_types: tuple[EventType, ...] | None = None):
        self.settings = settings
        self.gazetteer = gazetteer or Gazetteer.load()
        self.event_types = event_types if event_types is not None else load_event_types()
        # langdetect is random unless seeded; the seed is process-wide.
        DetectorFactory.seed = 0

    def classify(self, article: Article) -> Article:
        language, confidence = detect_language(article.text, self.settings)
        mentions, primary = tag_actors(article.title, article.text, self.gazetteer,
                                       self.settings.title_weight)
        return replace(
            article, language=language, language_confidence=confidence,
            actors=tuple(mention.actor for mention in mentions), mentions=mentions,
            primary_actor=primary,
            event_types=event_types_of(article.title, article.text, self.event_types))


class _ClassifyFn(beam.DoFn):
    def __init__(self, settings: ClassifySettings):
        self.settings = settings

    def setup(self):
        self.classifier = Classifier(self.settings)

    def process(self, article: Article):
        classified = self.classifier.classify(article)
        Metrics.counter(METRICS_NAMESPACE, f"classify/language/{classified.language}").inc()
        yield classified


class ClassifyArticles(beam.PTransform):
    """Article -> the same Article with language, actors and event types set."""

    def __init__(self, settings: ClassifySettings):
        super().__init__()
        self.settings = settings

    def expand(self, articles):
        return articles | "Classify" >> beam.ParDo(_ClassifyFn(self.settings))
