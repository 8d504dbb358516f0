"""Clean-stage quality: our cleaner beside plain trafilatura.extract, same pages, same process.

    python bench/bench_clean.py --corpus DIR     (DIR holds evaldata.json and eval/)
        [--half tune|held-out|both] [--limit N] [--show tune [--show-n N]]

We tune our clutter rules on this corpus, so it is split by site into two
fixed halves (bench/corpus_split.json, written by bench/make_corpus_split.py):
`tune`, which we may read and tune on, and `held-out`, which we never read --
only its totals are printed, so it keeps telling whether a rule generalises.
For each half, per extractor: plain `trafilatura.extract(html)`, the same
without comments (`traf-nocomm`: our stage leaves comments out too, so the
difference to it is what our clutter removal adds) and our clean stage's
`text` (a `with` snippet moved into our `title` column counts as kept: the
headline has its own column; a page our stage rejects counts as empty):

  boilerplate left   share of the page's `without` (clutter) snippets still in the output
  content kept       share of its `with` (main text) snippets in the output
  snippet-word F1    per page, words of kept `with` snippets against words of all `with`
                     (recall) and of kept `with` plus left `without` (precision) -- a
                     proxy from the annotated snippets only, not F1 over the full text
  pages/s            of that extractor alone

each a mean over the pages it is defined for. `--show tune` lists the clutter
ours left and the main text ours lost (that trafilatura kept) on tune pages.
Before the corpus, the bundled seed pages: every seed body line kept, every
clutter line gone.
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
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trafilatura  # noqa: E402

from bench.make_corpus_split import SPLIT, half_of, site_of  # noqa: E402
from schemas.records import FeedItem, Page  # noqa: E402
from schemas.settings import CleanSettings  # noqa: E402
from tests.conftest import DEMO_PAGES, SEED_PAGES, seed_truth  # noqa: E402
from transforms.cleaner import Cleaner, CleanError  # noqa: E402


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


SYSTEMS = ("trafilatura", "traf-nocomm", "ours")
HALVES = ("tune", "held-out")


class Scored(NamedTuple):
    url: str
    spec: dict  # the page's evaldata.json entry
    outputs: dict[str, tuple[str, str, float]]  # system -> (text, title, seconds)
    rejected: str | None  # why our stage rejected the page


def load_split() -> dict[str, str]:
    """Site -> half, from bench/corpus_split.json."""
    split = json.loads(SPLIT.read_text())
    return {site: half for half, key in zip(HALVES, ("tune", "held_out"), strict=True)
            for site in split[key]}


def corpus_pages(corpus: Path, limit: int | None) -> list[tuple[str, str, dict]]:
    """(half, url, spec) of the pages whose file is there, the first `limit` of them."""
    split = load_split()
    pages = []
    for url, spec in json.loads((corpus / "evaldata.json").read_text()).items():
        if (corpus / "eval" / spec["file"]).exists():
            site = site_of(url, spec["file"])
            pages.append((split.get(site) or half_of(site), url, spec))
    return pages[:limit]


def extract_all(cleaner: Cleaner, corpus: Path, url: str, spec: dict) -> Scored:
    html = (corpus / "eval" / spec["file"]).read_bytes()
    outputs, rejected = {}, None
    for name in SYSTEMS:
        started = time.perf_counter()
        if name == "ours":
            text, title, rejected = ours(cleaner, html, url)
        else:
            text, title = trafilatura.extract(html, url=url, include_comments=name == "trafilatura") or "", ""
        outputs[name] = (normalise(text), normalise(title), time.perf_counter() - started)
    return Scored(url, spec, outputs, rejected)


def present(snippet: str, text: str, title: str = "") -> bool:
    snippet = normalise(snippet)
    return snippet in text or bool(title and snippet in title)


def words(snippets: list[str]) -> int:
    return sum(len(snippet.split()) for snippet in snippets)


def page_scores(text: str, title: str, spec: dict) -> tuple[float | None, float | None, float | None]:
    """(boilerplate left, content kept, snippet-word F1); None where the page has no
    snippets to define it. An empty side counts as perfect (nothing to keep, nothing left)."""
    keep, drop = spec.get("with", []), spec.get("without", [])
    if not keep and not drop:
        return None, None, None
    kept = [s for s in keep if present(s, text, title)]
    left = [s for s in drop if present(s, text)]
    precision = words(kept) / (words(kept) + words(left)) if kept or left else 1.0
    recall = words(kept) / words(keep) if keep else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return (len(left) / len(drop) if drop else None, len(kept) / len(keep) if keep else None, f1)


def mean(values: list[float | None]) -> float:
    defined = [value for value in values if value is not None]
    return sum(defined) / len(defined) if defined else float("nan")


def half_table(half: str, pages: list[Scored]) -> None:
    """Totals only: the one thing printed of the held-out half."""
    sites = {site_of(page.url, page.spec["file"]) for page in pages}
    print(f"{half}: {len(pages)} pages, {len(sites)} sites")
    if not pages:
        return
    print(f"  {'':<12} {'boilerplate left':>17} {'content kept':>13} {'snippet-word F1':>16} {'pages/s':>8}")
    left = {}
    for name in SYSTEMS:
        scores = [page_scores(*page.outputs[name][:2], page.spec) for page in pages]
        left[name], kept, f1 = (mean(column) for column in zip(*scores, strict=True))
        seconds = sum(page.outputs[name][2] for page in pages)
        print(f"  {name:<12} {left[name]:>17.3f} {kept:>13.3f} {f1:>16.3f} {len(pages) / seconds:>8.1f}")
    print(f"  ours leaves {left['ours'] / left['trafilatura']:.1%} of what trafilatura leaves;"
          f" ours rejected {sum(page.rejected is not None for page in pages)} pages")


def show(pages: list[Scored], count: int) -> None:
    """Tune pages only: clutter ours left, main text ours lost that trafilatura kept."""
    left, lost = [], []
    for page in pages:
        text, title, _ = page.outputs["ours"]
        name = page.spec["file"] + (f" (rejected: {page.rejected})" if page.rejected else "")
        left += [(name, s) for s in page.spec.get("without", []) if present(s, text)]
        lost += [(name, s) for s in page.spec.get("with", [])
                 if present(s, page.outputs["trafilatura"][0]) and not present(s, text, title)]
    for heading, found in (("`without` snippets ours left", left),
                           ("`with` snippets ours lost that trafilatura kept", lost)):
        print(f"tune: {heading}: {len(found)}" + (f", the first {count}:" if len(found) > count else ":"))
        for name, snippet in found[:count]:
            print(f"  {name}: {snippet!r}")


def corpus_table(corpus: Path, limit: int | None, halves: tuple[str, ...],
                 show_count: int | None) -> None:
    cleaner = Cleaner(CleanSettings())
    cases = corpus_pages(corpus, limit)
    scored = {half: [extract_all(cleaner, corpus, url, spec) for of, url, spec in cases if of == half]
              for half in halves}
    print(f"corpus: {len(cases)} pages of {corpus}, split by site ({SPLIT.name})")
    for half in halves:
        half_table(half, scored[half])
    if show_count is not None:
        show(scored["tune"], show_count)


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
    parser.add_argument("--limit", type=int, help="only the first N pages (before the split)")
    parser.add_argument("--half", choices=("tune", "held-out", "both"), default="both")
    parser.add_argument("--show", choices=HALVES, help="print what ours left and lost on that half")
    parser.add_argument("--show-n", type=int, default=40, help="at most N snippets of each kind")
    args = parser.parse_args()
    if args.show == "held-out":
        sys.exit("--show held-out refused: held-out pages are never read;"
                 " once read, they no longer tell whether tuning generalises")
    if args.show and args.half == "held-out":
        sys.exit("--show tune needs --half tune or both")
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    logging.getLogger("htmldate").setLevel(logging.CRITICAL)
    seeds_table()
    halves = HALVES if args.half == "both" else (args.half,)
    corpus_table(args.corpus, args.limit, halves, args.show_n if args.show else None)


if __name__ == "__main__":
    main()
