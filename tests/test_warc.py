"""`news-ingest extract --warc`: the HTML responses of a WARC file (as
Common Crawl's CC-NEWS writes them) cleaned and classified like saved pages;
every other record skipped and counted; a broken file said in one line."""
from __future__ import annotations

import gzip
import json
from dataclasses import replace
from io import BytesIO

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipelines.cli import main

from .conftest import DEMO_PAGES

PAGES = sorted(DEMO_PAGES.glob("*.html"))[:2]


def write_warc(path, records, gzip=True):
    """records: (kind, url, status, content type, body); the archive as crawlers write it."""
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=gzip)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        for kind, url, status, media, body in records:
            headers = StatusAndHeaders(status, [("Content-Type", media)], protocol="HTTP/1.1")
            if kind == "request":
                headers = StatusAndHeaders(f"GET {url} HTTP/1.1", [("Host", "example.org")],
                                           is_http_request=True)
            writer.write_record(writer.create_warc_record(url, kind, payload=BytesIO(body),
                                                          http_headers=headers))
    return path


def crawl(gzip=True, tmp_path=None):
    one, two = (page.read_bytes() for page in PAGES)
    records = [("request", "https://example.org/one", "", "", b""),
               ("response", "https://example.org/one", "200 OK", "text/html; charset=utf-8", one),
               ("response", "https://example.org/logo.png", "200 OK", "image/png", b"\x89PNG\r\n"),
               ("response", "https://example.org/gone", "404 Not Found", "text/html", b"<html>gone</html>"),
               ("response", "https://example.org/two", "200 OK", "application/xhtml+xml", two)]
    return write_warc(tmp_path / f"crawl.warc{'.gz' if gzip else ''}", records, gzip)


def run_extract(capsys, *args):
    code = main(["extract", *args])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


@pytest.mark.parametrize("gzip", [True, False])
def test_the_html_responses_of_a_warc_are_extracted_like_saved_pages(capsys, tmp_path, gzip):
    code, records, err = run_extract(capsys, "--warc", str(crawl(gzip, tmp_path)))
    assert code == 0 and [record["url"] for record in records] == ["https://example.org/one",
                                                                   "https://example.org/two"]
    name = tmp_path / ("crawl.warc.gz" if gzip else "crawl.warc")
    skipped = 4  # the warcinfo, the request, the image and the 404
    assert err.strip() == f"news-ingest: {name}: 2 HTML pages, {skipped} other records skipped"
    for record, page in zip(records, PAGES, strict=True):
        _, [alone], _ = run_extract(capsys, str(page), "--url", record["url"])
        assert {key: record[key] for key in ("title", "text", "actors", "event_types", "language")} == {
            key: alone[key] for key in ("title", "text", "actors", "event_types", "language")}


def test_a_broken_warc_keeps_what_came_before_and_says_why(capsys, tmp_path):
    whole = crawl(True, tmp_path).read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(whole[:len(whole) - 2000])  # the last page cut off, as by a full disk
    code, records, err = run_extract(capsys, "--warc", str(cut))
    assert code == 1 and [record["url"] for record in records] == ["https://example.org/one"]
    assert err.splitlines()[0].startswith("news-ingest: https://example.org/two: the archived page is "
                                          "damaged (") and "bytes missing)" in err, err

    for size in range(200, len(whole), 997):  # cut anywhere: what came before, then one line why
        cut.write_bytes(whole[:size])
        code, records, err = run_extract(capsys, "--warc", str(cut))
        assert code in (0, 1) and "Traceback" not in err and all(record["title"] for record in records)

    text = tmp_path / "notes.txt"
    text.write_text("not an archive\n")
    code, records, err = run_extract(capsys, "--warc", str(text), str(PAGES[0]))
    assert code == 1 and len(records) == 1  # the saved page is still extracted
    assert err.strip() == (f"news-ingest: {text}: cannot read it as a WARC file after 0 pages: Unknown "
                           "archive format, first line: ['not', 'an', 'archive']")


def test_a_changed_page_or_a_whole_file_gzip_is_said(capsys, tmp_path):
    plain = crawl(False, tmp_path)
    changed = tmp_path / "changed.warc"
    changed.write_bytes(plain.read_bytes().replace(b"Syria", b"Syrie", 1))  # one letter of page one
    code, records, err = run_extract(capsys, "--warc", str(changed))
    assert code == 1 and [record["url"] for record in records] == ["https://example.org/two"]
    assert err.splitlines()[0] == ("news-ingest: https://example.org/one: the archived page is damaged "
                                   "(its block digest does not match)")

    whole = tmp_path / "whole.warc.gz"
    whole.write_bytes(gzip.compress(plain.read_bytes()))  # `gzip crawl.warc`: one stream, not per record
    code, records, err = run_extract(capsys, "--warc", str(whole))
    assert code == 1 and err.strip().endswith("(`warcio recompress FILE NEW.warc.gz` makes it so)"), err


def test_extract_needs_pages_or_a_warc(capsys):
    assert main(["extract"]) == 2
    assert "give saved pages (PAGE ..., or - for standard input) or --warc FILE" in capsys.readouterr().err


def archived_page(**changes):
    from datetime import UTC, datetime

    from schemas.records import FeedItem, Page

    body = (DEMO_PAGES / "levantmonitor-us-strikes-tanf-militia.html").read_bytes()
    page = Page(item=FeedItem(url="https://a.example/story", feed_url="https://a.example/feed.xml",
                              title="A story", published_at=datetime(2017, 6, 8, tzinfo=UTC)),
                final_url="https://a.example/story", status=200, content_type="text/html", body=body,
                fetched_at=datetime(2026, 12, 4, 10, 0, tzinfo=UTC), reason="OK",
                headers=(("Content-Type", "text/html; charset=utf-8"), ("Content-Encoding", "gzip")),
                request_headers=(("User-Agent", "news-ingest/test"),))
    return replace(page, **changes)


def test_an_archived_page_reads_back_as_it_was_fetched():
    from transforms.warc import page_records, read_page

    page = archived_page(reason="Très bien")  # a status phrase WARC cannot hold as it is
    back = read_page(BytesIO(page_records(page)), "test")
    assert (back.body, back.final_url, back.status, back.item) == (page.body, page.final_url, 200, page.item)
    assert back.reason == "Tr?s bien" and ("X-Archive-Orig-Content-Encoding", "gzip") in back.headers


def test_the_same_page_gives_the_same_bytes_so_a_retried_write_makes_the_same_file():
    from datetime import UTC, datetime

    from transforms.warc import file_header, page_records

    assert page_records(archived_page()) == page_records(archived_page())
    assert page_records(archived_page()) != page_records(archived_page(fetched_at=datetime.now(UTC)))
    moment = datetime(2026, 12, 4, tzinfo=UTC)
    assert file_header("x.warc.gz", moment) == file_header("x.warc.gz", moment)


def test_a_server_sending_megabytes_of_headers_is_kept_to_32_kb():
    from transforms.httpclient import kept_headers

    kept = kept_headers([(f"X-Junk-{number}", "j" * 65_000) for number in range(95)] + [("Server", "x")])
    assert sum(len(name) + len(value) for name, value in kept) < 40_000
    assert kept[-1] == ("X-Archive-Headers-Dropped", "95")
