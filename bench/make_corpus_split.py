"""Writes bench/corpus_split.json: the trafilatura evaluation corpus split by site
into a `tune` half and a `held-out` half.

    python bench/make_corpus_split.py --corpus DIR     (DIR holds evaldata.json)

We tune the clean stage's clutter rules on pages we read, so scores on those
pages flatter us; the held-out half is never read, only its totals are
reported (bench/bench_clean.py). The split is by site because clutter comes
from a site's template: a rule written for one page of a site fixes its other
pages too, and splitting by page would leak it into the held-out half. The
rule is a hash of the site name, so the halves do not move when the corpus
grows, and a site missing from the file lands where the file would put it.
"""
from __future__ import annotations

import argparse
import json
import re
from hashlib import blake2b
from pathlib import Path
from urllib.parse import urlsplit

import tldextract

SPLIT = Path(__file__).resolve().parent / "corpus_split.json"
RULE = ("site = registered domain of the page URL (tldextract, bundled Public Suffix List, "
        "no private domains; for a key that is no URL, of the host the file name starts with); "
        "blake2b(site, digest_size=8) first byte even -> tune, odd -> held_out")
# The bundled Public Suffix List, no network; without private domains, as the
# split was first made (the pipeline's `source` counts them: transforms/urls.py).
DOMAINS = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def site_of(key: str, file: str) -> str:
    """Registered domain of the entry's URL; entries keyed `hard::FILE` or
    `recall::FILE` have none, so the host their file name starts with
    (`laestrella.com.pa-laboral.html`, `energiehoch3.de.lexikon.html`)."""
    host = urlsplit(key).hostname
    if host:
        return DOMAINS(host).top_domain_under_public_suffix or host
    labels = re.split(r"[-_]", file.removesuffix(".html"))[0].split(".")
    found = None
    for end in range(2, len(labels) + 1):  # shortest host that ends in a public suffix,
        extracted = DOMAINS(".".join(labels[:end]))
        if extracted.suffix and (found is None or extracted.domain == found.domain):
            found = extracted  # grown while the suffix grows (com -> com.pa)
        elif found:
            break
    return found.top_domain_under_public_suffix if found else file


def half_of(site: str) -> str:
    return "tune" if blake2b(site.encode(), digest_size=8).digest()[0] % 2 == 0 else "held-out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder with evaldata.json")
    args = parser.parse_args()
    entries = json.loads((args.corpus / "evaldata.json").read_text())
    sites = sorted({site_of(key, spec["file"]) for key, spec in entries.items()})
    split = {"rule": RULE,
             "tune": [site for site in sites if half_of(site) == "tune"],
             "held_out": [site for site in sites if half_of(site) == "held-out"]}
    SPLIT.write_text(json.dumps(split, indent=1) + "\n")
    print(f"{SPLIT}: {len(split['tune'])} tune sites, {len(split['held_out'])} held-out sites")


if __name__ == "__main__":
    main()
