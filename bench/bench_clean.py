"""Clean-stage quality: our cleaner beside plain trafilatura.extract, same pages, same process.

    python bench/bench_clean.py --corpus DIR     (DIR holds evaldata.json and eval/)

For every page of the trafilatura evaluation set: the share of its `with`
snippets (main text) found in the output, and of its `without` snippets
(clutter) absent from it, averaged over pages -- for plain
`trafilatura.extract(html)`, for the same without comments (`traf-nocomm`:
our stage leaves comments out too, so the difference to it is what our
clutter removal adds) and for our clean stage's `text` (a `with`
snippet moved into our `title` column counts as kept: the headline has its
own column). A page our stage rejects (too short) counts as empty output.
Then the same for the bundled seed pages: every seed body line kept, every
clutter line gone. Prints both tables and pages/s.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from schemas.records import FeedItem, Page  # noqa: E402
from schemas.settings import CleanSettings  # noqa: E402
from tests.conftest import DEMO_PAGES, SEED_PAGES, seed_truth  # noqa: E402
from transforms.clean import Cleaner, CleanError  # noqa: E402


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def ours(cleaner: Cleaner, html: bytes, url: str) -> tuple[str, str, str | None]:
    """(text, title, reject reason) of our clean stage; empty when it rejects the page."""
    page = Page(item=FeedItem(url=url, feed_url=""), final_url=url, status=200,
                content_type="text/html", body=html, fetched_at=datetime.now(UTC))
    try:
        article = cleaner.clean(page)
    except CleanError as error:
        return "", "", error.error_type
    return article.text, article.title, None


def score(output: str, keep: list[str], drop: list[str], title: str = "") -> tuple[float, float]:
    """Share of `keep` found (in the text, or in the title column where the
    headline is moved) and share of `drop` absent from the text."""
    text, heading = normalise(output), normalise(title)
    kept = sum(normalise(s) in text or bool(heading and normalise(s) in heading)
               for s in keep) / len(keep) if keep else 1.0
    removed = sum(normalise(s) not in text for s in drop) / len(drop) if drop else 1.0
    return kept, removed


def corpus_table(corpus: Path, limit: int | None) -> None:
    cases = [(url, spec) for url, spec in json.loads((corpus / "evaldata.json").read_text()).items()
             if (corpus / "eval" / spec["file"]).exists()][:limit]
    cleaner = Cleaner(CleanSettings())
    totals = {"trafilatura": [0.0, 0.0, 0.0], "traf-nocomm": [0.0, 0.0, 0.0], "ours": [0.0, 0.0, 0.0]}
    losses = []
    for url, spec in cases:
        html = (corpus / "eval" / spec["file"]).read_bytes()
        started = time.perf_counter()
        baseline = trafilatura.extract(html, url=url) or ""
        middle = time.perf_counter()
        cleaned, title, rejected = ours(cleaner, html, url)
        ended = time.perf_counter()
        # Our stage leaves comments out; this isolates what our clutter removal adds.
        no_comments = trafilatura.extract(html, url=url, include_comments=False) or ""
        last = time.perf_counter()
        for name, output, heading, seconds in (("trafilatura", baseline, "", middle - started),
                                               ("traf-nocomm", no_comments, "", last - ended),
                                               ("ours", cleaned, title, ended - middle)):
            kept, removed = score(output, spec.get("with", []), spec.get("without", []), heading)
            totals[name][0] += kept
            totals[name][1] += removed
            totals[name][2] += seconds
        lost = [s for s in spec.get("with", []) if normalise(s) in normalise(baseline)
                and normalise(s) not in normalise(cleaned) and normalise(s) not in normalise(title)]
        if lost:
            losses.append((spec["file"] + (f" (rejected: {rejected})" if rejected else ""), lost))
    count = len(cases)
    print(f"corpus: {count} pages of {corpus}")
    print(f"  {'':<12} {'with kept':>10} {'without removed':>16} {'pages/s':>8}")
    for name, (kept, removed, seconds) in totals.items():
        print(f"  {name:<12} {kept / count:>10.3f} {removed / count:>16.3f} {count / seconds:>8.1f}")
    print(f"  pages where ours lost a `with` snippet that trafilatura kept: {len(losses)}")
    for name, lost in losses[:10]:
        print(f"    {name}: {lost[:2]}")


def seeds_table() -> None:
    cleaner = Cleaner(CleanSettings())
    print("seeds: body lines kept / clutter lines removed")
    for seed, page in sorted(SEED_PAGES.items()):
        _, body, clutter = seed_truth(seed)
        html = (DEMO_PAGES / page).read_bytes()
        for name, output in (("trafilatura", trafilatura.extract(html) or ""),
                             ("ours", ours(cleaner, html, (DEMO_PAGES / page).as_uri())[0])):
            kept, removed = score(output, body, clutter)
            print(f"  {seed[:3]} {name:<12} body {kept:6.1%}   clutter removed {removed:6.1%}"
                  f"  ({len(clutter)} clutter lines)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True,
                        help="folder with evaldata.json and eval/ (the unpacked development corpus)")
    parser.add_argument("--limit", type=int, help="only the first N pages")
    args = parser.parse_args()
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)
    seeds_table()
    corpus_table(args.corpus, args.limit)


if __name__ == "__main__":
    main()
