"""How we treat the sites we read, and how we take their failures: per-host
limits, robots.txt, retries within a run, and encodings nobody asked for."""
from __future__ import annotations

import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import zstandard

from schemas.settings import FetchSettings
from transforms.failures import FetchError, retry_wait
from transforms.httpclient import Fetcher
from transforms.robots import RobotsRules
from transforms.scheduler import HostTurns

from .conftest import query, run_cli
from .loopback import LoopbackSite, rss

STORY = ("<html><body><article><h1>{0}</h1><p>" + "{0}: shelling was reported near Idlib today. " * 15
         + "</p></article></body></html>")


def test_one_host_gets_a_few_requests_at_a_time_spaced_apart(site):
    for number in range(6):
        site.add(f"/p/{number}", "<p>page</p>", delay_s=0.3)
    fetcher = Fetcher(FetchSettings(allow_private_network=True, per_host_concurrency=2, host_delay_s=0.1))
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: fetcher.get(site.url(f"/p/{n}"), max_bytes=1000, allow_file=False), range(6)))
    assert site.max_in_flight == 2
    starts = sorted(when for _, when in site.started)
    assert min(b - a for a, b in zip(starts, starts[1:], strict=False)) >= 0.09


def feed_of(site, *paths: str) -> str:
    return site.add("/rss", rss([{"link": path} for path in paths]), content_type="application/rss+xml")


def rejects(out) -> list[tuple]:
    return query(out, "rejects", "select url, error_type, http_status from t where stage = 'fetch' "
                                 "order by url")


@pytest.mark.e2e
def test_one_slow_host_does_not_hold_the_others_up(tmp_path):
    """A feed listing four pages of one site, then four of another (one
    batch of downloads): with two threads and one request at a time per
    site, the second site is served from the start, not after the first
    site's queue has drained."""
    with LoopbackSite("127.0.0.2") as first, LoopbackSite("127.0.0.3") as second:
        links = [first.url(f"/p/{n}") for n in range(4)] + [second.url(f"/p/{n}") for n in range(4)]
        for site in (first, second):
            for n in range(4):
                site.add(f"/p/{n}", f"<html><body><p>{'word ' * 60}{n}</p></body></html>")
        feed = first.add("/feed.xml", rss([{"link": link} for link in links]),
                         content_type="application/rss+xml")
        code, printed, summary = run_cli("--feeds", feed, "--out", str(tmp_path / "out"),
                                         "--allow-private-network", "--concurrency", "2", "--per-host", "1",
                                         "--host-delay", "0.5")
    assert code == 0 and summary["items"]["seen"] == 8 and summary["adds_up"], printed
    pages = sorted(when for path, when in first.started if path.startswith("/p/"))
    second_pages = sorted(when for path, when in second.started if path.startswith("/p/"))
    assert second_pages[0] < pages[1]  # not behind the first site's queue (3 x 0.5 s)


@pytest.mark.e2e
def test_a_slow_page_does_not_hold_up_the_downloads_after_it(site, tmp_path):
    """Downloads stream: with two threads, the pages listed after a page that
    takes 2 s are all fetched (and cleaned) meanwhile, not after it."""
    site.add("/p/slow", STORY.format("slow"), delay_s=2.0)
    quick = [f"/p/{number}" for number in range(15)]
    for path in quick:
        site.add(path, STORY.format(path))
    code, printed, summary = run_cli("--feeds", feed_of(site, "/p/slow", *quick),
                                     "--out", str(tmp_path / "out"), "--allow-private-network",
                                     "--concurrency", "2", "--per-host", "4", "--host-delay", "0")
    assert code == 0 and summary["items"]["seen"] == 16 and summary["adds_up"], printed
    started = dict(site.started)
    assert max(started[path] for path in quick) < started["/p/slow"] + 2.0


def test_hosts_are_taken_in_turn_and_never_beyond_their_limit():
    turns = HostTurns(per_host=2)
    for host, element in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1), ("b", 2)]:
        turns.add(host, element)
    taken = [turns.take() for _ in range(5)]
    assert taken == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2)]
    assert turns.take() is None and len(turns) == 1  # a has two under way
    turns.done("a")
    assert turns.take() == ("a", 3) and len(turns) == 0 and turns.take() is None


@pytest.mark.e2e
def test_robots_txt_is_read_once_per_host_and_obeyed_for_articles(site, tmp_path):
    site.add("/robots.txt", "User-agent: *\nDisallow: /\n\nUser-agent: news-ingest\nDisallow: /private/\n",
             content_type="text/plain")
    for path in ("/private/a", "/news/b", "/news/c"):
        site.add(path, STORY.format(path))
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", feed_of(site, "/private/a", "/news/b", "/news/c"),
                                     "--out", str(out), "--allow-private-network")
    assert code == 0 and summary["items"]["articles"] == 2, printed
    assert rejects(out) == [(site.url("/private/a"), "robots", None)]
    assert site.hits["/private/a"] == 0 and site.hits["/robots.txt"] == 1
    assert site.hits["/rss"] == 1, "feeds are subscriptions, not crawled pages"


@pytest.mark.e2e
def test_an_unreachable_robots_txt_holds_the_sites_pages_for_the_next_poll(site, tmp_path):
    site.add("/robots.txt", "down", status=500)
    for path in ("/news/b", "/news/c"):
        site.add(path, STORY.format(path))
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", feed_of(site, "/news/b", "/news/c"), "--out", str(out),
                                     "--allow-private-network")
    assert code == 0 and summary["items"]["articles"] == 0, printed
    assert [error for _, error, _ in rejects(out)] == ["robots-unreachable"] * 2
    assert site.hits["/robots.txt"] == 1 and site.hits["/news/b"] == 0
    site.add("/robots.txt", "", status=404)  # back, and without rules
    code, printed, summary = run_cli("--feeds", site.url("/rss"), "--out", str(out),
                                     "--allow-private-network")
    assert code == 0, printed
    assert summary["items"]["articles"] == 2, "a temporary failure: retried though the feed is unchanged"


@pytest.mark.e2e
def test_a_busy_server_is_asked_again_within_the_run_then_the_page_lands(site, tmp_path):
    site.add("/p/busy", STORY.format("busy"), flaky=2, flaky_status=429, flaky_headers={"Retry-After": "1"})
    site.add("/p/down", "down", status=503)
    site.add("/p/later", "later", status=503, headers={"Retry-After": "3600"})
    site.add("/p/reset", "", reset=True)
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", feed_of(site, "/p/busy", "/p/down", "/p/later", "/p/reset"),
                                     "--out", str(out), "--allow-private-network", "--retries", "2",
                                     "--pause-host-after", "0")
    assert code == 0 and summary["items"]["articles"] == 1, printed
    assert site.hits["/p/busy"] == 3, "429, 429, then the page"
    assert (site.hits["/p/down"], site.hits["/p/reset"]) == (3, 3), "two retries, then landed as rejects"
    assert site.hits["/p/later"] == 1, "an hour's Retry-After is left to the next poll"
    assert rejects(out) == [(site.url("/p/down"), "http-status", 503),
                            (site.url("/p/later"), "http-status", 503),
                            (site.url("/p/reset"), "connection", None)]


@pytest.mark.e2e
def test_a_host_that_keeps_failing_is_left_alone_for_the_rest_of_the_run(site, tmp_path):
    paths = [f"/p/{number}" for number in range(12)]
    for path in paths:
        site.add(path, "busy", status=503, headers={"Retry-After": "1"})
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", feed_of(site, *paths), "--out", str(out),
                                     "--allow-private-network", "--per-host", "2", "--pause-host-after", "3")
    assert code == 0 and summary["items"]["seen"] == 12 and summary["adds_up"], printed
    asked = sum(site.hits[path] for path in paths)
    assert asked <= 3 + 2, f"{asked} requests: no more once 3 in a row failed (2 were in flight)"
    errors = {error for _, error, _ in rejects(out)}
    assert errors == {"http-status", "host-unavailable"}


def _bomb(wbits: int) -> bytes:
    """A gigabyte of zeros, about 1 MB compressed, built without holding the gigabyte."""
    packer, megabyte = zlib.compressobj(9, zlib.DEFLATED, wbits), bytes(1 << 20)
    return b"".join(packer.compress(megabyte) for _ in range(1024)) + packer.flush()


@pytest.mark.parametrize(("coding", "body", "error_type"), [
    ("gzip", lambda: _bomb(31), "too-large"),
    ("deflate", lambda: _bomb(15), "too-large"),
    ("br", lambda: b"\x1b\xff\xff" * 100, "content-encoding"),
    ("zstd", lambda: zstandard.ZstdCompressor().compress(bytes(1 << 20)), "content-encoding"),
    ("gzip, snappy", lambda: b"x", "content-encoding"),
])
def test_compressed_bodies_are_capped_and_unknown_codings_refused(site, coding, body, error_type):
    site.add("/p", body(), headers={"Content-Encoding": coding})
    fetcher = Fetcher(FetchSettings(allow_private_network=True))
    with pytest.raises(FetchError) as raised:
        fetcher.get(site.url("/p"), max_bytes=5 << 20, allow_file=False)
    assert raised.value.error_type == error_type


ROBOTS = """\ufeffUser-agent: *
Disallow: /

User-agent: other-bot
User-agent: news-ingest
Allow: /
Disallow: /private

Disallow: /*.php$
Disallow: /*/drafts/
"""


@pytest.mark.parametrize(("path", "allowed"), [
    ("/news/a", True), ("/private/x", False), ("/page.php", False), ("/page.php?x=1", True),
    ("/2026/drafts/x", False), ("/2026/final/x", True),
])
def test_robots_rules_as_rfc_9309_reads_them(path, allowed):
    rules = RobotsRules("news-ingest/1.0 (+https://example.org)", max_hosts=8)
    assert rules.allowed(f"https://site.example{path}", lambda url: (200, ROBOTS.encode())) is allowed


def test_robots_rules_are_kept_for_a_bounded_number_of_hosts():
    fetched = []
    rules = RobotsRules("news-ingest", max_hosts=2)

    def fetch(url):
        fetched.append(url)
        return 200, b"User-agent: *\nDisallow: /x\n"

    for host in ("a", "b", "a", "c", "a", "b"):
        assert rules.allowed(f"https://{host}.example/page", fetch)
    assert [url.split("//")[1].split(".")[0] for url in fetched] == ["a", "b", "c", "b"]


@pytest.mark.e2e
def test_a_feed_url_that_cannot_be_parsed_is_that_feeds_reject_not_the_runs(site, tmp_path):
    feeds = tmp_path / "feeds.opml"
    feeds.write_text('<opml version="2.0"><body><outline xmlUrl="http://[::1/feed.xml"/>'
                     f'<outline xmlUrl="{feed_of(site, "/news/b")}"/></body></opml>')
    site.add("/news/b", STORY.format("b"))
    out = tmp_path / "out"
    code, printed, summary = run_cli("--feeds", str(feeds), "--out", str(out), "--allow-private-network")
    assert code == 0 and summary["items"]["articles"] == 1, printed
    assert query(out, "rejects", "select url, stage from t") == [("http://[::1/feed.xml", "feed")]


@pytest.mark.parametrize("status, statuses, retried", [
    (503, FetchSettings.retry_statuses, True),   # busy: asked again after a wait
    (500, FetchSettings.retry_statuses, False),  # the page's own failure: the next poll
    (500, frozenset({500}), True),               # a deployment whose servers fail that way when busy
])
def test_which_statuses_are_asked_again_within_the_run_is_a_setting(status, statuses, retried):
    settings = FetchSettings(retry_statuses=statuses, retry_wait_s=0.5)
    error = FetchError("http-status", "busy", http_status=status)
    assert (retry_wait(error, 0, settings) == 0.5) is retried
