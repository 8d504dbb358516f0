"""Paywalls: schema.org's isAccessibleForFree kept with each article, and a page too short
to be an article behind a paywall a `paywalled` reject -- never a real article, even a short one."""
from __future__ import annotations

import json

import pytest

from pipelines.cli import main

from .conftest import story

PARAGRAPHS = [story(number) for number in range(12)]  # about 270 words


def page(paragraphs: list[str], markup=None, notice: str = "") -> str:
    ld = f"<script type='application/ld+json'>{json.dumps(markup)}</script>" if markup is not None else ""
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (f"<html><head><title>Report</title>{ld}</head><body><article><h1>Report</h1>{body}"
            f"</article><div class='paywall'>{notice}</div></body></html>")


def extract(tmp_path, capsys, html: str) -> tuple[int, dict | None, str]:
    path = tmp_path / "page.html"
    path.write_text(html)
    code = main(["extract", str(path), "--url", "https://paper.example/news/1"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


NOT_FREE = {"@context": "https://schema.org", "@type": "NewsArticle", "isAccessibleForFree": "False",
            "hasPart": {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": ".paywalled"}}


@pytest.mark.parametrize(("markup", "said"), [
    (None, None),
    ({"@type": "NewsArticle", "isAccessibleForFree": True}, True),
    ({"@graph": [{"@type": "WebPage"}, {"@type": "NewsArticle", "isAccessibleForFree": "false"}]}, False),
    ({"@type": "NewsArticle", "hasPart": [{"isAccessibleForFree": "False", "cssSelector": ".x"}]}, False),
    ({"@type": "NewsArticle", "isAccessibleForFree": "https://schema.org/False"}, False),
    ({"@type": "NewsArticle", "isAccessibleForFree": ["False"]}, False),
    ({"@type": "NewsArticle", "isAccessibleForFree": {"@value": "true"}}, True),
    ({"@type": "NewsArticle", "isAccessibleForFree": "maybe"}, None),
    ({"@type": "NewsArticle", "isAccessibleForFree": "https://example.org/no"}, None),
    ({"@type": "NewsArticle", "isAccessibleForFree": "schema:False"}, False),
    # What the site says of its own offers is not said of this article.
    ({"@graph": [{"@type": "WebSite", "hasPart": {"isAccessibleForFree": False, "cssSelector": ".dossier"}},
                 {"@type": "NewsArticle", "isAccessibleForFree": True}]}, True),
])
def test_the_markup_is_kept_with_the_article(tmp_path, capsys, markup, said):
    code, article, err = extract(tmp_path, capsys, page(PARAGRAPHS, markup))
    assert code == 0, err
    assert article["is_accessible_for_free"] is said


def test_a_teaser_behind_a_paywall_is_kept_and_flagged(tmp_path, capsys):
    """A teaser of 60 words and a notice is not refused: no rule can tell it from a brief."""
    code, article, err = extract(tmp_path, capsys, page(PARAGRAPHS[:3], NOT_FREE,
                                                        "This article is for subscribers only."))
    assert code == 0, err
    assert article["is_accessible_for_free"] is False


def test_a_stub_too_short_to_be_an_article_and_marked_not_free_is_paywalled(tmp_path, capsys):
    code, _, err = extract(tmp_path, capsys, page(["Officials said on Monday."], NOT_FREE))
    assert code == 1 and "behind a paywall: marked not free" in err, err


@pytest.mark.parametrize("notice", ["Réservé aux abonnés.", "للمشتركين فقط.",
                                    "Subscribe to continue reading."])
def test_a_page_too_short_behind_a_notice_says_paywalled_not_too_short(tmp_path, capsys, notice):
    code, _, err = extract(tmp_path, capsys, page(["Officials said on Monday.", notice]))
    assert code == 1 and "behind a paywall" in err and "fewer than" not in err, err


@pytest.mark.parametrize("variant", ["footer notice", "marked alone", "notice in a script",
                                     "story about paywalls", "marked, a notice in the nav",
                                     "a paywalled part not on the page"])
def test_a_short_brief_is_never_lost_to_a_sites_template(tmp_path, capsys, variant):
    """Metered sites mark every article not free, name a paywalled part that is not on the page,
    and say 'Already a subscriber?' on every page: a complete 70-word brief with any of them stays
    an article."""
    brief = PARAGRAPHS[:3]
    marked = {"@type": "NewsArticle", "isAccessibleForFree": False}
    html = {
        "footer notice": page(brief, None, "Premium content"),
        "marked alone": page(brief, marked),
        "notice in a script": page(brief, marked).replace(
            "</body>", "<script>window.__DATA__={'m':'Subscribe to continue reading'}</script></body>"),
        "story about paywalls": page([*brief, "Readers now see 'Subscribe to continue reading' on many "
                                             "sites, the council said."], marked),
        "marked, a notice in the nav": page(brief, marked).replace(
            "<body>", "<body><nav><a href='/login'>Already a subscriber? Sign in</a></nav>"),
        "a paywalled part not on the page": page(brief, NOT_FREE, "Subscribe to continue reading"),
    }[variant]
    code, article, err = extract(tmp_path, capsys, html)
    assert code == 0, err
    assert article["word_count"] >= 55


@pytest.mark.e2e
def test_a_run_records_a_stub_as_a_paywalled_reject_and_flags_the_rest(site, tmp_path):
    from .conftest import query, run_cli
    from .loopback import rss

    site.add("/p/stub", page(["Officials said on Monday."], NOT_FREE, "Subscribe to continue reading"))
    site.add("/p/full", page(PARAGRAPHS, NOT_FREE, "Already a subscriber? Sign in"))
    site.add("/rss", rss([{"link": "/p/stub"}, {"link": "/p/full"}]), content_type="application/rss+xml")
    out = tmp_path / "data"
    run = run_cli("--feeds", site.url("/rss"), "--out", str(out), "--allow-private-network",
                  "--host-delay", "0")
    assert run.code == 0, run.printed
    assert query(out, "rejects", "select url, error_type from t") == [(site.url("/p/stub"), "paywalled")]
    stored = query(out, "articles", "select url, is_accessible_for_free from t")
    assert stored == [(site.url("/p/full"), False)]
