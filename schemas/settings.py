"""Every tunable default of the pipeline, in one place, each with its reason.

Stages receive these frozen dataclasses through their constructors; the CLI
builds them from options. Nothing else in the code holds a magic number.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("news-ingest")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0+unknown"
PROJECT_URL = "https://github.com/news-ingest/news-ingest"
# Beam metrics namespace of every counter the stages keep.
METRICS_NAMESPACE = "news_ingest"


@dataclass(frozen=True)
class FetchSettings:
    """How feeds and articles are downloaded."""

    # A server that has not accepted a connection in 5 s is down or overloaded.
    connect_timeout_s: float = 5.0
    # Longest silence between two reads of one response.
    read_timeout_s: float = 15.0
    # Whole-response deadline, so a server trickling bytes cannot hold a worker.
    total_timeout_s: float = 30.0
    # News pages are well under 1 MB; 5 MiB leaves room for inline scripts.
    max_page_bytes: int = 5 * 1024 * 1024
    # Feeds with thousands of items with full content reach a few MB.
    max_feed_bytes: int = 10 * 1024 * 1024
    # Browsers allow 20; news sites need 1-3 (http->https, www, tracking hop).
    max_redirects: int = 5
    # Threads per worker: fetching is network-bound, not CPU-bound.
    concurrency: int = 16
    # Downloads under way or queued in the thread pool, per thread: enough
    # that one slow server does not leave the other threads idle, few enough
    # that pages do not pile up in memory ahead of the cleaning.
    in_flight_per_thread: int = 4
    # Politeness per host (Scrapy's defaults are 8 and 0): a handful of
    # parallel requests, started at least a quarter second apart.
    per_host_concurrency: int = 4
    host_delay_s: float = 0.25
    # A host failing this many requests in a row (timeouts, 429, 5xx, resets)
    # gets no more in the run: its pages wait for the next poll.
    host_failures_to_pause: int = 5
    # A 429/502/503/504 or a dropped connection is retried in the run, after
    # the server's Retry-After or 1 s, 2 s, ...; a longer wait than
    # `max_retry_wait_s` is left to the next poll (the page stays a reject).
    retries: int = 2
    retry_wait_s: float = 1.0
    max_retry_wait_s: float = 10.0
    # The statuses a server gives when it is busy or restarting, not when the page is wrong.
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    # RFC 9309 asks parsers to read at least 500 KiB of a robots.txt; a
    # larger file is taken as no rules.
    max_robots_bytes: int = 512 * 1024
    # Hosts whose robots.txt rules a worker keeps at once (least recently used go).
    max_robots_hosts: int = 32
    # Loopback/private/link-local targets are refused unless this is set.
    allow_private_network: bool = False
    # Identify ourselves so site operators know whom to contact.
    user_agent: str = f"news-ingest/{VERSION} (+{PROJECT_URL})"


@dataclass(frozen=True)
class FeedSettings:
    """How often feeds are polled and how failing ones are treated."""

    # After a failure a feed waits base * 2^(failures-1): 15 min, 30, 1 h, ...
    backoff_base_minutes: float = 15.0
    # ...never longer than this, whatever the failures, Retry-After or <ttl>.
    backoff_cap_hours: float = 24.0
    # A feed failing this many polls in a row is marked disabled (still tried
    # at the capped interval, and enabled again by its first success).
    disable_after_failures: int = 10
    # Real feeds list tens to a few thousand entries; parsing costs memory per
    # entry (about 5 KB), so a feed listing more is refused before parsing.
    max_entries: int = 5000
    # A sitemap lists a site's pages of years; its entries dated (news
    # publication date, else <lastmod>) before this many days are not news.
    # Google News sitemaps hold the last two days by rule.
    sitemap_max_age_days: float = 2.0
    # A sitemap index is followed this many levels down (index -> index ->
    # sitemap), to at most this many sitemaps per poll, the newest first.
    sitemap_max_depth: int = 2
    max_child_sitemaps: int = 50
    # The sitemap protocol's limit on a sitemap's size, unzipped (50,000 URLs
    # with lastmod and priority take about 12 MB); a gzip bomb stops here.
    max_sitemap_bytes: int = 50 * 1024 * 1024
    # `discover` checks at most this many feeds a page declares (a page may
    # declare hundreds; real ones declare one to a dozen).
    max_declared_feeds: int = 20
    # Adaptive polling: each feed waits as its own pace calls for, between
    # these bounds (Media Cloud's are 10 min and 24 h; --min-interval,
    # --max-interval; a max of 0 polls every feed on every run, as before).
    min_interval_minutes: float = 10.0
    max_interval_hours: float = 24.0
    # The pace is read off the newest entries' dates, this many at most...
    rate_entries: int = 20
    # ...aiming at this many polls per new entry: an entry waits half an
    # interval on average, so 2 halves that wait against one poll per entry
    # (bench/bench_polling.py measures requests and delays).
    polls_per_item: float = 2.0
    # Poll every feed now, whatever its interval or back-off says (--force:
    # after fixing the network, or to see a failing feed's reason at once).
    force: bool = False


@dataclass(frozen=True)
class CleanSettings:
    """How a page becomes clean article text."""

    # Fewer words than this is a teaser, paywall or index page, not an article
    # (news briefs run from about 30 words; CJK characters count as words).
    min_words: int = 25
    # News pages hold 1,000-30,000 tags; extraction time and memory grow
    # faster than linearly beyond, so a page with more is refused unparsed.
    max_tags: int = 60_000
    # Web news starts in the 1990s; earlier dates are template placeholders.
    earliest_year: int = 1990
    # Feeds and servers run a little ahead or in other time zones.
    future_slack_hours: int = 24
    # A line of at most this many words without sentence punctuation, before
    # the headline or naming a section, is a label ("Middle EastWar"), not news.
    section_label_max_words: int = 5
    # The headline is looked for among this many first lines; what comes
    # before it there is the template's furniture (breadcrumbs, datelines).
    head_max_lines: int = 4
    # Short lines without sentence punctuation that end the body are tag
    # lists and section names; at most this many, of at most this many words.
    tail_label_max_lines: int = 3
    tail_label_max_words: int = 4
    # A block of the page whose text is at least this much link text, and no
    # longer than this, is a link; this many such lines in a row are a list
    # of links (related stories, tag cloud), not the author's references.
    link_list_min_share: float = 0.9
    link_list_max_words: int = 30
    link_block_min_lines: int = 3
    # Site templates: a line is the source's template when it occurs in at
    # least `template_min_articles` of the source's last `template_window`
    # distinct articles and in at least `template_min_share` of them. A promo
    # on every page passes at once; a background paragraph reused across a
    # running topic does not (it would need 4 of 5, 40 of 50 stories); a
    # sentence seen once never does.
    template_window: int = 50
    template_min_articles: int = 3
    template_min_share: float = 0.8
    # Articles of a source sharing this share of their lines are versions of
    # one story (updates, the same story under two URLs) and count once.
    template_same_story: float = 0.5
    # Sources not seen for this long are forgotten (the state stays small).
    template_memory_days: int = 180
    # A trailer marker ("Related Articles", "Join us in the newsroom?") cuts
    # everything after it only if what follows is this short: a site's trailer,
    # never half an article.
    trailer_max_words: int = 120
    # ...and only if each of its lines is this short and a link of the page
    # or furniture by some evidence: a related headline, not reporting.
    trailer_line_max_words: int = 25
    # Furniture the page's markup names (share bars, newsletter boxes, comment
    # forms, author boxes): an element with more text than this is not taken
    # as furniture whatever its label (it may be the article's container: a
    # widget is a few lines), and a line longer than this many words is never
    # removed as furniture (a promo blurb is a sentence or two; longer is
    # likely the article's, mislabelled by a page builder).
    structure_max_chars: int = 1500
    structure_line_max_words: int = 30
    # Call-to-action lines (schemas/data/cues.yaml): at most this many words
    # (an appeal is a line or two; a paragraph is reporting); beyond
    # `cue_one_cue_max_words` two cues are needed, so one word that also
    # carries news ("share", "app") never decides a longer line.
    cue_max_words: int = 25
    cue_one_cue_max_words: int = 12
    # A line seen as boilerplate across sources (transforms/boilerplate.py)
    # is removed only when it has at most this many words.
    cross_source_max_words: int = 25
    # Learned evidence (structure, cues, cross-source) that would remove more
    # than this share of a page's words is wrong about that page (an article
    # inside a container its template labels "comments") and is not used on it.
    learned_max_share: float = 0.5
    # ...when it is the site template (see template_*) of at least this many
    # different sources: a CMS's or plugin's stock line, not one site's. The
    # memory keeps at most `cross_source_max_lines` lines (the most widely
    # seen first), each with up to `cross_source_max_sources` sources, and
    # forgets lines unseen for `template_memory_days`.
    cross_source_min_sources: int = 3
    cross_source_max_lines: int = 20_000
    cross_source_max_sources: int = 8


@dataclass(frozen=True)
class ClassifySettings:
    """How language, actors and event types are assigned."""

    # 2,000 characters decide the language as well as the full text, at a
    # fraction of the cost.
    language_prefix_chars: int = 2000
    # The languages an article may be given (ISO 639-1): those langdetect
    # knew (used before py3langid; it said `zh-cn`/`zh-tw` where this says
    # `zh`), and the region's Kurdish, Armenian, Azerbaijani and Georgian. Fewer choices, fewer
    # mistakes on short texts (no Latin or Aragonese for Spanish).
    languages: tuple[str, ...] = (
        "af", "ar", "az", "bg", "bn", "ca", "cs", "cy", "da", "de", "el", "en", "es", "et", "fa", "fi",
        "fr", "gu", "he", "hi", "hr", "hu", "hy", "id", "it", "ja", "ka", "kn", "ko", "ku", "lt", "lv",
        "mk", "ml", "mr", "ne", "nl", "no", "pa", "pl", "pt", "ro", "ru", "sk", "sl", "so", "sq", "sv",
        "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "zh")
    # Below this many letters any language guess is noise.
    language_min_chars: int = 40
    # A mention in the title says more about what the article is about than
    # one in the body: it counts this many times towards the primary actor.
    title_weight: int = 3
    # The text of a user's gazetteer and event-types files (--gazetteer,
    # --event-types), checked by transforms/rulefiles.py; None: the bundled ones.
    gazetteer: str | None = None
    event_types: str | None = None
    # The text of a user's outlet facts (--outlets), added to the bundled ones.
    outlets: str | None = None


@dataclass(frozen=True)
class DedupSettings:
    """How copies are recognised (measured in bench/bench_dedup.py)."""

    # Overlapping runs of this many words are the units texts are compared in
    # (3 beat 5 on restyled numbers and cut paragraphs at equal precision).
    shingle_words: int = 3
    # MinHash size and its fixed seed (signatures of every run must compare).
    minhash_permutations: int = 128
    minhash_seed: int = 1
    # 32 bands of 4 rows: two texts meet in a bucket with probability
    # 1-(1-s^4)^32: 1.00 at s=0.7, 0.87 at s=0.5, 0.23 at s=0.3. (16 bands
    # of 8 rows missed a tenth of the edited copies.)
    minhash_bands: int = 32
    # Estimated Jaccard similarity from which two texts are the same story
    # (bench/bench_dedup.py prints the measurements behind it).
    near_threshold: float = 0.7
    # A later, shorter text is also a copy when this much of it lies in the
    # earlier one (a copy with paragraphs cut), from a similarity of at least
    # `containment_floor` (below, the estimate is too rough to tell).
    near_containment: float = 0.9
    containment_floor: float = 0.4
    # Two texts that each state at least this many figures are one story only
    # if at least this share of their figures agree (of the cut copy's own,
    # for a cut copy): a daily report repeats yesterday's wording with today's
    # numbers; a copy keeps the numbers.
    min_figures: int = 3
    figure_agreement: float = 0.5
    # A bucket larger than this is compared against its first members only.
    max_bucket: int = 50
    # An article keeps at most this many earlier look-alikes in the duplicate graph.
    max_neighbours: int = 8
    # Content hashes and signatures of articles ingested (by runs started)
    # this many days back are compared with new ones; URLs and ids are
    # remembered for good.
    lookback_days: int = 30


@dataclass(frozen=True)
class MemorySettings:
    """How the dataset memory (DIR/_state/memory/) is laid out."""

    # Keys (URL and id fingerprints, text hashes) are spread over this many
    # files. A run reads and rewrites only the buckets its items fall into:
    # a 10-article run touches about 30 of 256, so its share of a year's
    # memory (~2 million keys, ~8,000 per bucket) stays a few megabytes,
    # while a first run creates few tiny files. Changing it rebuilds the memory.
    buckets: int = 256


@dataclass(frozen=True)
class StreamSettings:
    """How the continuous pipeline remembers what it has seen."""

    # A streaming pipeline keeps the URLs of items it has ingested for this
    # long (per-key state with a time-to-live): feeds rarely list an item for
    # more than a few days; older ones are caught by the dataset's fingerprints.
    seen_ttl_hours: float = 72.0


@dataclass(frozen=True)
class WriteSettings:
    """How the Parquet dataset is laid out."""

    # Bounds memory per file and keeps files friendly to DuckDB/Spark readers.
    max_rows_per_file: int = 50_000
    # Rows per row group of a compacted file: DuckDB reads a row group per
    # thread and skips whole groups by their statistics; its own writer uses
    # 122,880. News partitions (a day and an actor) hold hundreds to a few
    # thousand rows, so compacted files are one group.
    row_group_rows: int = 100_000
    # Partition values longer than this are truncated (file-system limits).
    max_partition_chars: int = 64
    # Keep every fetched page as it came, in WARC files under DIR/raw/
    # (`--archive/--no-archive`), spread over this many files a run and day
    # so that several workers write them at once.
    archive: bool = True
    archive_shards: int = 2


@dataclass(frozen=True)
class Settings:
    """All stage settings of one run."""

    fetch: FetchSettings = FetchSettings()
    feeds: FeedSettings = FeedSettings()
    clean: CleanSettings = CleanSettings()
    dedup: DedupSettings = DedupSettings()
    memory: MemorySettings = MemorySettings()
    stream: StreamSettings = StreamSettings()
    classify: ClassifySettings = ClassifySettings()
    write: WriteSettings = WriteSettings()
