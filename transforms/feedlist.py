"""The feed list: which feeds a run polls (no Beam pipeline; read before one starts).

A feed list is an OPML file, a text file of URLs (one a line, `#` comments)
or a single feed URL/path; relative entries resolve against the list's own
folder. Lists may live where Beam's FileSystems reach (gs://, s3://). An
unusable list is a `FeedListError` naming the file and line: the run cannot
start, and nothing is written.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from apache_beam.io.filesystems import FileSystems
from lxml import etree

_URL_SCHEMES = ("http", "https", "file")


class FeedListError(ValueError):
    """The feed list as a whole is unusable: the run cannot start."""


def read_feed_list(spec: str) -> list[str]:
    """Feed URLs named by `spec`: a feed URL, an OPML file, a text list or a
    local feed file. Lists may also live where Beam's FileSystems reach
    (gs://, s3://), so a cloud job reads its list from the bucket."""
    if not _is_url(spec) and spec[:5].lower() == "file:":  # file:x.xml: a relative path
        spec = unquote(spec[5:])
    scheme = urlsplit(spec).scheme.lower() if _is_url(spec) else ""
    if scheme in _URL_SCHEMES:
        return [spec]
    raw = _read_remote_list(spec) if scheme else _read_local_list(spec)
    origin = spec if scheme else Path(spec)
    head = raw[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        if b"<opml" in head:
            return _dedupe(_opml_urls(raw, origin))
        if scheme:
            raise FeedListError(f"{spec} is a feed, not a feed list: feeds are read over "
                                f"http(s) or from local files")
        return [origin.resolve().as_uri()]  # the file is itself a feed
    return _dedupe(_text_list_urls(raw, origin))


def _is_url(entry: str) -> bool:
    """`scheme://...`, or file:/abs/path, the one absolute URL form without `//`."""
    return "://" in entry or entry[:6].lower() == "file:/"


def _read_local_list(spec: str) -> bytes:
    try:
        return Path(spec).read_bytes()
    except OSError as exc:
        raise FeedListError(f"cannot read feed list {spec}: {exc.strerror or exc}") from exc


def _read_remote_list(spec: str) -> bytes:
    try:
        with FileSystems.open(spec) as handle:
            return handle.read()
    except Exception as exc:  # noqa: BLE001 - each filesystem raises its own errors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FeedListError(f"cannot read feed list {spec}: {reason}") from exc


def _resolve(entry: str, origin: Path | str) -> str:
    """An entry as a URL; relative ones resolve against a local list's folder."""
    if _is_url(entry):
        return entry
    if entry[:5].lower() == "file:":  # file:lf.xml: a path relative to the list, as a bare one is
        entry = unquote(entry[5:])
    if isinstance(origin, str):
        raise FeedListError(f"{origin}: relative entry {entry!r}; a list outside this machine "
                            f"must name feeds by absolute URL")
    return (origin.parent / entry).resolve().as_uri()


def _opml_urls(raw: bytes, list_path: Path | str) -> list[str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{list_path}: not valid OPML: {exc}") from exc
    urls = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl") or outline.get("xmlurl")
        if url and url.strip():
            urls.append(_resolve(url.strip(), list_path))
    if not urls:
        raise FeedListError(f"{list_path}: OPML lists no feeds (no outline with xmlUrl)")
    return urls


def _text_list_urls(raw: bytes, list_path: Path | str) -> list[str]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedListError(f"{list_path}: feed list is not UTF-8 text") from exc
    urls = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        entry = entry.split(" #", 1)[0].strip()
        try:
            urlsplit(entry)
        except ValueError as exc:  # "http://[::1/feed"
            raise FeedListError(f"{list_path}:{number}: not a URL: {entry!r} ({exc})") from exc
        if _is_url(entry) and urlsplit(entry).scheme.lower() not in _URL_SCHEMES:
            raise FeedListError(f"{list_path}:{number}: unsupported URL scheme in {entry!r}")
        urls.append(_resolve(entry, list_path))
    if not urls:
        raise FeedListError(f"{list_path}: feed list names no feeds")
    return urls


def _dedupe(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))
