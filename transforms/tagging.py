"""Language, actors (with the primary one) and event types of an article:
the classify stage's core, without Beam (`news-ingest extract` and the
benchmarks use it alone; transforms/classify.py runs it in the pipeline).

Actors come from the gazetteer data file. Names and text are cut into words
and each word folded (`fold_word`): case, diacritics, apostrophes, possessive
's, Arabic letter variants and common transliteration pairs all meet, so
"Shuhada’a’ Al-Qaryatayn" and "Shuhada al-Qaryatain" are the same words. One
pass over the words looks each up in a dict of alias starts and takes the
longest alias there; `exact` words (acronyms) are matched as written.
"""
from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, replace

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from schemas import data_text, load_data
from schemas.records import Article, Mention
from schemas.settings import VERSION, ClassifySettings

from .outlets import OutletFacts
from .textnorm import arabic_letters, strip_marks

NO_ACTOR = "none"
# Distinct words whose folded form a Gazetteer remembers (a few MB at most).
MAX_FOLD_CACHE = 200_000
UNDETERMINED = "und"

# Dotted acronyms (U.S., U.N.) first, then words with inner apostrophes.
_WORD = re.compile(r"(?:[A-Z]\.){2,}|\w+(?:['’ʼ‘`´]\w*)*", re.UNICODE)
# The Arabic article written in Latin letters and joined by a hyphen:
# al-Qaeda, el-Sisi, ash-Sham, at-Tanf, ar-Raqqa.
_ARTICLE_PREFIX = re.compile(r"\b(?:al|el|ad|an|ar|as|ash|at|ath|az|adh)[-‐‑](?=\w)", re.IGNORECASE)
_ARTICLE_WORDS = frozenset({"al", "el"})
_APOSTROPHES = re.compile(r"['’ʼ‘`´]")
# Turkish case endings after an apostrophe: YPG'nin, Rusya'nın, Şam'da.
_TURKISH_SUFFIX = re.compile(r"['’](?:n?[ıiuü]n|n?[dt][ae]n?|[dt][ae]ki|y?[ıiuüea]|l[ae]|l[ıiuü]|n[ae])$")
# French elision: l'État, d'Alep, qu'Ankara.
_ELISION = re.compile(r"^(?:l|d|qu)['’ʼ‘`´](?=\w)", re.IGNORECASE)
_POSSESSIVE = re.compile(r"['’ʼ‘`´]s$", re.IGNORECASE)
# Latin transliteration pairs folded to one spelling; applied in order.
_TRANSLITERATION = (("ou", "u"), ("oo", "u"), ("o", "u"), ("ee", "i"), ("e", "i"),
                    ("y", "i"), ("q", "k"), ("dh", "d"))
_REPEATS = re.compile(r"(.)\1+")


def fold_word(word: str) -> str:
    """One spelling for the variants of a word (see the module docstring)."""
    word = _ELISION.sub("", _POSSESSIVE.sub("", strip_marks(word)).casefold())
    word = arabic_letters(_APOSTROPHES.sub("", word))
    if word.isascii():
        for variant, folded in _TRANSLITERATION:
            word = word.replace(variant, folded)
        word = _REPEATS.sub(r"\1", word)
        if len(word) > 3 and word.endswith("h") and word[-2] in "aiu":
            word = word[:-1]
    else:
        word = _arabic_clitics(word)
    return word


def _arabic_clitics(word: str) -> str:
    """The Arabic word without its article, the particles written onto it --
    و ف (and), ب (with), ك (like), ل (for): "وقوات", "للتحالف", "لداعش",
    "بالرقة" -- and the feminine ending of an adjective ("إسرائيلية" ==
    "إسرائيلي"). Aliases are folded alike, so a word that merely starts with
    one of these letters still meets itself."""
    if word.startswith(("و", "ف")) and len(word) >= 4:
        word = word[1:]
    if word.startswith("لل") and len(word) >= 4:
        word = word[2:]
    elif word.startswith(("ب", "ك", "ل")) and len(word) >= 4:
        word = word[1:]
    if word.startswith("ال") and len(word) >= 4:
        word = word[2:]
    if word.endswith("يه") and len(word) >= 5:
        word = word[:-1]
    return word


def words_of(text: str, fold=fold_word) -> list[tuple[str, str]]:
    """(as written, folded) for every word, the Arabic article dropped.
    `fold` may be a memoised fold_word (Gazetteer keeps one)."""
    text = _ARTICLE_PREFIX.sub("", strip_marks(text))
    out = []
    for match in _WORD.finditer(text):
        raw = match.group()
        if "." in raw or "'" in raw or "’" in raw:
            raw = _ELISION.sub("", _TURKISH_SUFFIX.sub("", _POSSESSIVE.sub("", raw.replace(".", ""))))
        folded = fold(raw)
        if folded and folded not in _ARTICLE_WORDS:
            out.append((raw, folded))
    return out


@dataclass(frozen=True)
class Actor:
    id: str
    name: str
    type: str


@dataclass(frozen=True)
class _Alias:
    actor: str
    words: tuple[str, ...]
    needs_context: bool


class Gazetteer:
    """The actors and a one-pass matcher over their aliases, with the rules
    that keep ambiguous words from counting (see gazetteer.yaml):

    - context: aliases listed under `needs_context` ("Coalition", "the
      regime", "Jordan") count only in an article about the conflict -- one
      that names a context term (Syria, Damascus, ...) or an actor by an
      unambiguous alias;
    - geography: a state named as a place -- on a border ("the Syria-Jordan
      border", "the border with Iraq") or after "in" ("trained in Turkey") --
      is not the state acting;
    - shouting: a two-letter acronym inside an all-capitals run ("WHY IS IT")
      is a word, not the group (SDF or HTS in capitals still are);
    - ignored names: phrases that contain an alias but name something else
      ("Free Syrian Army", "Syrian National Coalition") are skipped whole.
    """

    def __init__(self, spec: dict):
        # Folded forms of words already seen: news reuses a small vocabulary.
        self._folds: dict[str, str] = {}
        self.actors: dict[str, Actor] = {}
        self._starts: dict[str, list[_Alias]] = {}
        self._exact: dict[str, _Alias] = {}
        self._context_terms: dict[str, list[tuple[str, ...]]] = {}
        for term in spec.get("context_terms", []):
            words = tuple(folded for _, folded in words_of(term))
            self._context_terms.setdefault(words[0], []).append(words)
        self._context = frozenset(words[0] for terms in self._context_terms.values()
                                  for words in terms if len(words) == 1)
        self._border = frozenset(folded for term in spec.get("border_terms", [])
                                 for _, folded in words_of(term))
        self._border_actors = frozenset(folded for term in spec.get("border_actors", [])
                                        for _, folded in words_of(term))
        for entry in spec["actors"]:
            actor = Actor(entry["id"], entry["name"], entry["type"])
            if actor.id in self.actors:
                raise ValueError(f"gazetteer lists actor {actor.id!r} twice")
            self.actors[actor.id] = actor
            ambiguous = set(entry.get("needs_context", []))
            unknown = ambiguous - set(entry.get("aliases", [])) - set(entry.get("exact", []))
            if unknown:
                raise ValueError(f"{actor.id}: needs_context names no alias: {sorted(unknown)}")
            for alias in entry.get("aliases", []):
                folded = tuple(folded for _, folded in words_of(alias))
                if folded:
                    self._add(_Alias(actor.id, folded, alias in ambiguous), alias)
            for word in entry.get("exact", []):
                key = word.replace(".", "")
                if key in self._exact and self._exact[key].actor != actor.id:
                    raise ValueError(f"exact word {word!r} of {actor.id} is also one of "
                                     f"{self._exact[key].actor}")
                self._exact[key] = _Alias(actor.id, (word,), word in ambiguous)
        for name in spec.get("ignore", []):
            self._add(_Alias("", tuple(folded for _, folded in words_of(name)), False), name)
        self._places = frozenset(folded for term in spec.get("place_prepositions", [])
                                 for _, folded in words_of(term))
        for candidates in self._starts.values():
            candidates.sort(key=lambda candidate: -len(candidate.words))

    def _add(self, alias: _Alias, written: str) -> None:
        """Register an alias; spellings that fold alike ("Turkey", "Türkiye")
        are one alias, ambiguous if any of them is. Two actors may not share one."""
        candidates = self._starts.setdefault(alias.words[0], [])
        for index, known in enumerate(candidates):
            if known.words == alias.words:
                if known.actor != alias.actor:
                    owners = [actor or "the ignore list" for actor in (alias.actor, known.actor)]
                    raise ValueError(f"{written!r} of {owners[0]} folds like a name of {owners[1]}")
                candidates[index] = replace(known, needs_context=known.needs_context or alias.needs_context)
                return
        candidates.append(alias)

    @classmethod
    def load(cls, text: str | None = None) -> Gazetteer:
        return cls(load_data("gazetteer.yaml", text))

    def find(self, text: str) -> list[str]:
        """Actor id of every mention in `text`, in order of appearance."""
        return self.mentions("", text)[1]

    def mentions(self, title: str, text: str) -> tuple[list[str], list[str]]:
        """Actor ids mentioned in the title and in the text, in order, with the
        context rule applied over the whole article."""
        words = [words_of(part, self._fold) for part in (title, text)]
        found = [self._hits(part) for part in words]
        in_context = (any(not alias.needs_context for hits in found for alias in hits)
                      or any(self._names_context([folded for _, folded in part]) for part in words))
        return tuple([alias.actor for alias in hits if in_context or not alias.needs_context]
                     for hits in found)

    def _hits(self, words: list[tuple[str, str]]) -> list[_Alias]:
        folded = [word for _, word in words]
        hits, index = [], 0
        while index < len(words):
            alias = self._longest_alias(folded, index)
            if alias is None and words[index][0] in self._exact and not (
                    len(words[index][0]) <= 2 and _shouted(words, index)):
                alias = self._exact[words[index][0]]
            if alias is None:
                index += 1
                continue
            end = index + (len(alias.words) if alias.words[0] == folded[index] else 1)
            if alias.actor and not (self.actors[alias.actor].type == "state"
                                    and self._is_place(folded, index, end)):
                hits.append(alias)
            index = end
        return hits

    def _fold(self, word: str) -> str:
        folded = self._folds.get(word)
        if folded is None:
            if len(self._folds) >= MAX_FOLD_CACHE:
                self._folds.clear()  # bounded: a long-lived worker meets endless rare words
            folded = self._folds[word] = fold_word(word)
        return folded

    def _names_context(self, folded: list[str]) -> bool:
        """Whether the words name a place or term of the conflict (context_terms)."""
        return any(folded[index:index + len(term)] == list(term)
                   for index, word in enumerate(folded) for term in self._context_terms.get(word, ()))

    def _longest_alias(self, folded: list[str], index: int) -> _Alias | None:
        for alias in self._starts.get(folded[index], ()):
            if tuple(folded[index:index + len(alias.words)]) == alias.words:
                return alias
        return None

    def _is_place(self, folded: list[str], start: int, end: int) -> bool:
        """The state names a place: on a border -- "the Jordan border", "the
        Turkey-Syria border", "the border with Iraq", "الحدود الأردنية" -- but
        not "Jordanian border guards" or "حرس الحدود الأردني", who are the
        state acting; or after "in" ("trained in Turkey", "في تركيا")."""
        def at(index: int) -> str:
            return folded[index] if 0 <= index < len(folded) else ""

        if at(start - 1) in self._places:
            return True
        if at(end) in self._border:
            return at(end + 1) not in self._border_actors
        if at(start - 1) in self._border:
            return at(start - 2) not in self._border_actors
        return ((at(end + 1) in self._border and at(end) in self._context)
                or (at(start - 1) == "with" and at(start - 2) in self._border))


def _shouted(words: list[tuple[str, str]], index: int) -> bool:
    """The word stands between all-capital words: a shouted headline."""
    neighbours = [words[i][0] for i in (index - 1, index + 1) if 0 <= i < len(words)]
    return bool(neighbours) and all(len(word) > 1 and word.isalpha() and word.isupper()
                                    for word in neighbours)


def tag_actors(title: str, text: str, gazetteer: Gazetteer,
               title_weight: int) -> tuple[tuple[Mention, ...], str]:
    """Mentions per actor and the primary actor.

    Primary: highest count with title mentions weighted up; ties go to the
    actor named first (title before text), then to the smaller id.
    """
    in_title, in_text = gazetteer.mentions(title, text)
    counts = Counter(in_title) + Counter(in_text)
    if not counts:
        return (), NO_ACTOR
    title_counts = Counter(in_title)
    first_seen = {actor: position for position, actor in reversed(list(enumerate(in_title + in_text)))}
    mentions = tuple(Mention(actor, counts[actor], actor in title_counts) for actor in sorted(counts))
    primary = min(counts, key=lambda actor: (
        -(counts[actor] + (title_weight - 1) * title_counts[actor]), first_seen[actor], actor))
    return mentions, primary


@functools.cache
def _language_identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    """py3langid's bundled model, loaded once per process (about 0.5 s)
    and restricted to `languages`."""
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(languages)
    return identifier


def detect_language(text: str, settings: ClassifySettings) -> tuple[str, float]:
    """ISO 639-1 code and probability; `und` when the text is too short to tell.

    py3langid (a naive Bayes model over byte n-grams, with numpy) is
    deterministic and about five times faster than langdetect, with which
    it agrees on 918 of 920 texts of the development corpus."""
    sample = text[: settings.language_prefix_chars]
    if sum(ch.isalpha() for ch in sample) < settings.language_min_chars:
        return UNDETERMINED, 0.0
    language, probability = _language_identifier(settings.languages).classify(sample)
    return language, round(probability, 3)


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


def code_version(settings: ClassifySettings) -> str:
    """What tags an article: news-ingest's version and a fingerprint of the
    gazetteer, event types and outlet facts in use (`0.1.0+rules.1a2b3c4d`), stored with
    each row so a reader knows which rules produced it."""
    rules = hashlib.blake2b(digest_size=4)
    for text, name in ((settings.gazetteer, "gazetteer.yaml"), (settings.event_types, "event_types.yaml"),
                       (settings.outlets, "outlets.yaml")):
        rules.update((text if text is not None else data_text(name)).encode("utf-8") + b"\0")
    return f"{VERSION}+rules.{rules.hexdigest()}"


class Classifier:
    """Language, actors, event types and the outlet's country for one article; built once per worker."""

    def __init__(self, settings: ClassifySettings, gazetteer: Gazetteer | None = None,
                 event_types: tuple[EventType, ...] | None = None):
        self.settings = settings
        self.gazetteer = gazetteer or Gazetteer.load(settings.gazetteer)
        self.event_types = event_types if event_types is not None else load_event_types(settings.event_types)
        _language_identifier(settings.languages)  # loaded now, not on the first article
        self.outlets = OutletFacts.load(settings.outlets)
        self.code_version = code_version(settings)

    def classify(self, article: Article) -> Article:
        language, confidence = detect_language(article.text, self.settings)
        mentions, primary = tag_actors(article.title, article.text, self.gazetteer,
                                       self.settings.title_weight)
        return replace(
            article, language=language, language_confidence=confidence,
            actors=tuple(mention.actor for mention in mentions), mentions=mentions,
            primary_actor=primary, code_version=self.code_version,
            source_country=self.outlets.country_of(article.source),
            event_types=event_types_of(article.title, article.text, self.event_types))
