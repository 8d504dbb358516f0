"""The fast paths of transforms/tagging.py give exactly what the plain ones
give. Each rests on a fact about a regex, the language model or the event
patterns; these tests hold the facts and compare with the plain way (written
out here) on hostile and corpus texts, so that a change to a pattern or a new
py3langid that breaks one fails here instead of changing tags quietly."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest
import yaml
from py3langid.langid import MODEL_FILE, LanguageIdentifier, visit_counts

from schemas.settings import ClassifySettings
from transforms import tagging
from transforms.tagging import Gazetteer, fold_word, load_event_types
from transforms.textnorm import arabic_letters, strip_marks

from .conftest import ROOT, SEED_TEXTS

SETTINGS = ClassifySettings()
PLAIN_WORD = re.compile(r"(?:[A-Z]\.){2,}|\w+(?:['’ʼ‘`´]\w*)*")
PLAIN_ARTICLE = re.compile(r"\b(?:al|el|ad|an|ar|as|ash|at|ath|az|adh)[-‐‑](?=\w)", re.IGNORECASE)
NON_ASCII = "".join(chr(code) for code in range(0x80, 0x110000) if not 0xD800 <= code < 0xE000)


def corpus() -> list[tuple[str, str]]:
    """(title, text) of the seed texts, the labelled actor sets (five
    languages) and hostile texts: shouting, lookalike letters, elisions,
    Turkish suffixes, Arabic clitics, CJK, nothing, and one very long text."""
    texts = [("", path.read_text()) for path in sorted(SEED_TEXTS.glob("*.txt"))]
    for name in ("actors_eval.yaml", "actors_heldout.yaml", "actors_blind2.yaml"):
        texts += [(case.get("title", ""), case.get("text", ""))
                  for case in yaml.safe_load((ROOT / "tests" / "data" / name).read_text())["cases"]]
    long_text = " ".join(text for _, text in texts)
    texts += [
        ("", ""), ("", "Ok."), ("A", "a" * 39), ("", "x" * 5000), ("", "- -- al- al-- 'l ’s"),
        ("WHY IS IT", "WHY IS IT THAT THE US HAS NO PLAN. SDF AND YPG SAID, SAID, SAID: ATTACKED"),
        ("Şam'da çatışma", "YPG'nin Rusya'nın SAİD İDLİB'de ılımlı saıd ſaid ſtatement İsrail'in "
                           "Suriye'deki saldırısı. Türkiye ve PKK; SDG'nin açıklaması, \u212aurdish."),
        ("l'État islamique", "d'Alep, qu'Ankara, l’armée syrienne et l'ASL. Le régime d'Assad attaque; "
                             "l'EI a revendiqué l’attentat à Raqqa. AL-QAEDA, Ash-Sham, aſ-ſham."),
        ("", "وللتحالف الدولي والجيش السوري الحر في الرقة وتنظيم الدولة الإسلامية لداعش بالرقة"
             " والحدود الأردنية وحرس الحدود الأردني ـ"),
        ("", "日本語のテキスト、中文文本。한국어 텍스트" * 30 + "\U0001F600 emoji"),
        ("", "a\u0301b\u0308c U.S. U.N.O. A.B ‐al‑Qaeda el‐Sisi " * 50),
        ("AIR STRIKES", "Air\nstrikes against drone strikes, barrel bombs and aid convoys; "
                        "Coordination of Humanitarian Affairs. REFUGEE CAMPS."),
        ("", long_text), ("", long_text.upper()),
    ]
    rng = random.Random(7)
    words = long_text.split()
    for _ in range(100):
        sample = [word.upper() if rng.random() < 0.2 else word for word in rng.sample(words, 200)]
        texts.append((" ".join(sample[:8]), " ".join(sample)))
    return texts


CORPUS = corpus()


def random_strings(alphabet: str, count: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(count)]


def test_fold_word_skips_only_steps_that_change_nothing():
    apostrophes = "['’ʼ‘`´]"
    for pattern in (tagging._APOSTROPHES, tagging._ELISION, tagging._POSSESSIVE):
        assert apostrophes in pattern.pattern
        assert set(re.findall(apostrophes, NON_ASCII + "'`", pattern.flags)) == tagging._APOSTROPHE_CHARS

    def plain_fold(word: str) -> str:
        word = tagging._ELISION.sub("", tagging._POSSESSIVE.sub("", strip_marks(word)).casefold())
        word = arabic_letters(tagging._APOSTROPHES.sub("", word))
        if word.isascii():
            for variant, folded in tagging._TRANSLITERATION:
                word = word.replace(variant, folded)
            word = re.sub(r"(.)\1+", r"\1", word)
            if len(word) > 3 and word.endswith("h") and word[-2] in "aiu":
                word = word[:-1]
        else:
            word = tagging._arabic_clitics(word)
        return word

    words = random_strings("aabeeouqyhd'’ʼ‘`´lLsSİıſ\u212a\n.ـىةٱوفبكلي é\u0301Ç", 50_000)
    words += [word for _, text in CORPUS[:200] for word in text.split()]
    assert [fold_word(word) for word in words] == [plain_fold(word) for word in words]


def test_words_and_articles_are_found_as_the_plain_patterns_find_them():
    texts = random_strings("AB.ab'’ʼ‘`´ _1é\n-‐‑alehsdtnrzLHSDTNRZſ", 50_000)
    texts += [part for article in CORPUS for part in article]
    for text in texts:
        assert tagging._WORD.findall(text) == PLAIN_WORD.findall(text), text
        assert tagging._without_articles(text) == PLAIN_ARTICLE.sub("", text), text


def test_mentions_are_the_plain_walks():
    gazetteer = Gazetteer.load()

    def plain_hits(words: list[tuple[str, str]]) -> list:
        raws, folded = [raw for raw, _ in words], [word for _, word in words]
        hits, index = [], 0
        while index < len(words):
            alias = next((alias for alias in gazetteer._starts.get(folded[index], ())
                          if folded[index:index + len(alias.words)] == list(alias.words)), None)
            raw = raws[index]
            if alias is None and raw in gazetteer._exact and not (
                    len(raw) <= 2 and tagging._shouted(tuple(raws), index)):
                alias = gazetteer._exact[raw]
            if alias is None:
                index += 1
                continue
            end = index + (len(alias.words) if alias.words[0] == folded[index] else 1)
            if alias.actor and not (gazetteer.actors[alias.actor].type == "state"
                                    and gazetteer._is_place(tuple(folded), index, end)):
                hits.append(alias)
            index = end
        return hits

    def plain_mentions(title: str, text: str) -> tuple[list[str], list[str]]:
        words = [tagging.words_of(part) for part in (title, text)]
        found = [plain_hits(part) for part in words]
        in_context = (any(not alias.needs_context for hits in found for alias in hits)
                      or any(folded[index:index + len(term)] == list(term)
                             for part in words for folded in [[word for _, word in part]]
                             for index, word in enumerate(folded)
                             for term in gazetteer._context_terms.get(word, ())))
        return tuple([alias.actor for alias in hits if in_context or not alias.needs_context]
                     for hits in found)

    for title, text in CORPUS:
        assert gazetteer.mentions(title, text) == plain_mentions(title, text), (title, text[:80])
    assert gazetteer._words, "tokens are remembered"


@pytest.fixture(scope="module")
def identifiers() -> tuple[LanguageIdentifier, LanguageIdentifier]:
    plain = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    plain.set_languages(SETTINGS.languages)
    return plain, tagging._language_identifier(SETTINGS.languages)


def test_the_restricted_model_is_py3langids(identifiers):
    plain, fast = identifiers
    assert fast.nb_classes == plain.nb_classes and fast._alias_pairs == plain._alias_pairs
    for name in ("nb_ptc", "nb_pc"):
        assert getattr(fast, name).dtype == getattr(plain, name).dtype
        assert np.array_equal(getattr(fast, name), getattr(plain, name))
    with pytest.raises(ValueError, match="Unknown language"):
        tagging._Identifier.set_languages(fast, ("en", "xx"))


def test_language_scores_are_py3langids_to_the_bit(identifiers, monkeypatch):
    plain, fast = identifiers
    samples = [text[:SETTINGS.language_prefix_chars] for _, text in CORPUS]
    samples += ["", " ", "Ok.", "\U0001F600", "ÉTAT ISLAMIQUE " * 40, "1234 5678"]
    for sample in samples:
        assert np.array_equal(fast._decide(sample), plain._decide(sample)), sample[:80]
        assert fast.classify(sample) == plain.classify(sample)
        encoded = plain._encode(sample)
        walked = visit_counts(plain.tk_nextmove, plain._rowbase, plain.tk_output, encoded)
        assert fast._visits(encoded) == walked and list(fast._visits(encoded) or ()) == list(walked or ()), \
            "a text with features takes the numpy walk, and visits what py3langid does in the same order"
    monkeypatch.setattr(tagging, "_MAX_STEPS", 2)  # unsettled: the original walk
    for sample in samples[:20]:
        assert fast._visits(fast._encode(sample)) is None or len(sample) < 2
        assert np.array_equal(fast._decide(sample), plain._decide(sample))


def test_the_letter_count_is_the_plain_count():
    for sample in random_strings("ab1 .é\u0301٣", 20_000) + ["a" * 39, "a" * 40, " " * 200 + "a" * 40]:
        for wanted in (0, 1, 5, 40):
            assert tagging._has_letters(sample, wanted) == (sum(ch.isalpha() for ch in sample) >= wanted)


def test_event_anchors_bound_the_matches():
    letters = re.findall("[a-z]", NON_ASCII, re.IGNORECASE)
    assert {(ch, tagging._lowered(ch)) for ch in letters} == {
        ("İ", "i"), ("ı", "i"), ("ſ", "s"), ("\u212a", "k")}, "every lookalike folds to its letter"
    types = load_event_types()
    assert all(kind.anchors for kind in types)
    for title, text in CORPUS:
        for body in (f"{title}\n{text}", f"{title}\n{text}".upper().replace("I", "İ").replace("S", "ſ")):
            lowered = tagging._lowered(body)
            for kind in types:
                matches = len(kind.pattern.findall(body))
                assert sum(map(lowered.count, kind.anchors)) >= matches, (kind.name, body[:80])
                assert tagging._reaches(kind, body, lowered) == (matches >= kind.min_hits)
        assert tagging.event_types_of(title, text, types) == tuple(sorted(
            kind.name for kind in types if len(kind.pattern.findall(f"{title}\n{text}")) >= kind.min_hits))


@pytest.mark.parametrize("pattern, anchors", [
    (r"clash(?:es|ed)?|battles?", ("battle", "clash")),
    (r"attacks?|attacked", ("attack",)),
    (r"spokes(?:person|man|woman)|press (?:briefing|release)", ("briefing", "release", "spokes")),
    (r"(?:supplied|handed over) (?:the |his )*(?:weapons|arms)", ("handed over", "supplied")),
    (r"Coordination of (?-i:UN)", ("coordination of ",)),
    (r"(?:very )+bad|(?>good)", ("good", "very ")),
    (r"said|\w+ly", ("ly", "said")),
    (r"[Ss]aid|x", ("aid", "x")),
    (r"said|\w+", None),
    (r"(?=said)\w+|told", None),
    (r"قصف|said", None),
])
def test_anchors_are_what_every_match_contains(pattern, anchors):
    assert tagging._anchors(re.compile(r"\b(?:" + pattern + r")\b", re.IGNORECASE)) == anchors
