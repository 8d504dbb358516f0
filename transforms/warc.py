"""The raw archive's records (no Beam): a fetched page as standard WARC
(ISO 28500) records, and the page read back from them, with warcio (the
Webrecorder library pywb and Common Crawl's tools build on).

A page is three records, each its own gzip member, so a reader can start
at any record (as in Common Crawl's files): the `response` -- the status
line, the headers as the server sent them and the body (a page read from
a local file is a `resource` record) --, the `request` we sent, and a
`metadata` record with the feed entry that linked to the page (JSON), which
`reprocess --what text` needs to clean the page again. A feed is kept the
same way, without the metadata record. The HTTP client
stores bodies decoded (gzip undone), so a `Content-Encoding` or
`Transfer-Encoding` header is kept as `X-Archive-Orig-…` and
`Content-Length` states the stored length, as archiving proxies do.
"""
from __future__ import annotations

import io
import json
import uuid
import zlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from requests.utils import requote_uri
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from schemas.records import FeedItem, Page
from schemas.settings import VERSION

# gzip level 6, not warcio's 9: 0.6 of the time for 0.6 % more bytes (500 pages of the corpus).
_LEVEL = 6
_FEED_ITEM = "application/vnd.news-ingest.feed-item+json"
_RENAMED = ("content-encoding", "transfer-encoding", "content-length")


class ArchiveError(Exception):
    """A page cannot be read back from the archive (the message says where and why)."""


def _gzip_member(record_bytes: bytes) -> bytes:
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    return packer.compress(record_bytes) + packer.flush()


def _record_bytes(writer_records) -> list[bytes]:
    """Each record serialised by warcio, uncompressed (we gzip each alone)."""
    out = []
    for record in writer_records:
        buffer = io.BytesIO()
        WARCWriter(buffer, gzip=False).write_record(record)
        out.append(buffer.getvalue())
    return out


def _warc_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_id(*parts: str) -> str:
    """A record's id from what it holds, not drawn at random: writing the
    same page again gives the same bytes (a retried bundle's file and offsets
    are the first attempt's)."""
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, chr(0).join(parts))}>"


def file_header(name: str, written_at: datetime, path: str = "") -> bytes:
    """The `warcinfo` record that opens each archive file (`path` below DIR,
    whose day tells apart two files of a run with one name): what wrote it."""
    info = f"software: news-ingest/{VERSION}\r\nformat: WARC File Format 1.0\r\n".encode()
    writer = WARCWriter(io.BytesIO(), gzip=False)
    headers = {"WARC-Record-ID": _record_id("warcinfo", path or name), "WARC-Date": _warc_date(written_at),
               "WARC-Filename": name}
    record = writer.create_warc_record("", "warcinfo", payload=io.BytesIO(info), length=len(info),
                                       warc_content_type="application/warc-fields", warc_headers_dict=headers)
    return _gzip_member(_record_bytes([record])[0])


def _ascii(text: str) -> str:
    """A status line's reason as WARC can hold it (`Très bien` -> `Tr?s bien`)."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


def _stored_headers(page: Page) -> list[tuple[str, str]]:
    headers = [(f"X-Archive-Orig-{name}" if name.lower() in _RENAMED else name, value)
               for name, value in page.headers]
    return [*headers, ("Content-Length", str(len(page.body)))]


def page_records(page: Page, entry: bool = True) -> bytes:
    """The page's response (or resource), request and (with `entry`: a page,
    not a feed) metadata records, each a gzip member; the page's offset in a
    file is where these bytes start."""
    writer = WARCWriter(io.BytesIO(), gzip=False)
    date = _warc_date(page.fetched_at)
    fetch = (page.item.url, page.final_url, page.fetched_at.isoformat())

    def headers(kind: str, **more) -> dict:
        return {"WARC-Record-ID": _record_id(kind, *fetch), "WARC-Date": date, **more}

    parts = urlsplit(page.final_url)
    if parts.scheme.lower() in ("http", "https"):
        status = StatusAndHeaders(_ascii(f"{page.status} {page.reason}".strip()), _stored_headers(page),
                                  protocol="HTTP/1.1")
        main = writer.create_warc_record(page.final_url, "response", payload=io.BytesIO(page.body),
                                         length=len(page.body), http_headers=status,
                                         warc_headers_dict=headers("response"))
    else:
        main = writer.create_warc_record(page.final_url, "resource", payload=io.BytesIO(page.body),
                                         length=len(page.body), warc_content_type=page.content_type or
                                         "application/octet-stream", warc_headers_dict=headers("resource"))
    main_id = main.rec_headers.get_header("WARC-Record-ID")
    records = [main]
    if parts.scheme.lower() in ("http", "https"):
        # As sent: the HTTP client percent-encodes a link's non-ASCII path (an Arabic slug).
        target = requote_uri(f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}")
        asked = StatusAndHeaders(f"GET {target} HTTP/1.1", [("Host", parts.netloc), *page.request_headers],
                                 is_http_request=True)
        records.append(writer.create_warc_record(
            page.final_url, "request", http_headers=asked,
            warc_headers_dict=headers("request", **{"WARC-Concurrent-To": main_id})))
    if entry:
        fields = json.dumps(_item_fields(page.item), ensure_ascii=False).encode("utf-8")
        records.append(writer.create_warc_record(
            page.final_url, "metadata", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type=_FEED_ITEM,
            warc_headers_dict=headers("metadata", **{"WARC-Refers-To": main_id})))
    return b"".join(_gzip_member(record) for record in _record_bytes(records))


@dataclass(frozen=True)
class NotArchived:
    """Why a body could not be made into records: its archive record alone is lost."""

    reason: str


def records_or_reason(page: Page, entry: bool = True) -> bytes | NotArchived:
    """`page_records`, or why not: returned, not raised, so a worker process
    can send it back (transforms/archive.py counts and says it)."""
    try:
        return page_records(page, entry)
    except Exception as error:  # noqa: BLE001 -- the page itself must still become an article
        return NotArchived(f"{type(error).__name__}: {error}")


def _item_fields(item: FeedItem) -> dict:
    fields = asdict(item)
    fields["published_at"] = item.published_at.isoformat() if item.published_at else None
    fields["also_listed"] = [_item_fields(other) for other in item.also_listed]
    return fields


def _item_of(fields: dict) -> FeedItem:
    published = fields.get("published_at")
    return FeedItem(url=fields["url"], feed_url=fields.get("feed_url") or "", title=fields.get("title"),
                    author=fields.get("author"),
                    published_at=datetime.fromisoformat(published) if published else None,
                    first_seen=tuple(fields.get("first_seen") or (0, 0)),
                    from_local_feed=bool(fields.get("from_local_feed")),
                    also_listed=tuple(_item_of(other) for other in fields.get("also_listed") or ()))


def read_page(handle, where: str) -> Page:
    """The page whose records start at `handle`'s position (as
    `page_records` wrote them); ArchiveError naming `where` if they are not there."""
    found, item = None, None
    try:
        for record in ArchiveIterator(handle, no_record_parse=False):
            kind = record.rec_type
            if found is None:
                if kind not in ("response", "resource"):
                    raise ArchiveError(f"{where}: a {kind} record, not a page")
                found = _page_of(record)
            elif kind == "metadata" and record.rec_headers.get_header("Content-Type") == _FEED_ITEM:
                item = _item_of(json.loads(record.content_stream().read().decode("utf-8")))
                break
            elif kind != "request":
                break
    except ArchiveError:
        raise
    except Exception as error:  # noqa: BLE001 -- warcio raises many kinds for damaged bytes
        raise ArchiveError(f"{where}: not a readable WARC record ({type(error).__name__}: "
                           f"{str(error)[:200]})") from error
    if found is None:
        raise ArchiveError(f"{where}: no record there")
    if item is None:
        raise ArchiveError(f"{where}: the page's feed entry (metadata record) is missing")
    return Page(item=item, **found)


def _page_of(record) -> dict:
    when = record.rec_headers.get_header("WARC-Date") or ""
    fetched_at = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else datetime.now(UTC)
    if record.rec_type == "resource":
        return {"final_url": record.rec_headers.get_header("WARC-Target-URI"), "status": 200,
                "content_type": record.rec_headers.get_header("Content-Type") or "",
                "body": record.content_stream().read(), "fetched_at": fetched_at}
    http = record.http_headers
    code, _, reason = http.statusline.partition(" ")
    media = (http.get_header("Content-Type") or "").split(";", 1)[0].strip().lower()
    return {"final_url": record.rec_headers.get_header("WARC-Target-URI"), "status": int(code),
            "content_type": media, "body": record.raw_stream.read(), "fetched_at": fetched_at,
            "reason": reason, "headers": tuple(http.headers)}
