"""The raw archive: every page a run fetched is kept, as it came, in WARC
files under DIR/raw/, and each article row says where its page is; any
WARC reader (warcio here, `extract --warc`) reads the files."""
from __future__ import annotations

import gzip
import json
import shutil

import pytest
from warcio.archiveiterator import ArchiveIterator

from pipelines.cli import main
from transforms.warc import ArchiveError, read_page

from .conftest import DEMO_PAGES, PAGES, ROOT, assert_sound, query, run_cli
from .loopback import rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

OLD = ROOT / "tests" / "data" / "old-dataset"


def loopback_args(listing, out, *extra):
    return ["--feeds", str(listing), "--out", str(out), "--allow-private-network", "--host-delay", "0",
            *extra]


def stored_pointers(out):
    return query(out, "articles", "select url, warc_file, warc_offset, text from t order by url")


def test_each_article_points_at_its_page_as_the_server_sent_it(news_site, site, tmp_path):
    out = tmp_path / "data"
    code, printed, summary = run_cli(*loopback_args(news_site, out))
    assert code == 0, printed
    pointers = stored_pointers(out)
    assert len(pointers) == summary["items"]["articles"] >= 4
    served = {site.url(path): (DEMO_PAGES / name).read_bytes() for path, name in PAGES.items()}
    for url, warc_file, offset, _ in pointers:
        assert warc_file.startswith("raw/date=") and warc_file.endswith(".warc.gz")
        with open(out / warc_file, "rb") as handle:
            handle.seek(offset)
            page = read_page(handle, warc_file)
        assert page.item.url == url and page.status == 200 and page.content_type == "text/html"
        assert page.body == served[page.final_url]
        assert page.item.feed_url == site.url("/feeds/main.xml") or page.item.feed_url == site.url(
            "/feeds/second.xml")
    # Any WARC reader reads the files whole: digests right, a request and the feed entry with each page.
    kinds, feeds = [], []
    for path in sorted((out / "raw").rglob("*.warc.gz")):
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream, check_digests=True):
                record.content_stream().read()
                assert not record.digest_checker.problems, (path, record.digest_checker.problems)
                kinds.append(record.rec_type)
                target = record.rec_headers.get_header("WARC-Target-URI")
                if record.rec_type == "response" and "/feeds/" in target:
                    feeds.append(target)
    # Every page fetched, whatever it became (article, copy, clean-stage reject), and every feed
    # read (not the one that does not parse, nor the missing one).
    assert sorted(feeds) == [site.url(f"/feeds/{name}.xml") for name in ("main", "second")]
    assert kinds.count("metadata") == summary["items"]["fetched"] > len(pointers)
    assert kinds.count("response") == kinds.count("request") == summary["items"]["fetched"] + len(feeds)
    archived = sum(path.stat().st_size for path in (out / "raw").rglob("*.warc.gz"))
    assert summary["archive"] == {"records": kinds.count("response"), "bytes": archived, "failed": 0}
    assert_sound(out)


def test_a_gzipped_page_is_kept_decoded_with_its_coding_named(site, tmp_path):
    page = (DEMO_PAGES / PAGES["/p/levant"]).read_bytes()
    site.add("/p/zipped", gzip.compress(page), headers={"Content-Encoding": "gzip", "X-Served-By": "edge-7"})
    site.add("/feed.xml", rss([{"link": "/p/zipped", "pubDate": "Thu, 08 Jun 2017 09:30:00 +0000"}]),
             content_type="application/rss+xml")
    out = tmp_path / "data"
    code, printed, _ = run_cli(*loopback_args(site.url("/feed.xml"), out))
    assert code == 0, printed
    [(url, warc_file, offset, _)] = stored_pointers(out)
    with open(out / warc_file, "rb") as stream:
        stream.seek(offset)
        record = next(iter(ArchiveIterator(stream)))
        assert record.rec_type == "response"
        assert record.http_headers.get_header("X-Archive-Orig-Content-Encoding") == "gzip"
        assert record.http_headers.get_header("Content-Encoding") is None
        assert record.http_headers.get_header("X-Served-By") == "edge-7"
        assert record.http_headers.get_header("Content-Length") == str(len(page))
        assert record.content_stream().read() == page


def test_extract_reads_the_archive_back(news_site, tmp_path, capsys):
    out = tmp_path / "data"
    assert run_cli(*loopback_args(news_site, out)).code == 0
    texts = {url: text for url, _, _, text in stored_pointers(out)}
    capsys.readouterr()
    code = main(["extract", *sum((["--warc", str(path)] for path in sorted((out / "raw").rglob("*.warc.gz"))),
                                 [])])
    printed = capsys.readouterr()
    extracted = [json.loads(line) for line in printed.out.splitlines()]
    # The one page too short to be an article (the run rejected it too) is said in one line.
    assert code == 1 and "/p/slow" in printed.err, printed.err
    # The pages of stored articles come out with the same text (one more may be a copy dedup dropped).
    by_url = {row["url"]: row["text"] for row in extracted}
    for url, text in texts.items():
        final = next(found for found in by_url if found.split("?")[0] == url.split("?")[0])
        assert by_url[final] == text


def test_no_archive_keeps_no_pages(news_site, tmp_path):
    out = tmp_path / "data"
    code, printed, _ = run_cli(*loopback_args(news_site, out, "--no-archive"))
    assert code == 0, printed
    assert not (out / "raw").exists()
    assert all(warc_file is None and offset is None for _, warc_file, offset, _ in stored_pointers(out))


def test_an_older_dataset_stays_without_an_archive_unless_asked(tmp_path, site):
    out = tmp_path / "data"
    shutil.copytree(OLD, out, ignore=shutil.ignore_patterns("README.md"))
    site.add("/p/one", (DEMO_PAGES / PAGES["/p/sohr"]).read_bytes())
    site.add("/p/two", (DEMO_PAGES / PAGES["/p/levant"]).read_bytes())
    site.add("/a.xml", rss([{"link": "/p/one"}]), content_type="application/rss+xml")
    site.add("/b.xml", rss([{"link": "/p/two"}]), content_type="application/rss+xml")
    assert run_cli(*loopback_args(site.url("/a.xml"), out)).code == 0
    assert not (out / "raw").exists(), "an old dataset began an archive nobody asked for"
    code, printed, _ = run_cli(*loopback_args(site.url("/b.xml"), out, "--archive"))
    assert code == 0, printed
    assert len(list((out / "raw").rglob("*.warc.gz"))) >= 1
    # From then on it is a dataset with an archive: the default keeps it going.
    site.add("/p/three", (DEMO_PAGES / PAGES["/p/defensepost"]).read_bytes())
    site.add("/c.xml", rss([{"link": "/p/three"}]), content_type="application/rss+xml")
    before = set((out / "raw").rglob("*.warc.gz"))
    assert run_cli(*loopback_args(site.url("/c.xml"), out)).code == 0
    assert set((out / "raw").rglob("*.warc.gz")) > before


def test_a_record_not_where_the_row_says_is_one_clear_error(news_site, tmp_path):
    out = tmp_path / "data"
    assert run_cli(*loopback_args(news_site, out)).code == 0
    _, warc_file, offset, _ = stored_pointers(out)[0]
    with open(out / warc_file, "rb") as handle:
        handle.seek(offset + 7)
        with pytest.raises(ArchiveError, match=f"{warc_file}: not a readable WARC record"):
            read_page(handle, warc_file)


def test_a_link_with_an_arabic_slug_is_archived_as_it_was_requested(site, tmp_path):
    page = (DEMO_PAGES / PAGES["/p/sohr"]).read_bytes()
    site.add("/news/%D9%85%D9%82%D8%A7%D9%84-1", page)
    site.add("/feed.xml", rss([{"link": "/news/مقال-1", "pubDate": "Wed, 02 Aug 2017 09:30:00 +0000"}]),
             content_type="application/rss+xml")
    out = tmp_path / "data"
    code, printed, summary = run_cli(*loopback_args(site.url("/feed.xml"), out))
    assert code == 0 and summary["items"]["articles"] == 1 and summary["archive"]["failed"] == 0, printed
    [(url, warc_file, offset, _)] = stored_pointers(out)
    with open(out / warc_file, "rb") as stream:
        stream.seek(offset)
        records = iter(ArchiveIterator(stream))
        assert next(records).content_stream().read() == page
        request = next(records)
        assert request.rec_type == "request"
        assert request.http_headers.protocol == "GET" and "%D9%85" in request.http_headers.statusline


def test_a_feed_is_kept_only_when_it_brought_something_new(site, tmp_path):
    site.add("/p/one", (DEMO_PAGES / PAGES["/p/sohr"]).read_bytes())
    items = rss([{"link": "/p/one", "pubDate": "Wed, 02 Aug 2017 09:30:00 +0000"}])
    site.add("/feed.xml", items, content_type="application/rss+xml")
    out = tmp_path / "data"
    code, printed, summary = run_cli(*loopback_args(site.url("/feed.xml"), out))
    assert code == 0 and summary["archive"]["records"] == 2, printed  # the page and its feed
    files = set((out / "raw").rglob("*.warc.gz"))
    # Only the feed's build time changed: read anew, nothing new in it, not kept again.
    site.add("/feed.xml", items.replace("<channel>", "<channel><lastBuildDate>now</lastBuildDate>"),
             content_type="application/rss+xml")
    code, printed, summary = run_cli(*loopback_args(site.url("/feed.xml"), out, "--force"))
    assert code == 0 and summary["feeds"]["unchanged"] == 0, printed
    assert summary["archive"]["records"] == 0 and set((out / "raw").rglob("*.warc.gz")) == files
