"""Near-duplicate detection: precision and recall on realistic copies, and cost.

    python bench/bench_dedup.py --corpus DIR [--scale 10000 100000]

1. Quality. Real article texts (the development corpus, extracted once) are
   copied with the edits syndication makes -- a dateline, the last paragraph
   cut, figures restyled ("3,000" / "3000", "three") or one corrected,
   another site's clutter, all of these at once. Against them stand distinct
   stories that look alike, as a conflict desk publishes them every day:
   daily strike releases and death tolls (same wording, new figures), short
   briefs ending in the same background sentence, a text quoting two
   sentences of another, and the seed articles (same events, same quoted
   spokesmen). For several thresholds it prints precision and recall of
   "same story" as the dedup stage decides it (the pair meets in a band
   bucket, reaches the threshold, and its figures agree).
2. Cost. The DeduplicateArticles transform, on the FnApiRunner, over N
   generated articles (each original with a few copies), for every N given:
   seconds, articles/s and the ratio of time per article between sizes
   (close to 1.0 means linear growth).
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apache_beam as beam  # noqa: E402
import trafilatura  # noqa: E402

from pipelines.summary import counters_of  # noqa: E402
from schemas.records import Article, FeedItem  # noqa: E402
from schemas.settings import DedupSettings, MemorySettings  # noqa: E402
from tests.conftest import SEED_TEXTS  # noqa: E402
from transforms.dedup import DeduplicateArticles  # noqa: E402
from transforms.memory import DatasetMemory  # noqa: E402
from transforms.neardup import (  # noqa: E402
    Member,
    Signer,
    band_keys,
    figures,
    member_order,
    same_story,
    similarity,
)
from transforms.textnorm import content_hash, word_count  # noqa: E402

CLUTTER = ["Share this:", "Related Articles", "Subscribe to our newsletter for the latest updates.",
           "Follow us on Twitter @gulfwire", "© 2024 Gulf Wire. All rights reserved."]
DATELINES = ["BEIRUT (Agencies) – ", "DAMASCUS, Sept 23 (Reuters) - ", "AMMAN: "]
NUMBER_WORDS = {"2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
                "8": "eight", "9": "nine", "10": "ten"}

# Distinct stories that look alike: what a conflict desk publishes every day.
STRIKE_RELEASE = (
    "SOUTHWEST ASIA – On {day} September, Coalition military forces conducted {a} strikes consisting "
    "of {b} engagements against ISIS targets in Syria and Iraq. In Syria, Coalition military forces "
    "conducted {c} strikes consisting of {d} engagements against ISIS targets near {place}, destroying "
    "{e} fighting positions and {f} vehicles. These strikes were conducted as part of Operation Inherent "
    "Resolve, the operation to defeat ISIS in Iraq and Syria. The destruction of ISIS targets in Iraq "
    "and Syria also further limits the group's ability to project terror and conduct external "
    "operations throughout the region and the rest of the world.")
DEATH_TOLL = (
    "The Syrian Observatory for Human Rights has documented the death of {a} people on {weekday}, "
    "{day} {month}, across Syrian territory. The toll includes {b} civilians, among them {c} children "
    "and {d} women, killed in shelling and airstrikes on {place}, and {e} fighters of the regime forces "
    "and their allied militias. SOHR continues to document the daily death toll in Syria.")
BACKGROUND = ("Syria's war has killed more than 360,000 people and displaced millions since it erupted "
              "in 2011 with the brutal repression of anti-government protests.")
PLACES = ["Abu Kamal", "Hajin", "Deir ez-Zor", "Raqqa", "Tabqa", "Idlib", "Jisr al-Shughur", "Daraa",
          "Tanf", "Palmyra", "Manbij", "Afrin"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def corpus_texts(corpus: Path, cache: Path) -> list[str]:
    """Article texts of the development corpus (150+ words), extracted once."""
    if cache.exists():
        return json.loads(cache.read_text())
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    texts = []
    for spec in json.loads((corpus / "evaldata.json").read_text()).values():
        path = corpus / "eval" / spec["file"]
        if path.exists():
            text = trafilatura.extract(path.read_bytes(), include_comments=False) or ""
            if len(text.split()) >= 150 and text.count("\n") >= 3:
                texts.append(text)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(texts))
    return texts


def restyle_numbers(text: str) -> str:
    """How copies restyle figures: separators added or dropped, small ones spelled out."""
    def restyle(match: re.Match) -> str:
        number = match.group()
        if number in NUMBER_WORDS:
            return NUMBER_WORDS[number]
        digits = number.replace(",", "")
        return f"{int(digits):,}" if "," not in number and len(digits) > 3 else digits
    return re.sub(r"\d[\d,]*\d|\d", restyle, text)


def correct_a_figure(text: str, rng: random.Random) -> str:
    """A later version that updates one figure (a toll, a count)."""
    numbers = list(re.finditer(r"\d+", text))
    if not numbers:
        return text + " The toll has risen since."
    match = rng.choice(numbers)
    return text[:match.start()] + str(int(match.group()) + 3) + text[match.end():]


EDITS = {
    "dateline": lambda text, rng: rng.choice(DATELINES) + text,
    "cut-last-paragraph": lambda text, rng: text.rsplit("\n", 1)[0],
    "numbers-restyled": lambda text, rng: restyle_numbers(text),
    "figure-corrected": correct_a_figure,
    "clutter": lambda text, rng: text + "\n" + "\n".join(rng.sample(CLUTTER, 3)),
    "all-of-these": lambda text, rng: rng.choice(DATELINES) + restyle_numbers(
        text.rsplit("\n", 1)[0]) + "\n" + "\n".join(rng.sample(CLUTTER, 3)),
}


def sentences(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+", text) if len(part.split()) >= 8]


def lookalike_pairs(texts: list[str], rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, text, text) pairs of distinct stories that share much wording."""
    pairs = []
    for day in range(1, 29):
        values = [{key: rng.randint(2, 60) for key in "abcdef"} for _ in range(2)]
        place = rng.choice(PLACES)
        pairs.append(("daily-strike-releases",
                      STRIKE_RELEASE.format(day=day, place=place, **values[0]),
                      STRIKE_RELEASE.format(day=day + 1, place=place, **values[1])))
        common = {"month": "September", "place": rng.choice(PLACES)}
        pairs.append(("daily-death-tolls",
                      DEATH_TOLL.format(day=day, weekday=WEEKDAYS[day % 7], **common, **values[0]),
                      DEATH_TOLL.format(day=day + 1, weekday=WEEKDAYS[(day + 1) % 7], **common, **values[1])))
    news = [sentence for text in texts for sentence in sentences(text) if len(sentence.split()) <= 30]
    for _ in range(100):
        pairs.append(("briefs-shared-background",
                      " ".join(rng.sample(news, 2)) + " " + BACKGROUND,
                      " ".join(rng.sample(news, 2)) + " " + BACKGROUND))
    for text in texts:
        other = rng.choice(texts)
        if other is not text and len(sentences(other)) >= 2:
            pairs.append(("shares-2-quoted-sentences", other,
                          text + "\n" + " ".join(rng.sample(sentences(other), 2))))
    seeds = sorted(SEED_TEXTS.glob("*.txt"))
    for first in range(len(seeds)):
        for second in range(first + 1, len(seeds)):
            pairs.append(("seeds-same-events", seeds[first].read_text(), seeds[second].read_text()))
    return pairs


def member(signer: Signer, name: str, text: str) -> Member:
    return Member(name, signer.sign(text), figures(text), word_count(text),
                  member_order(False, None, (0, 0), name))


def share(results: list[tuple[str, bool]], kind: str) -> float:
    of_kind = [hit for found_kind, hit in results if found_kind == kind]
    return sum(of_kind) / max(1, len(of_kind))


def quality(texts: list[str], settings: DedupSettings, rng: random.Random) -> None:
    signer = Signer(settings)
    copies = []
    for text in texts:
        kind = rng.choice(list(EDITS))
        copies.append((kind, member(signer, "a", text), member(signer, "b", EDITS[kind](text, rng))))
    distinct = [(kind, member(signer, "a", first), member(signer, "b", second))
                for kind, first, second in lookalike_pairs(texts, rng)]
    print(f"quality: {len(copies)} edited copies of corpus texts, {len(distinct)} pairs of distinct "
          f"look-alike stories (shingles of {settings.shingle_words} tokens, "
          f"{settings.minhash_permutations} permutations, {settings.minhash_bands} bands, figures veto "
          f"from {settings.min_figures} figures)")

    def found(first: Member, second: Member, threshold: float) -> bool:
        meets = bool(set(band_keys(first.signature, settings.minhash_bands))
                     & set(band_keys(second.signature, settings.minhash_bands)))
        return meets and same_story(first, second, replace(settings, near_threshold=threshold)) is not None

    print(f"  {'threshold':>9} {'precision':>9} {'recall':>7}   recall by edit / merged look-alikes by kind")
    for threshold in (0.5, 0.6, 0.7, 0.8):
        hits = [(kind, found(a, b, threshold)) for kind, a, b in copies]
        false = [(kind, found(a, b, threshold)) for kind, a, b in distinct]
        true_positives = sum(hit for _, hit in hits)
        precision = true_positives / max(1, true_positives + sum(hit for _, hit in false))
        recall = true_positives / len(hits)
        by_edit = " ".join(f"{kind} {share(hits, kind):.2f}" for kind in EDITS)
        merged = " ".join(f"{kind} {sum(h for k, h in false if k == kind)}"
                          for kind in dict.fromkeys(kind for kind, _ in false))
        marker = "  <- setting" if abs(threshold - settings.near_threshold) < 1e-9 else ""
        print(f"  {threshold:>9.1f} {precision:>9.3f} {recall:>7.3f}   {by_edit}{marker}")
        print(f"  {'':>9} {'':>9} {'':>7}   merged: {merged}")
    scores = sorted(((similarity(a.signature, b.signature), kind) for kind, a, b in distinct), reverse=True)
    print("  most similar distinct pairs (text similarity, before the figures veto): "
          + ", ".join(f"{score:.2f} {kind}" for score, kind in scores[:4]))


def generated_articles(texts: list[str], count: int, rng: random.Random) -> list[Article]:
    """`count` articles: distinct stories (each four paragraphs drawn from
    different corpus texts) with 0-3 edited copies each, on other sites."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    paragraphs = [part for text in texts for part in text.split("\n") if len(part.split()) >= 25]
    articles, number = [], 0
    while len(articles) < count:
        base = "\n".join(rng.sample(paragraphs, 4))
        for copy in range(min(rng.randint(1, 4), count - len(articles))):
            text = base if copy == 0 else EDITS[rng.choice(list(EDITS))](base, rng)
            url = f"https://site{copy}.example/{number}"
            item = FeedItem(url=url, feed_url=f"https://site{copy}.example/rss",
                            first_seen=(copy, number))
            articles.append(Article(
                article_id=f"{number}-{copy}", url=url, canonical_url=url, source=f"site{copy}.example",
                feed_url=item.feed_url, title="t", text=text,
                published_at=start + timedelta(minutes=number * 10 + copy), date_source="feed",
                fetched_at=start, content_hash=content_hash(text), word_count=word_count(text), item=item))
        number += 1
    return articles


def cost(texts: list[str], sizes: list[int], settings: DedupSettings, rng: random.Random) -> None:
    print("cost: DeduplicateArticles on the FnApiRunner (signing, banding, grouping, clustering)")
    per_article = {}
    for size in sizes:
        articles = generated_articles(texts, size, rng)
        source = Path("/tmp/news-ingest-bench-dedup.jsonl")
        stories = len({article.article_id.split("-")[0] for article in articles})
        started = time.perf_counter()
        pipeline = beam.Pipeline(runner="FnApiRunner")
        _ = (pipeline
             | "Articles" >> beam.Create([source]).with_output_types(Path)
             | "Generate" >> beam.FlatMap(lambda _, batch=articles: batch)
             | DeduplicateArticles(DatasetMemory(tempfile.mkdtemp(), MemorySettings(), settings), settings))
        result = pipeline.run()
        result.wait_until_finish()
        seconds = time.perf_counter() - started
        per_article[size] = seconds / size
        dropped = {name: value for name, value in counters_of(result).items() if name.startswith("dedup/")}
        kept = size - sum(dropped.values())
        print(f"  {size:>7} articles  {seconds:7.1f} s  {size / seconds:7.0f} articles/s   "
              f"kept {kept} of {stories} stories ({dropped})")
    first = sizes[0]
    for size in sizes[1:]:
        print(f"  time per article at {size} / at {first}: {per_article[size] / per_article[first]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="the unpacked development corpus")
    parser.add_argument("--scale", type=int, nargs="*", default=[10_000, 100_000],
                        help="article counts for the cost measurement (default 10000 100000)")
    args = parser.parse_args()
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    rng = random.Random(7)
    settings = DedupSettings()
    texts = corpus_texts(args.corpus, Path("/tmp/news-ingest-bench/corpus-texts.json"))
    quality(texts, settings, rng)
    if args.scale:
        cost(texts, args.scale, settings, rng)


if __name__ == "__main__":
    main()
