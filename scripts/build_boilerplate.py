"""Build the starting cross-source boilerplate memory from the development corpus.

    python scripts/build_boilerplate.py --corpus DIR [--min-sites 4]

A first run has seen no site yet, so it cannot know that "Your email address
will not be published" is WordPress's and not the article's. This script
counts, over the pages of the corpus's `tune` half (bench/corpus_split.json;
the held-out half is never read), on how many different sites each short
unlinked text stands, and writes those on at least `--min-sites` sites to
`schemas/data/boilerplate.txt` (folded text, with the number of sites).

Counted: texts of 3 to CleanSettings.cross_source_max_words words, with no
digit (dates and counts are not stock lines), not mostly link text and not
inside navigation, header, footer, links or buttons (menus are the link and
structure rules' job; a site's menu words are also ordinary words). Shorter
texts are left out: "Fazit", "Social media", "Weitere Informationen" are
headings of articles on many sites.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from lxml import etree
from trafilatura.utils import load_html

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_corpus_split import site_of  # noqa: E402

from schemas.settings import CleanSettings  # noqa: E402
from transforms.textnorm import fold  # noqa: E402

OUTPUT = ROOT / "schemas" / "data" / "boilerplate.txt"
MIN_WORDS = 3
_BLOCKS = frozenset({"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "label", "figcaption", "td", "th",
                     "dt", "dd", "span", "div", "strong", "em", "small"})
_NOT_COUNTED_IN = frozenset({"nav", "a", "button", "select", "option", "footer", "header"})
HEADER = """\
# Lines that stand on many unrelated sites: the stock text of CMSs and plugins.
# Built by scripts/build_boilerplate.py from the tune half of the development
# corpus ({pages} pages of {sites} sites; the held-out half never read):
# folded texts of {min_words} to {max_words} words, without digits, unlinked and
# outside navigation, on at least {min_sites} different sites.
# Format: number of sites, a tab, the folded line. The clean stage removes an
# extracted line whose folded text is listed here (as `cross-source`) when it
# has at most CleanSettings.cross_source_max_words words. Delete a line to keep it.
"""


def page_texts(html: bytes, max_words: int) -> set[str]:
    """The folded short unlinked texts of one page."""
    tree = load_html(html)
    if tree is None:
        return set()
    texts = set()
    for element in tree.iter(etree.Element):
        if element.tag not in _BLOCKS:
            continue
        text = element.text_content()
        if len(text) > 400 or any(char.isdigit() for char in text):
            continue
        if any(ancestor.tag in _NOT_COUNTED_IN for ancestor in element.iterancestors()):
            continue
        if sum(len(link.text_content()) for link in element.iter("a")) >= len(text) / 2:
            continue
        folded = fold(text)
        if MIN_WORDS <= len(folded.split()) <= max_words:
            texts.add(folded)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder with evaldata.json and eval/")
    parser.add_argument("--min-sites", type=int, default=4)
    args = parser.parse_args()
    split = json.loads((ROOT / "bench" / "corpus_split.json").read_text())
    tune = set(split["tune"])
    max_words = CleanSettings().cross_source_max_words
    sites_of: dict[str, set[str]] = defaultdict(set)
    pages, sites = 0, set()
    for key, spec in json.loads((args.corpus / "evaldata.json").read_text()).items():
        path = args.corpus / "eval" / spec["file"]
        site = site_of(key, spec["file"])
        if site not in tune or not path.exists():
            continue
        pages += 1
        sites.add(site)
        for text in page_texts(path.read_bytes(), max_words):
            sites_of[text].add(site)
    common = sorted(((len(found), text) for text, found in sites_of.items() if len(found) >= args.min_sites),
                    key=lambda pair: (-pair[0], pair[1]))
    OUTPUT.write_text(HEADER.format(pages=pages, sites=len(sites), min_words=MIN_WORDS, max_words=max_words,
                                    min_sites=args.min_sites)
                      + "".join(f"{count}\t{text}\n" for count, text in common), "utf-8")
    print(f"{len(common)} lines from {pages} pages of {len(sites)} sites -> {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
