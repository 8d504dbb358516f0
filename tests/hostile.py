"""A loopback news site that misbehaves on purpose, for tests and bench/.

`build(site, folder)` serves feeds and pages for every scenario below on a
LoopbackSite and returns the feed list plus what each article URL must end
as: "article", or the `error_type` of its reject. A run against it is run
with `RUN_OPTIONS` (short timeouts; no politeness delay and no pausing of
failing hosts: one host serves every scenario).
"""
from __future__ import annotations

import zlib
from pathlib import Path

from .loopback import LoopbackSite, rss

RUN_OPTIONS = ("--allow-private-network", "--connect-timeout", "1", "--read-timeout", "1",
               "--total-timeout", "3", "--host-delay", "0", "--per-host", "16", "--retries", "1",
               "--pause-host-after", "0")

SECRET = "TOP-SECRET-LOCAL-FILE"


def story(title: str, words: int = 120) -> str:
    sentence = f"{title}: shelling was reported near Idlib, and officials in Damascus said little. "
    return (f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1><p>"
            + sentence * max(1, words // 14) + "</p></article></body></html>")


def _bomb() -> bytes:
    """A gigabyte of zeros, gzip, about 1 MB: built without holding the gigabyte."""
    packer, megabyte = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(1 << 20)
    return b"".join(packer.compress(megabyte) for _ in range(1024)) + packer.flush()


# path -> (route options, what the item must end as)
PAGES = {
    "/a/ok": ({"body": story("An ordinary story")}, "article"),
    "/a/busy": ({"body": story("Busy at first"), "flaky": 1, "flaky_status": 429,
                 "flaky_headers": {"Retry-After": "1"}}, "article"),
    "/a/cp1252": ({"body": story("Caf\xe9 in Afr\xeen \u2013 \u201cquoted\u201d").encode("cp1252")
                   .replace(b"<head>", b'<head><meta charset="windows-1252">'),
                   "content_type": "text/html"}, "article"),
    "/a/bad-utf8": ({"body": story("Broken bytes").encode() + b"\xff\xfe\xc3(" * 50}, "article"),
    "/a/silent": ({"body": story("Never answers"), "delay_s": 5}, "timeout"),
    "/a/trickle": ({"body": story("Trickles"), "trickle_s": 0.05}, "timeout"),
    "/a/slow-headers": ({"trickle_headers_s": 0.2}, "timeout"),
    "/a/reset": ({"reset": True}, "connection"),
    "/a/500": ({"body": "oops", "status": 500}, "http-status"),
    "/a/404": ({"body": "gone", "status": 404}, "http-status"),
    "/a/410": ({"body": "gone for good", "status": 410}, "http-status"),
    "/a/loop": ({"status": 302, "headers": {"Location": "/a/loop"}}, "too-many-redirects"),
    "/a/huge": ({"body": b"<p>" + b"x" * (1 << 20), "repeat": 200}, "too-large"),
    "/a/huge-unannounced": ({"body": b"<p>" + b"x" * (1 << 20), "repeat": 200,
                             "declare_length": False}, "too-large"),
    "/a/bomb": ({"body": _bomb(), "headers": {"Content-Encoding": "gzip"}}, "too-large"),
    "/a/brotli": ({"body": b"\x1b\xff\xff" * 100, "headers": {"Content-Encoding": "br"}},
                  "content-encoding"),
    "/a/pdf": ({"body": b"%PDF-1.4 " + bytes(2000), "content_type": "application/pdf"}, "content-type"),
    "/a/png": ({"body": b"\x89PNG\r\n\x1a\n" + bytes(2000), "content_type": "image/png"}, "content-type"),
    "/a/empty": ({"body": b""}, "no-content"),
    "/a/dense": ({"body": "<p>x</p>" * 35_000}, "too-complex"),  # 70,000 tags in 280 KB
}
for hop in range(12):  # a chain longer than any redirect limit
    PAGES[f"/a/chain{hop}"] = ({"status": 301, "headers": {"Location": f"/a/chain{hop + 1}"}}, None)
PAGES["/a/chain0"] = (PAGES["/a/chain0"][0], "too-many-redirects")

# Entries that cannot be followed: item rejects, never requested.
UNFOLLOWABLE = {"javascript:alert(1)": "unsupported-scheme", "data:text/html,<p>x</p>": "unsupported-scheme",
                "mailto:desk@example.org": "unsupported-scheme", "file:///etc/passwd": "blocked-scheme"}

LAUGHS = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
          + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(9))
          + ']><rss version="2.0"><channel><title>&j;</title><item><title>&j;</title>'
          '<link>/a/ok</link></item></channel></rss>')


def external_entity_feed(secret_file: Path) -> str:
    return (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "{secret_file.as_uri()}">]>'
            '<rss version="2.0"><channel><title>t</title><item><title>&x;</title>'
            '<link>/a/ok?&x;</link><description>&x;</description></item></channel></rss>')


def build(site: LoopbackSite, folder: Path, many: int = 3000) -> tuple[Path, dict[str, str]]:
    """Serve the hostile site; return (feed list, URL -> expected ending)."""
    for path, (route, _) in PAGES.items():
        site.add(path, **route)
    expected = {site.url(path): ending for path, (_, ending) in PAGES.items() if ending}
    listed = [{"link": path} for path, (_, ending) in PAGES.items() if ending]
    listed += [{"link": link} for link in UNFOLLOWABLE] + [{"title": "an entry without a link"}]
    secret = folder / "secret.txt"
    secret.write_text(SECRET)
    feeds = {
        "/feeds/main.xml": rss(listed),
        # Cut in its second entry: read as far as it parses (feedparser's salvage).
        "/feeds/truncated.xml": rss([{"link": "/a/ok"}, {"link": "/a/cut-here"}])[:200],
        "/feeds/html.xml": story("A web page, not a feed"),
        "/feeds/laughs.xml": LAUGHS,
        "/feeds/xxe.xml": external_entity_feed(secret),
        # Thousands of entries, all the same story: parsed, merged, fetched once.
        "/feeds/many.xml": rss([{"link": "/a/ok", "title": f"copy {n}"} for n in range(many)]),
    }
    for path, body in feeds.items():
        site.add(path, body, content_type="application/rss+xml")
    feed_list = folder / "hostile-feeds.txt"
    feed_list.write_text("\n".join(site.url(path) for path in feeds) + "\n" + site.url("/feeds/missing.xml"))
    return feed_list, expected
