"""URL identity, in one place and without Beam: what a URL may be
followed, its canonical form and id, and the site (registered domain) it
belongs to. Feeds, fetch, clean and dedup all ask here, so a URL means one
thing everywhere.

The URL rules are data (schemas/data/url_rules.yaml). The site is read with
the Public Suffix List including its private section (blogspot.com,
github.io): there the first label is the site itself, so every Blogspot
blog is a source of its own. Rules and list are built once per process
(per worker), on first use, from the bundled snapshot: no fetch.
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import tldextract
import urllib3

from schemas import load_data

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class UrlRules:
    """The data of schemas/data/url_rules.yaml, compiled."""

    tracking_prefixes: tuple[str, ...]
    tracking_params: frozenset[str]
    host_prefixes: tuple[str, ...]
    amp_path: re.Pattern
    index_pages: tuple[str, ...]

    @classmethod
    def load(cls) -> UrlRules:
        rules = load_data("url_rules.yaml")
        return cls(tuple(rules["tracking_prefixes"]), frozenset(rules["tracking_params"]),
                   tuple(rules["host_prefixes"]), re.compile("|".join(rules["amp_path_patterns"])),
                   tuple(rules["index_pages"]))


def canonicalize_url(url: str) -> str:
    """The form of `url` that identifies an article.

    Scheme https (http and https serve one article) and host lower-case;
    www./m./amp. prefixes dropped where they are not the site's own name
    (m.blogspot.com is a blog); default port, fragment (but a #! route),
    tracking and AMP parameters, AMP path ends, index pages, dot segments,
    doubled and trailing slashes dropped; percent-escapes in one form; the
    query sorted.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # not normalisable (bad port, broken IPv6): it is its own form
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
    rules = url_rules()
    host = _site_host((parts.hostname or "").rstrip("."), rules)
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = rules.amp_path.sub("", _clean_path(parts.path))
    for index in rules.index_pages:
        if path.endswith("/" + index):
            path = path[: -len(index)]
    path = path.rstrip("/") or "/"
    query = sorted(
        (key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in rules.tracking_params and not key.lower().startswith(rules.tracking_prefixes))
    route = parts.fragment if parts.fragment.startswith("!") else ""  # #!/article/123 is the page
    return urlunsplit(("https", netloc, path, urlencode(query), route))


def _site_host(host: str, rules: UrlRules) -> str:
    """The host without edition prefixes (www., m., amp., also stacked)."""
    registered = _suffixes()(host).top_domain_under_public_suffix
    stripped = True
    while stripped and registered and host != registered:
        stripped = False
        for prefix in rules.host_prefixes:
            if host.startswith(prefix) and host[len(prefix):].endswith(registered):
                host, stripped = host[len(prefix):], True
                break
    return host


def _clean_path(path: str) -> str:
    """Dot segments and doubled slashes resolved, escapes in one form
    (%c3%a9 == %C3%A9 == é)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    trailing = "/" if path.endswith("/") else ""
    joined = "/" + "/".join(segments) + (trailing if segments else "")
    return quote(unquote(joined), safe="/:@!$&'()*+,;=-._~")


def url_id(url: str) -> str:
    """Stable 16-hex id of a URL's canonical form (blake2b: fast, in hashlib)."""
    return hashlib.blake2b(canonicalize_url(url).encode("utf-8"), digest_size=8).hexdigest()


def has_tracking(url: str) -> bool:
    try:
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return False
    rules = url_rules()
    return any(key.lower() in rules.tracking_params or key.lower().startswith(rules.tracking_prefixes)
               for key, _ in query)


@functools.cache
def url_rules() -> UrlRules:
    return UrlRules.load()


@functools.cache
def _suffixes() -> tldextract.TLDExtract:
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True)


def registered_domain(url: str) -> str:
    """The site a URL belongs to: its registered domain (`bbc.co.uk`,
    `someblog.blogspot.com`), the host when it has none (an address,
    `localhost`, an organisation whose domain is itself on the private list,
    as mil.ru -- then without `www.`), `local` for a file."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "local"
    host = (parts.hostname or "").lower().rstrip(".")
    site = _suffixes()(host).top_domain_under_public_suffix or host
    return site[4:] if site.startswith("www.") and "." in site[4:] else site


def same_site(url: str, other: str) -> bool:
    """Whether two URLs are of one site: the same registered domain, or one
    host inside the other's (function.mil.ru and mil.ru; never two blogs of
    one platform, a.blogspot.com and b.blogspot.com)."""
    site, other_site = registered_domain(url), registered_domain(other)
    if site == other_site:
        return True
    host, other_host = (urlsplit(u).hostname or "" for u in (url, other))
    return host.endswith("." + other_site) or other_host.endswith("." + site)


def url_problem(url: str, allow_file: bool) -> tuple[str, str] | None:
    """Why `url` may not be followed, as (error type, message), or None.
    file: only from local feeds.

    URLs whose host parsers could read differently (backslashes, user info,
    spaces or escapes in the host part, control characters anywhere) are
    refused: the address check must see the host the HTTP client connects to.
    """
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            return None if allow_file else ("blocked-scheme",
                                            "file:// links are followed only from local feeds")
        if scheme not in ("http", "https"):
            return "unsupported-scheme", f"cannot fetch {scheme or 'relative'} URL"
        _ = parts.port  # raises on a port that is not a number in range
        netloc = parts.netloc
        ambiguous = (not parts.hostname or any(mark in netloc for mark in "\\@%")
                     or any(ch.isspace() for ch in netloc)
                     or any(ord(ch) < 32 or ord(ch) == 127 for ch in url)
                     or ascii_host(urllib3.util.parse_url(url).host or "") != ascii_host(parts.hostname))
    except (ValueError, urllib3.exceptions.LocationParseError):
        ambiguous = True
    return ("invalid-url", f"not a usable URL: {url[:200]!r}") if ambiguous else None


def ascii_host(host: str) -> str:
    """Host in lower-case ASCII (IDNA for international names), for comparing parsers."""
    host = host.strip("[]").lower()
    try:
        return host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
