"""End to end: feeds on a loopback site -> `news-ingest run` -> Parquet read back with DuckDB."""
from __future__ import annotations

import re

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.batch import build_pipeline
from schemas.settings import FetchSettings, Settings

from .conftest import DEMO_PAGES, PAGES, ROOT, dataset_files, query, run_cli
from .loopback import LoopbackSite, rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them


def test_run_lands_articles_duplicates_and_rejects(news_site, site, tmp_path):
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", str(news_site), "--out", str(out),
                                     "--allow-private-network", "--read-timeout", "1")
    assert code == 0, printed
    # What a user reads: the printed summary shows the same figures (whatever its column widths).
    assert summary["adds_up"] and "= 10 of 10 items accounted for" in printed
    for label, key in (("articles written", "articles"), ("duplicates", "duplicates"),
                       ("rejected", "rejected"), ("already ingested", "already_ingested")):
        assert re.search(rf"\n\s+{label}\s+{summary['items'][key]}\b", printed), (label, printed)

    urls = {url for (url,) in query(out, "articles", "select url from t")}
    assert urls == {site.url(p) for p in ("/p/grasswire", "/p/defensepost", "/p/levant",
                                          "/p/sohr", "/p/arabtimes")}
    assert summary["items"] == {"seen": 10, "fetched": 6, "extracted": 6, "articles": 5,
                                "duplicates": 2, "rejected": 3, "already_ingested": 0}

    duplicates = dict(query(out, "duplicates", "select url, method from t"))
    assert duplicates == {site.url("/p/defensepost?utm_source=rss"): "url",
                          site.url("/p/gulfwire"): "exact"}
    original = query(out, "duplicates", "select duplicate_of from t where method = 'exact'")
    assert original == query(out, "articles", f"select article_id from t where url = "
                                              f"'{site.url('/p/arabtimes')}'")

    rejects = set(query(out, "rejects", "select stage, url, error_type, http_status from t"))
    assert rejects == {
        ("feed", site.url("/feeds/broken.xml"), "parse", None),
        ("feed", site.url("/feeds/gone.xml"), "http-status", 404),
        ("fetch", site.url("/p/missing"), "http-status", 404),
        ("fetch", site.url("/p/slow"), "timeout", None),
        ("item", site.url("/feeds/second.xml"), "no-link", None)}
    assert summary["rejects_by_stage"] == {"feed": 2, "fetch": 2, "item": 1}

    # Where the time went and which feeds failed, for whoever reads the summary.
    slowest = summary["slowest_feeds"][0]
    assert slowest["feed"] == site.url("/feeds/main.xml") and slowest["pages"] == 6
    assert slowest["slowest_page_seconds"] >= 1  # the page that timed out
    main_feed, seconds = re.escape(site.url("/feeds/main.xml")), re.escape(f"{slowest['seconds']:.1f}")
    assert re.search(rf"^\s*slowest\s+{seconds} s\s+{main_feed}\s", printed, re.M), printed
    assert [(row["feed"], row["error"]) for row in summary["failing_feeds"]] == [
        (site.url("/feeds/broken.xml"), "parse"), (site.url("/feeds/gone.xml"), "http-404")]
    assert summary["failing_feeds"][0]["message"].startswith("not a readable RSS/Atom feed")
    assert summary["failing_feeds"][1]["message"] == "HTTP 404 Not Found"
    broken, gone = re.escape(site.url("/feeds/broken.xml")), re.escape(site.url("/feeds/gone.xml"))
    assert re.search(rf"^\s*failing\s+{broken}\s+parse: not a readable RSS/Atom feed", printed, re.M), printed
    assert re.search(rf"^\s+{gone}\s+http-404: HTTP 404 Not Found$", printed, re.M), printed
    assert code == 0 and not summary["no_feed_polled"], "two of four feeds were polled"

    # Partitions: publication day and primary actor; mentions hold every actor.
    grasswire = query(out, "articles", "select date::varchar, actor, date_source, language "
                                       f"from t where url = '{site.url('/p/grasswire')}'")
    assert grasswire == [("2017-08-03", "coalition", "feed", "en")]
    per_actor = dict(query(out, "articles", "select actor, count(*) from t group by actor"))
    assert per_actor == summary["articles_by_actor"]
    naming = dict(query(out, "mentions", "select actor, count(distinct article_id) from t group by actor"))
    assert naming == summary["articles_naming_actor"] and len(naming) > len(per_actor)
    assert list(summary["articles_naming_actor"].values()) == sorted(naming.values(), reverse=True)
    about_shq = query(out, "mentions", "select count(distinct article_id) from t where actor = 'shq'")
    assert about_shq[0][0] >= 3
    assert not list(out.rglob(".*inprogress"))


def test_second_run_fetches_and_writes_nothing_new(news_site, site, tmp_path):
    out = tmp_path / "out"
    args = ("--feeds", str(news_site), "--out", str(out), "--allow-private-network",
            "--read-timeout", "1")
    assert run_cli(*args).code == 0
    files_before = dataset_files(out, "articles", "mentions", "duplicates")
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    # Failed feeds wait for their back-off; the unchanged one is not parsed again. The
    # feed whose slow article timed out is read again, so that article is retried.
    feeds, items = summary["feeds"], summary["items"]
    assert (feeds["unchanged"], feeds["rejected"], feeds["not_due"]) == (1, 0, 2)
    assert items["seen"] == 6 and summary["adds_up"]
    assert items["already_ingested"] == 4 and site.hits["/p/slow"] == 2
    assert dataset_files(out, "articles", "mentions", "duplicates") == files_before

    # The feed gains an item (a copy of a stored story): the feed is read again,
    # its old entries are already ingested, the new one is processed.
    site.add("/p/later", (DEMO_PAGES / PAGES["/p/levant"]).read_bytes())
    second = site.routes["/feeds/second.xml"].body.replace(
        b"</channel>", b"<item><link>/p/later</link></item></channel>")
    site.add("/feeds/second.xml", second, content_type="application/rss+xml")
    code, printed, summary = run_cli(*args)
    assert code == 0, printed
    assert summary["items"]["already_ingested"] == 7
    assert summary["items"]["seen"] == 11 and summary["adds_up"]
    assert dataset_files(out, "articles", "mentions", "duplicates") != files_before
    assert all(site.hits[path] == 1 for path in PAGES), "stored articles are never fetched again"


def test_private_network_is_refused_by_default(news_site, site, tmp_path):
    code, printed, summary = run_cli("--feeds", str(news_site), "--out", str(tmp_path / "out"))
    assert code == 3, printed  # no feed could be polled
    assert summary["feeds"]["rejected"] == 4
    assert sum(site.hits.values()) == 0
    errors = query(tmp_path / "out", "rejects", "select distinct error_type from t")
    assert errors == [("blocked-address",)]
    assert "--allow-private-network allows them" in printed, "the summary says what to do about it"


def test_demo_run_twice_writes_nothing_twice(tmp_path):
    out = tmp_path / "data"
    code, printed, first = run_cli("--feeds", str(ROOT / "seeds" / "demo.opml"), "--out", str(out))
    assert code == 0 and first["items"]["articles"] == 5, printed
    assert query(out, "duplicates", "select method, count(*) from t group by all order by 1") == \
        [("exact", 1), ("url", 1)]
    files = dataset_files(out)
    code, printed, second = run_cli("--feeds", str(ROOT / "seeds" / "demo.opml"), "--out", str(out))
    assert code == 0 and second["feeds"]["unchanged"] == 7, printed
    assert dataset_files(out) == files


def test_build_pipeline_outputs_on_a_test_pipeline(news_site, site, tmp_path):
    from transforms.feedlist import read_feed_list

    settings = Settings(fetch=FetchSettings(allow_private_network=True, read_timeout_s=1,
                                            total_timeout_s=2))
    base = len(site.base)
    with TestPipeline(runner="FnApiRunner") as p:
        outputs = build_pipeline(p, read_feed_list(str(news_site)), str(tmp_path / "out"),
                                 "t1", settings)
        assert_that(outputs["articles"] | beam.Map(lambda a: (a.url[base:], a.primary_actor)),
                    equal_to([("/p/grasswire", "coalition"), ("/p/defensepost", "shq"),
                              ("/p/levant", "coalition"), ("/p/sohr", "syrian-regime"),
                              ("/p/arabtimes", "russia")]), label="Articles")
        assert_that(outputs["rejects"] | beam.Map(lambda r: r.error_type),
                    equal_to(["parse", "http-status", "http-status", "timeout", "no-link"]),
                    label="Rejects")


def test_malformed_links_dates_and_pages_never_stop_a_run(site, tmp_path):
    page = (DEMO_PAGES / PAGES["/p/levant"]).read_bytes()
    site.add("/p/odd-canonical", page.replace(
        b'rel="canonical" href="https://levantmonitor.example/', b'rel="canonical" href="http://127.0.0.1:99999/'))
    site.add("/p/cp1252", '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body>'
             "<article><p>" + "Le caf\xe9 du coin a rouvert ses portes apr\xe8s la guerre. " * 12
             + "</p></article></body></html>", content_type="text/html")
    site.routes["/p/cp1252"].body = site.routes["/p/cp1252"].body.decode().encode("cp1252")
    site.add("/feeds/nasty.xml", rss([
        {"link": "http://[::1"}, {"link": "http://example.org:99999/x"},
        {"link": "/p/odd-canonical", "pubDate": "0000-00-00T00:00:00Z"},
        {"link": "/p/cp1252"},
    ]), content_type="application/rss+xml")
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", site.url("/feeds/nasty.xml"), "--out", str(out),
                                     "--allow-private-network")
    assert code == 0, printed
    assert summary["items"]["seen"] == 4 and summary["adds_up"]
    assert sorted(query(out, "rejects", "select error_type from t")) == [("invalid-url",), ("invalid-url",)]
    landed = dict(query(out, "articles", "select url, date_source from t"))
    assert landed[site.url("/p/odd-canonical")] == "page"  # the year-0 feed date is ignored
    french = query(out, "articles", f"select text, language from t where url = '{site.url('/p/cp1252')}'")
    assert "café du coin" in french[0][0] and french[0][1] == "fr"


def site_page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Footer</footer></body></html>")


def test_a_site_promo_is_learned_in_one_run_and_remembered_for_the_next(site, tmp_path):
    promo = ("The Levant Letter lands in your inbox every Friday with the week's best "
             "frontline reporting from our correspondents.")
    towns = ["Tanf", "Rukban", "Palmyra", "Raqqa"]

    def add_story(number: int) -> dict:
        town = towns[number]
        paragraphs = [f"Fighters gathered near {town} on Monday, residents of {town} said, as "
                      f"talks on the future of the {town} area stalled again.",
                      promo,
                      f"A commander in {town} told reporters that the convoy would leave "
                      f"{town} within days if the agreement held, and that civilians in {town} "
                      "would be allowed to follow."]
        site.add(f"/story/{number}", site_page(f"News from {town}", paragraphs))
        return {"link": f"/story/{number}"}

    site.add("/feed.xml", rss([add_story(n) for n in range(3)]), content_type="application/rss+xml")
    out = tmp_path / "out"
    args = ("--feeds", site.url("/feed.xml"), "--out", str(out), "--allow-private-network")
    assert run_cli(*args).code == 0
    texts = [text for (text,) in query(out, "articles", "select text from t")]
    assert len(texts) == 3 and not any(promo in text for text in texts)
    assert all("Fighters gathered" in text and "A commander" in text for text in texts)

    site.add("/feed.xml", rss([add_story(3)]), content_type="application/rss+xml")
    assert run_cli(*args).code == 0
    newest = query(out, "articles", "select text, clutter_removed from t where url like '%/story/3'")
    assert promo not in newest[0][0] and "site-template" in newest[0][1]


def test_a_wire_story_on_three_sites_lands_once_with_two_duplicates(tmp_path):
    from .conftest import seed_truth

    body = seed_truth("004_101b7afe40c93a6a.txt")[1]
    versions = [
        ("US-trained Syrian rebels probing alleged defection", body, "Wed, 23 Sep 2015 08:00:00 +0000"),
        ("Rebels trained by US probe defection report",
         ["DAMASCUS (Agencies) – " + body[0], *body[1:-1]], "Wed, 23 Sep 2015 10:00:00 +0000"),
        ("Moscow sees chance for Syria deal as rebels probe defection",
         [*body[:-1], body[-1].replace("100", "a hundred").replace("12", "twelve")],
         "Wed, 23 Sep 2015 11:30:00 +0000"),
    ]
    with LoopbackSite() as first, LoopbackSite() as second, LoopbackSite() as third:
        sites = [first, second, third]
        for server, (headline, paragraphs, published) in zip(sites, versions, strict=True):
            server.add("/story", site_page(headline, paragraphs))
            server.add("/rss", rss([{"link": "/story", "pubDate": published}]),
                       content_type="application/rss+xml")
        listing = tmp_path / "feeds.txt"
        listing.write_text("\n".join(server.url("/rss") for server in sites))
        out = tmp_path / "out"
        args = ("--feeds", str(listing), "--out", str(out), "--allow-private-network")
        code, printed, summary = run_cli(*args)
        assert code == 0 and summary["items"]["seen"] == 3 and summary["adds_up"], printed
        kept = query(out, "articles", "select article_id, url from t")
        assert [url for _, url in kept] == [first.url("/story")]
        copies = query(out, "duplicates", "select url, duplicate_of, method, similarity from t order by url")
        assert [(url, original) for url, original, _, _ in copies] == \
            sorted([(second.url("/story"), kept[0][0]), (third.url("/story"), kept[0][0])])
        assert all(method == "near" and 0.5 <= similarity < 1 for _, _, method, similarity in copies)

        code, printed, summary = run_cli(*args)
        assert code == 0 and summary["feeds"]["unchanged"] == 3, printed
        assert query(out, "articles") == [(1,)]

        with LoopbackSite() as later:  # a fourth site carries it a day later
            later.add("/story", site_page("Rebels probe defection", ["AMMAN: " + body[0], *body[1:]]))
            later.add("/rss", rss([{"link": "/story", "pubDate": "Thu, 24 Sep 2015 09:00:00 +0000"}]),
                      content_type="application/rss+xml")
            code, printed, _ = run_cli("--feeds", later.url("/rss"), "--out", str(out),
                                       "--allow-private-network")
            assert code == 0
            late = query(out, "duplicates", f"select duplicate_of, method from t "
                                            f"where url = '{later.url('/story')}'")
            assert late == [(kept[0][0], "near")], "a copy in a later run points at the stored article"
            assert query(out, "articles") == [(1,)]
