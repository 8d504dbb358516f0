"""Outlet facts: each article's `source_country` from schemas/data/outlets.yaml and a
user's --outlets file, every mistake in such a file one line naming its line."""
from __future__ import annotations

import json
import re

import pytest
from lxml import etree

from pipelines.cli import main
from schemas import load_data
from transforms.urls import registered_domain

from .conftest import DEMO_PAGES, ROOT, query, run_cli
from .loopback import rss

PAGE = DEMO_PAGES / "arabtimes-rebels-probe-defection.html"
ARGS = ("--allow-private-network", "--host-delay", "0")


def extracted(capsys, url: str, *args: str) -> dict:
    assert main(["extract", str(PAGE), "--url", url, *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_bundled_facts_name_the_seed_outlets_with_iso_codes():
    import pycountry

    outlets = load_data("outlets.yaml")["outlets"]
    for domain, facts in outlets.items():
        assert pycountry.countries.get(alpha_2=facts["country"]), domain
        assert pycountry.languages.get(alpha_2=facts["language"]), domain
    feeds = etree.parse(str(ROOT / "seeds" / "real" / "syria.opml")).xpath("//outline/@xmlUrl")
    named = {registered_domain(url) for url in feeds} - {"un.org"}  # an international body: no country
    assert named <= set(outlets), named - set(outlets)


def test_extract_says_where_the_outlet_is_and_a_users_file_wins(capsys, tmp_path):
    assert extracted(capsys, "https://www.middleeasteye.net/news/x")["source_country"] == "GB"
    assert extracted(capsys, "https://unknown-outlet.example/news/x")["source_country"] is None
    mine = tmp_path / "outlets.yaml"
    mine.write_text("outlets:\n  middleeasteye.net: {country: QA}\n  unknown-outlet.example: {country: SY}\n")
    mee = extracted(capsys, "https://www.middleeasteye.net/news/x", "--outlets", str(mine))
    assert mee["source_country"] == "QA"
    unknown = extracted(capsys, "https://unknown-outlet.example/x", "--outlets", str(mine))
    assert unknown["source_country"] == "SY"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("outlets:\n  bbc.co.uk: {country: UK}\n", 2, "country 'UK' is not an ISO 3166-1 alpha-2 code"),
    ("outlets:\n  a.example: {country: GB}\n  bbc.co.uk: {language: english}\n", 3,
     "language 'english' is not an ISO 639-1 code"),
    ("outlets:\n  bbc.co.uk: {country: gb}\n", 2, "country 'gb' is not"),
    ("outlets:\n  BBC.co.uk: {country: GB}\n", 2, "'BBC.co.uk' is not a registered domain in lower case"),
    ("outlets:\n  bbc.co.uk: {country: GB, city: London}\n", 2, "unknown key 'city'"),
    ("outlets:\n  bbc.co.uk: GB\n", 2, "give a mapping of country, language, name"),
    ("outlets:\n  bbc.co.uk: {country: GB}\n  bbc.co.uk: {country: US}\n", 3, "'bbc.co.uk' is given twice"),
    ("sources:\n  bbc.co.uk: {country: GB}\n", 1, "an outlets file is a mapping `outlets:`"),
])
def test_a_bad_outlets_file_is_one_line_naming_its_line(capsys, tmp_path, text, line, words):
    path = tmp_path / "outlets.yaml"
    path.write_text(text)
    assert main(["extract", str(PAGE), "--outlets", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{path} line {line}: " in err and words in err, err


@pytest.mark.e2e
def test_a_run_stamps_source_country_and_reprocess_stamps_older_rows(site, tmp_path):
    site.add("/p/1", PAGE.read_bytes())
    site.add("/rss", rss([{"link": "/p/1"}]), content_type="application/rss+xml")
    out = tmp_path / "data"
    mine = tmp_path / "outlets.yaml"
    mine.write_text("outlets:\n  127.0.0.1: {country: SY, language: ar, name: Loopback Times}\n")
    assert run_cli("--feeds", site.url("/rss"), "--out", str(out), *ARGS).code == 0
    assert query(out, "articles", "select source_country from t") == [(None,)]
    printed = io_main(["reprocess", "--out", str(out), "--outlets", str(mine)])
    assert re.search(r"\b1 changed\b", printed), printed
    assert query(out, "articles", "select source_country from t") == [("SY",)]
    other = tmp_path / "other"
    assert run_cli("--feeds", site.url("/rss"), "--out", str(other), "--outlets", str(mine), *ARGS).code == 0
    assert query(other, "articles", "select source_country from t") == [("SY",)]


def io_main(argv: list[str]) -> str:
    import io
    from contextlib import redirect_stdout

    printed = io.StringIO()
    with redirect_stdout(printed):
        assert main(argv) == 0
    return printed.getvalue()
