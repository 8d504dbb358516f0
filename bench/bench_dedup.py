"""Near-duplicate detection: precision and recall on realistic copies, and cost.

    python bench/bench_dedup.py --corpus DIR [--scale 10000 100000]

1. Quality. Real article texts (the development corpus, extracted once) are
   copied with the edits syndication makes -- a dateline, the last paragraph
   cut, numbers restyled, another site's clutter, all of these at once -- and
   paired with *distinct* articles that share sentences (a text with two
   quoted sentences of another; the seed articles, which cover the same
   events and quote the same spokesmen). For several thresholds it prints
   precision and recall of "same story", as our banded MinHash decides it
   (a pair must meet in a band bucket AND reach the threshold).
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
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apache_beam as beam  # noqa: E402
import trafilatura  # noqa: E402

from schemas.records import Article, FeedItem  # noqa: E402
from schemas.settings import DedupSettings  # noqa: E402
from tests.conftest import SEED_TEXTS  # noqa: E402
from transforms.dedup import DeduplicateArticles, content_hash  # noqa: E402
from transforms.neardup import Signer, band_keys, similarity  # noqa: E402

CLUTTER = ["Share this:", "Related Articles", "Subscribe to our newsletter for the latest updates.",
           "Follow us on Twitter @gulfwire", "© 2024 Gulf Wire. All rights reserved."]
DATELINES = ["BEIRUT (Agencies) – ", "DAMASCUS, Sept 23 (Reuters) - ", "AMMAN: "]


def corpus_texts(corpus: Path, cache: Path) -> list[str]:
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
    return re.sub(r"\d+", lambda match: f"{int(match.group()) + 1:,}", text)


EDITS = {
    "dateline": lambda text, rng: rng.choice(DATELINES) + text,
    "cut-last-paragraph": lambda text, rng: text.rsplit("\n", 1)[0],
    "numbers": lambda text, rng: restyle_numbers(text),
    "clutter": lambda text, rng: text + "\n" + "\n".join(rng.sample(CLUTTER, 3)),
    "all-of-these": lambda text, rng: rng.choice(DATELINES) + restyle_numbers(
        text.rsplit("\n", 1)[0]) + "\n" + "\n".join(rng.sample(CLUTTER, 3)),
}


def sentences(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+", text) if len(part.split()) >= 8]


def quality(texts: list[str], settings: DedupSettings, rng: random.Random) -> None:
    signer = Signer(settings)
    pairs = []  # (kind, same story?, text a, text b)
    for text in texts:
        kind = rng.choice(list(EDITS))
        pairs.append((kind, True, text, EDITS[kind](text, rng)))
        other = rng.choice(texts)
        if other is not text and len(sentences(other)) >= 2:
            quoted = " ".join(rng.sample(sentences(other), 2))
            pairs.append(("shares-2-sentences", False, other, text + "\n" + quoted))
    seeds = sorted(SEED_TEXTS.glob("*.txt"))
    for a in range(len(seeds)):
        for b in range(a + 1, len(seeds)):
            pairs.append(("seeds-same-events", False, seeds[a].read_text(), seeds[b].read_text()))
    signed = [(kind, same, signer.sign(a), signer.sign(b)) for kind, same, a, b in pairs]
    print(f"quality: {len(pairs)} pairs from {len(texts)} corpus texts and the 5 seeds "
          f"(shingles of {settings.shingle_words} words, {settings.minhash_permutations} "
          f"permutations, {settings.minhash_bands} bands)")
    print(f"  {'threshold':>9} {'precision':>9} {'recall':>7}   recall by edit")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
        found = []
        for kind, same, sig_a, sig_b in signed:
            meets = bool(set(band_keys(sig_a, settings.minhash_bands))
                         & set(band_keys(sig_b, settings.minhash_bands)))
            found.append((kind, same, meets and similarity(sig_a, sig_b) >= threshold))
        true_pos = sum(same and hit for _, same, hit in found)
        precision = true_pos / max(1, sum(hit for *_, hit in found))
        recall = true_pos / sum(same for _, same, _ in found)
        by_kind = {kind: sum(hit for k, same, hit in found if k == kind) /
                   sum(1 for k, *_ in found if k == kind) for kind in EDITS}
        marker = "  <- setting" if abs(threshold - settings.near_threshold) < 1e-9 else ""
        print(f"  {threshold:>9.1f} {precision:>9.3f} {recall:>7.3f}   "
              + " ".join(f"{kind} {share:.2f}" for kind, share in by_kind.items()) + marker)
    worst = max(similarity(a, b) for kind, same, a, b in signed if not same)
    print(f"  highest similarity of two distinct stories: {worst:.2f}")


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
                fetched_at=start, content_hash=content_hash(text), word_count=len(text.split()), item=item))
        number += 1
    return articles


def cost(texts: list[str], sizes: list[int], settings: DedupSettings, rng: random.Random) -> None:
    print("cost: DeduplicateArticles on the FnApiRunner (signing, banding, grouping, clustering)")
    per_article = {}
    for size in sizes:
        articles = generated_articles(texts, size, rng)
        source = Path("/tmp/news-ingest-bench-dedup.jsonl")
        started = time.perf_counter()
        with beam.Pipeline(runner="FnApiRunner") as pipeline:
            _ = (pipeline
                 | "Articles" >> beam.Create([source]).with_output_types(Path)
                 | "Generate" >> beam.FlatMap(lambda _, batch=articles: batch)
                 | DeduplicateArticles(pipeline | "NoPrior" >> beam.Create([]),
                                       pipeline | "NoSignatures" >> beam.Create([]), settings))
        seconds = time.perf_counter() - started
        per_article[size] = seconds / size
        print(f"  {size:>7} articles  {seconds:7.1f} s  {size / seconds:7.0f} articles/s")
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
