"""One run against a site that misbehaves in every way we know of: the run
finishes, every item is accounted for, each failure is recorded as what it
is, and nothing the server sends reaches past the dataset."""
from __future__ import annotations

from collections import Counter

import pytest

from . import hostile
from .conftest import assert_sound, query, run_cli
from .loopback import LoopbackSite

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    with LoopbackSite() as site:
        feed_list, expected = hostile.build(site, folder)
        out = folder / "out"
        code, printed, summary = run_cli("--feeds", str(feed_list), "--out", str(out), *hostile.RUN_OPTIONS)
        yield {"code": code, "printed": printed, "out": out, "site": site, "expected": expected,
               "summary": summary}


def test_the_run_finishes_and_accounts_for_every_item(hostile_run):
    assert hostile_run["code"] == 0, hostile_run["printed"]
    summary = hostile_run["summary"]
    assert summary["adds_up"], hostile_run["printed"]
    assert summary["items"]["seen"] > 3000


def test_each_page_ends_as_what_its_failure_is(hostile_run):
    out, expected = hostile_run["out"], hostile_run["expected"]
    landed = {url: "article" for (url,) in query(out, "articles", "select url from t")}
    failed = "select url, error_type from t where stage in ('fetch', 'clean')"
    landed.update(dict(query(out, "rejects", failed)))
    assert {url: landed.get(url) for url in expected} == expected


def test_pages_with_odd_charsets_are_decoded_right(hostile_run):
    out, site = hostile_run["out"], hostile_run["site"]
    titles = dict(query(out, "articles", "select url, title from t"))
    assert titles[site.url("/a/cp1252")] == "Caf\xe9 in Afr\xeen \u2013 \u201cquoted\u201d"
    assert titles[site.url("/a/bad-utf8")] == "Broken bytes"


def test_feeds_that_cannot_be_read_are_rejects_and_entries_that_cannot_be_followed_too(hostile_run):
    out, site = hostile_run["out"], hostile_run["site"]
    feeds = dict(query(out, "rejects", "select url, error_type from t where stage = 'feed'"))
    assert feeds == {site.url("/feeds/html.xml"): "parse", site.url("/feeds/missing.xml"): "http-status"}
    truncated = site.url("/feeds/truncated.xml")
    cut = query(out, "rejects", f"select error_type from t where feed_url = '{truncated}'")
    assert cut == [("truncated",)]
    assert site.hits["/a/c"] == 0, "a truncated feed is read as far as it parses, its cut entry dropped"
    main = site.url("/feeds/main.xml")
    sql = f"select error_type from t where stage = 'item' and feed_url = '{main}'"
    unfollowable = query(out, "rejects", sql)
    assert Counter(error for (error,) in unfollowable) == Counter([*hostile.UNFOLLOWABLE.values(), "no-link"])
    assert not any(site.hits[path] for path in ("/etc/passwd", "/alert(1)")), "never requested"


def test_no_entity_expansion_and_no_local_file_read(hostile_run):
    out = hostile_run["out"]
    tables = ("articles", "duplicates", "rejects", "mentions")
    stored = " ".join(str(row) for table in tables for row in query(out, table, "select * from t"))
    assert hostile.SECRET not in stored
    assert "aaaaaaaaaa" * 10 not in stored


def test_the_server_sent_more_than_we_kept(hostile_run):
    """The 200 MB pages were cut at the cap, not read whole."""
    assert hostile_run["site"].bytes_sent > 400 * 2**20
    assert all(path.stat().st_size < 2**20 for path in hostile_run["out"].rglob("*.parquet"))


def test_nothing_is_written_outside_the_dataset(hostile_run):
    out = hostile_run["out"]
    top = {path.name for path in out.iterdir()}
    assert top <= {"articles", "mentions", "duplicates", "rejects", "raw", "_state"}


def test_verify_finds_the_dataset_sound(hostile_run):
    assert_sound(hostile_run["out"])
