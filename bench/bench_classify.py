"""Actor tagging quality and speed.

    python bench/bench_classify.py [--articles 200]

1. Precision and recall per actor, and overall, on two labelled sets: the
   development set the rules were built on (tests/data/actors_eval.yaml:
   the seeds, texts with other spellings, Arabic sentences, ambiguous words)
   and a held-out set written blind by someone who had not seen the rules
   (tests/data/actors_heldout.yaml: English, Arabic, French, German and
   Spanish news texts and hard negatives).
2. Speed on 5,000-word texts (seed texts repeated and shuffled): articles/s
   of actor matching alone, of language detection, and of the whole
   Classifier.classify, in this process.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas.records import Article  # noqa: E402
from schemas.settings import ClassifySettings  # noqa: E402
from tests.conftest import SEED_TEXTS  # noqa: E402
from transforms.tagging import Classifier, Gazetteer, detect_language  # noqa: E402

LABELLED_SETS = {
    "development set": ROOT / "tests" / "data" / "actors_eval.yaml",
    "held-out set": ROOT / "tests" / "data" / "actors_heldout.yaml",
    "second blind set": ROOT / "tests" / "data" / "actors_blind2.yaml",
}


def evaluation_cases(path: Path) -> list[tuple[str, str, set[str]]]:
    cases = yaml.safe_load(path.read_text())["cases"]
    return [(case.get("title", ""),
             (SEED_TEXTS / case["seed"]).read_text() if "seed" in case else case["text"],
             set(case["actors"])) for case in cases]


def quality(gazetteer: Gazetteer, name: str, path: Path) -> None:
    cases = evaluation_cases(path)
    true_pos, false_pos, false_neg = Counter(), Counter(), Counter()
    for title, text, expected in cases:
        in_title, in_text = gazetteer.mentions(title, text)
        found = set(in_title) | set(in_text)
        for actor in found & expected:
            true_pos[actor] += 1
        for actor in found - expected:
            false_pos[actor] += 1
        for actor in expected - found:
            false_neg[actor] += 1
    print(f"quality on the {name}: {len(cases)} labelled texts ({path.relative_to(ROOT)})")
    print(f"  {'actor':<26} {'texts':>5} {'precision':>9} {'recall':>7}")
    for actor in sorted(set(true_pos) | set(false_pos) | set(false_neg)):
        labelled = true_pos[actor] + false_neg[actor]
        precision = true_pos[actor] / max(1, true_pos[actor] + false_pos[actor])
        recall = true_pos[actor] / max(1, labelled)
        print(f"  {actor:<26} {labelled:>5} {precision:>9.2f} {recall:>7.2f}")
    total_tp, total_fp, total_fn = sum(true_pos.values()), sum(false_pos.values()), sum(false_neg.values())
    print(f"  {'all':<26} {total_tp + total_fn:>5} {total_tp / max(1, total_tp + total_fp):>9.3f} "
          f"{total_tp / max(1, total_tp + total_fn):>7.3f}")


def long_texts(count: int, words: int) -> list[str]:
    rng = random.Random(5)
    paragraphs = [p for path in sorted(SEED_TEXTS.glob("*.txt")) for p in path.read_text().split("\n") if p]
    texts = []
    for _ in range(count):
        chosen, length = [], 0
        while length < words:
            paragraph = rng.choice(paragraphs)
            chosen.append(paragraph)
            length += len(paragraph.split())
        texts.append("\n\n".join(chosen))
    return texts


def speed(count: int) -> None:
    settings = ClassifySettings()
    classifier = Classifier(settings)
    texts = long_texts(count, 5000)
    now = datetime.now(UTC)
    articles = [Article(article_id=str(n), url="u", canonical_url="u", source="s", feed_url="f", title="t",
                        text=text, published_at=now, date_source="feed", fetched_at=now, content_hash="h",
                        word_count=len(text.split())) for n, text in enumerate(texts)]
    print(f"speed: {count} texts of 5,000+ words")
    steps = (("actor matching", lambda: [classifier.gazetteer.mentions("", t) for t in texts]),
             ("language (2,000-char prefix)", lambda: [detect_language(t, settings) for t in texts]),
             ("whole classify", lambda: [classifier.classify(a) for a in articles]))
    for label, work in steps:
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
        print(f"  {label:<30} {count / seconds:8.1f} articles/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=200, help="5,000-word texts for the speed test")
    args = parser.parse_args()
    gazetteer = Gazetteer.load()
    for name, path in LABELLED_SETS.items():
        quality(gazetteer, name, path)
    speed(args.articles)


if __name__ == "__main__":
    main()
