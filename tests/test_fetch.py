"""Fetch stage against a real loopback server: limits, failures, boundaries."""
from __future__ import annotations

import socket
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import FeedItem
from schemas.settings import FetchSettings
from transforms.failures import FetchError
from transforms.fetch import FetchPages
from transforms.httpclient import Fetcher, link_error
from transforms.netguard import check_public_address

LOCAL = FetchSettings(allow_private_network=True, connect_timeout_s=2, read_timeout_s=1,
                      total_timeout_s=3, max_page_bytes=10_000, max_redirects=3)


@pytest.fixture
def fetcher():
    client = Fetcher(LOCAL)
    yield client
    client.close()


def get(fetcher, url, **kwargs):
    return fetcher.get(url, max_bytes=kwargs.pop("max_bytes", LOCAL.max_page_bytes),
                       allow_file=kwargs.pop("allow_file", False))


def failure(fetcher, url, **kwargs) -> FetchError:
    with pytest.raises(FetchError) as raised:
        get(fetcher, url, **kwargs)
    return raised.value


def test_page_is_fetched_with_our_user_agent(site, fetcher):
    site.add("/a", "<html><body>hello</body></html>")
    response = get(fetcher, site.url("/a"))
    assert response.status == 200 and response.body.endswith(b"</html>")
    assert response.content_type == "text/html"
    assert site.user_agents == {LOCAL.user_agent}
    assert LOCAL.user_agent.startswith("news-ingest/")


def test_redirects_are_followed_up_to_the_limit(site, fetcher):
    site.add("/old", status=301, headers={"Location": "/new"})
    site.add("/new", "moved here")
    assert get(fetcher, site.url("/old")).url == site.url("/new")
    site.add("/loop", status=302, headers={"Location": "/loop"})
    assert failure(fetcher, site.url("/loop")).error_type == "too-many-redirects"
    assert site.hits["/loop"] == LOCAL.max_redirects + 1


def test_http_errors_carry_the_status(site, fetcher):
    error = failure(fetcher, site.url("/missing"))
    assert (error.error_type, error.http_status) == ("http-status", 404)
    site.add("/boom", "oops", status=503)
    assert failure(fetcher, site.url("/boom")).http_status == 503


def test_a_silent_server_times_out(site, fetcher):
    site.add("/slow", "late", delay_s=2.5)
    assert failure(fetcher, site.url("/slow")).error_type == "timeout"


def test_size_cap_declared_and_streamed(site, fetcher):
    site.add("/big", b"x" * 20_000)
    site.add("/undeclared", b"y" * 300_000, declare_length=False)
    assert failure(fetcher, site.url("/big")).error_type == "too-large"
    assert failure(fetcher, site.url("/undeclared")).error_type == "too-large"
    site.add("/small-undeclared", b"z" * 5_000, declare_length=False)
    assert len(get(fetcher, site.url("/small-undeclared")).body) == 5_000


def test_a_trickling_server_is_cut_at_the_total_deadline(site, fetcher):
    site.add("/trickle", b"t" * 200, trickle_s=0.05)  # 10 s if read to the end
    started = time.monotonic()
    assert failure(fetcher, site.url("/trickle")).error_type == "timeout"
    assert time.monotonic() - started < LOCAL.total_timeout_s + LOCAL.read_timeout_s + 0.5


def test_a_server_trickling_its_headers_is_cut_at_the_deadline(site, fetcher):
    site.add("/slow-headers", trickle_headers_s=0.2)  # each byte well within the read timeout
    started = time.monotonic()
    error = failure(fetcher, site.url("/slow-headers"))
    assert error.error_type == "timeout"
    assert time.monotonic() - started < LOCAL.total_timeout_s + 1.5


def test_a_compressed_stream_that_never_yields_text_is_cut_at_the_deadline(site, fetcher):
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    empty_block = b"\x00\x00\x00\xff\xff"  # a deflate block that decodes to nothing
    site.add("/gzip-drip", gzip_header + empty_block * 100, trickle_s=0.02,
             headers={"Content-Encoding": "gzip"}, declare_length=False)
    started = time.monotonic()
    assert failure(fetcher, site.url("/gzip-drip")).error_type == "timeout"
    assert time.monotonic() - started < LOCAL.total_timeout_s + 1


def test_slow_redirect_chains_count_against_the_deadline(site, fetcher):
    for hop in range(3):
        site.add(f"/hop{hop}", status=302, headers={"Location": f"/hop{hop + 1}"}, delay_s=1.2)
    site.add("/hop3", "finally")
    started = time.monotonic()
    assert failure(fetcher, site.url("/hop0")).error_type == "timeout"
    assert time.monotonic() - started < LOCAL.total_timeout_s + 1


@pytest.mark.parametrize("link", [
    "http://bücher.example/katalog",
    "http://BÜCHER.example/",
    "http://a.example/target page with spaces",
    "http://a.example/search?q=a\\b&mail=x@y.org",
    "http://[2001:db8::1]/a",
    "HTTP://A.EXAMPLE/%7Euser/",
])
def test_ordinary_urls_are_followed(link):
    assert link_error(link, allow_file=False) is None


@pytest.mark.parametrize("link", [
    "http://[::1",                      # broken IPv6 literal
    "http://example.org:99999/x",       # port out of range
    "http://example.org:abc/x",
    "http://127.0.0.1:80\\@1.1.1.1/x",  # parsers disagree on the host
    "http://user@example.org/x",
    "http://exa mple.org/x",
    "http://" + "a" * 70 + ".example/x",  # label longer than DNS allows
])
def test_malformed_urls_are_fetch_errors_not_crashes(fetcher, link):
    error = failure(fetcher, link)
    assert error.error_type in ("invalid-url", "dns")


def test_a_redirect_to_a_malformed_location_is_a_fetch_error(site, fetcher):
    site.add("/bad-location", status=302, headers={"Location": "http://[::1"})
    assert failure(fetcher, site.url("/bad-location")).error_type == "invalid-url"


def test_private_addresses_are_refused_before_any_request(site):
    site.add("/a", "hello")
    strict = Fetcher(FetchSettings())
    try:
        with pytest.raises(FetchError) as raised:
            get(strict, site.url("/a"))
    finally:
        strict.close()
    assert raised.value.error_type == "blocked-address"
    assert "non-public address 127.0.0.1" in str(raised.value)
    assert site.hits["/a"] == 0


def refused_by_default(url: str) -> str:
    """The error type of fetching `url` with default settings (no private network)."""
    strict = Fetcher(FetchSettings())
    try:
        with pytest.raises(FetchError) as raised:
            get(strict, url)
    finally:
        strict.close()
    return raised.value.error_type


def test_host_names_are_checked_after_resolution(site):
    """A name that resolves to loopback is refused like the address itself."""
    site.add("/a", "secret")
    assert refused_by_default(f"http://localhost:{site.server.server_address[1]}/a") == "blocked-address"
    assert site.hits["/a"] == 0


@pytest.mark.parametrize("address", [
    "64:ff9b::a9fe:a9fe",  # NAT64 form of 169.254.169.254 (cloud metadata)
    "2002:7f00:1::",  # 6to4 form of 127.0.0.1
    "::ffff:10.0.0.1",  # IPv4-mapped private address
])
def test_ipv4_addresses_inside_ipv6_ones_are_checked_too(monkeypatch, address):
    answer = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, 80))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)
    with pytest.raises(FetchError) as raised:
        check_public_address("sneaky.example", 80)
    assert raised.value.error_type == "blocked-address"


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_contacted(site, monkeypatch):
    """DNS rebinding: a public answer for the check, loopback for the connect."""
    site.add("/a", "secret")
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    assert refused_by_default(f"http://rebind.example:{site.server.server_address[1]}/a") == "blocked-address"
    assert site.hits["/a"] == 0


def test_file_urls_only_when_allowed(tmp_path, fetcher):
    page = tmp_path / "p.html"
    page.write_text("<p>local</p>")
    assert get(fetcher, page.as_uri(), allow_file=True).body == b"<p>local</p>"
    assert failure(fetcher, page.as_uri()).error_type == "blocked-scheme"
    assert failure(fetcher, (tmp_path / "none.html").as_uri(), allow_file=True).error_type == "not-found"
    assert failure(fetcher, "javascript:alert(1)").error_type == "unsupported-scheme"


def test_fetch_pages_routes_failures_to_rejects(site):
    site.add("/ok", "<html><body><p>fine</p></body></html>")
    site.add("/pdf", b"%PDF-1.4", content_type="application/pdf")
    items = [FeedItem(url=site.url(path), feed_url="feed") for path in ("/ok", "/gone", "/pdf")]
    items[1] = FeedItem(url=site.url("/gone"), feed_url="feed",
                        also_listed=(FeedItem(url=site.url("/gone"), feed_url="other"),))
    with TestPipeline(runner="FnApiRunner") as p:
        fetched = p | beam.Create(items) | FetchPages(LOCAL)
        assert_that(fetched.pages | beam.Map(lambda page: page.final_url),
                    equal_to([site.url("/ok")]), label="Pages")
        assert_that(fetched.rejects | beam.Map(lambda r: (r.feed_url, r.error_type, r.http_status)),
                    equal_to([("feed", "http-status", 404), ("other", "http-status", 404),
                              ("feed", "content-type", 200)]), label="Rejects")


def test_a_refused_connection_is_said_in_words(fetcher):
    """The system's reason, not the HTTP client's wrappers (`MaxRetryError(... NewConnectionError(...`)."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        error = failure(fetcher, f"http://127.0.0.1:{port}/feed.xml")
    assert (error.error_type, str(error)) == ("connection", f"cannot connect to 127.0.0.1:{port}: "
                                                            "Connection refused")
