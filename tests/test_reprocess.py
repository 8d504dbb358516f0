"""`news-ingest reprocess`: stored articles tagged (or cleaned and tagged)
again with today's rules; the days that changed are rewritten in one
commit, ids kept, an article whose primary actor changed moved, and a kill
at any point leaves the old files or the new ones."""
from __future__ import annotations

import io
import json
import random
import shutil
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipelines.cli import main
from pipelines.lock import RunLock
from schemas.settings import ClassifySettings, DedupSettings, WriteSettings
from transforms.clean import CleaningFn
from transforms.reprocess import RetagArticles, StoredArticle
from transforms.workers import open_pool

from .conftest import (
    DEMO_FEEDS,
    DEMO_PAGES,
    PAGES,
    ROOT,
    SELF_KILLING_CLI,
    assert_sound,
    dataset_files,
    keys_of_tables,
    memory_keys,
    pipeline,
    query,
    run_cli,
)
from .loopback import rss

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

GAZETTEER = ROOT / "schemas" / "data" / "gazetteer.yaml"
NEW_ACTOR = ("  - id: tanf-garrison\n    name: At Tanf garrison\n    type: military\n"
             "    aliases:\n      - Tanf\n")


def reprocess_cli(*args: str) -> tuple[int, str, dict | None]:
    """`news-ingest reprocess ARGS` in this process, in one process unless ARGS give --workers."""
    captured = io.StringIO()
    summary_file = Path(args[args.index("--out") + 1]).parent / "reprocess-summary.json"
    summary_file.unlink(missing_ok=True)
    workers = () if "--workers" in args else ("--workers", "1")
    with redirect_stdout(captured):
        code = main(["reprocess", *args, *workers, "--summary-json", str(summary_file)])
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    return code, captured.getvalue(), summary


@pytest.fixture
def ingested(tmp_path) -> Path:
    out = tmp_path / "data"
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(out))
    assert code == 0, printed
    return out


def gazetteer_with(tmp_path: Path, edit) -> Path:
    path = tmp_path / "gazetteer.yaml"
    path.write_text(edit(GAZETTEER.read_text("utf-8")), "utf-8")
    return path


def with_new_actor(tmp_path: Path) -> Path:
    return gazetteer_with(tmp_path, lambda text: text.replace("actors:\n", f"actors:\n{NEW_ACTOR}", 1))


def articles(out: Path) -> dict[str, tuple]:
    return {row[0]: row[1:] for row in query(
        out, "articles", "select article_id, actor, primary_actor, actors, code_version, reprocessed_at, "
                         "run_id, text, content_hash from t")}


def assert_mentions_agree(out: Path) -> None:
    """Each article once, in its primary actor's folder, with one mention per actor it names."""
    stored = articles(out)
    assert len(query(out, "articles", "select article_id from t")) == len(stored)
    for folder, primary, *_ in stored.values():
        assert folder == primary
    named = {(article_id, actor) for article_id, row in stored.items() for actor in row[2]}
    mentioned = query(out, "mentions", "select article_id, actor, is_primary from t")
    pairs = {(a, b) for a, b, _ in mentioned}
    assert len(mentioned) == len(pairs) and pairs == named
    assert {(a, b) for a, b, primary in mentioned if primary} == {(a, row[1]) for a, row in stored.items()}


def test_a_new_alias_finds_the_old_articles(ingested, tmp_path):
    before = articles(ingested)
    assert query(ingested, "mentions", "select count(*) from t where actor = 'tanf-garrison'") == [(0,)]
    gazetteer = with_new_actor(tmp_path)
    code, printed, summary = reprocess_cli("--out", str(ingested), "--gazetteer", str(gazetteer))
    assert code == 0, printed
    assert "tanf-garrison new " in printed
    after = articles(ingested)
    assert after.keys() == before.keys(), "ids must stay"
    found = {row[0] for row in query(ingested, "mentions",
                                     "select article_id from t where actor = 'tanf-garrison'")}
    assert found and found <= before.keys()
    assert summary["actors"] == {"tanf-garrison": {"before": 0, "after": len(found)}}
    assert summary["changed"] == len(found) and summary["articles"] == len(before)
    for article_id, (_, _, _, version, reprocessed_at, run_id, text, _) in after.items():
        old = before[article_id]
        assert run_id == old[5] and text == old[6]
        if article_id in found:
            assert version != old[3] and reprocessed_at is not None
        else:
            assert (version, reprocessed_at) == (old[3], None)
    assert_mentions_agree(ingested)
    assert_sound(ingested)
    # Nothing more to change: the second pass rewrites nothing.
    files = dataset_files(ingested)
    code, printed, summary = reprocess_cli("--out", str(ingested), "--gazetteer", str(gazetteer))
    assert code == 0 and summary["changed"] == 0 and dataset_files(ingested) == files, printed


def test_an_article_whose_primary_actor_changes_moves(ingested, tmp_path):
    by_primary = dict(query(ingested, "articles", "select primary_actor, count(*) from t group by all"))
    assert by_primary.get("coalition")
    # Drop the coalition from the gazetteer: its articles go to their next actor.
    gazetteer = gazetteer_with(tmp_path, lambda text: text.replace("  - id: coalition\n",
                                                                   "  - id: the-coalition\n"))
    code, printed, summary = reprocess_cli("--out", str(ingested), "--gazetteer", str(gazetteer))
    assert code == 0, printed
    assert summary["moved"] == by_primary["coalition"] and summary["actors"]["coalition"]["after"] == 0
    assert not list((ingested / "articles").rglob("actor=coalition")), "an empty folder is left"
    moved = dict(query(ingested, "articles", "select primary_actor, count(*) from t group by all"))
    assert moved.get("the-coalition") == by_primary["coalition"]
    assert_mentions_agree(ingested)


def test_only_the_days_asked_for_are_read(ingested, tmp_path):
    days = sorted(path.name[5:] for path in (ingested / "articles").iterdir())
    outside = {path for path in dataset_files(ingested) if f"date={days[0]}" in str(path) or
               f"date={days[-1]}" in str(path)}
    code, printed, summary = reprocess_cli("--out", str(ingested), "--gazetteer",
                                           str(with_new_actor(tmp_path)), "--since", days[1],
                                           "--until", days[-2])
    assert code == 0, printed
    assert summary["days"] == len(days) - 2 and summary["days_rewritten"] >= 1
    assert outside <= dataset_files(ingested), "a day outside the range was rewritten"
    assert_mentions_agree(ingested)


def rewrite_text(out: Path, article_id: str, text: str) -> None:
    """What an older cleaner would have stored: another text (and its hash)."""
    for path in (out / "articles").rglob("*.parquet"):
        table = pq.read_table(path)
        rows = table.to_pylist()
        if any(row["article_id"] == article_id for row in rows):
            for row in rows:
                if row["article_id"] == article_id:
                    row["text"], row["content_hash"] = text, "0" * 16
            pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
            return
    raise AssertionError(f"{article_id} not stored")


def test_text_cleans_the_archived_page_again(ingested):
    before = articles(ingested)
    targets = sorted(before)[:2]  # on two days: each day's commit drops the memory's manifest
    for target in targets:
        rewrite_text(ingested, target, before[target][6] + "\n\nShare this article on Facebook Twitter")
    code, printed, summary = reprocess_cli("--out", str(ingested), "--what", "text")
    assert code == 0, printed
    assert summary["text_changed"] == 2 == summary["changed"] == summary["days_rewritten"], printed
    after = articles(ingested)
    for target in targets:
        assert after[target][6] == before[target][6] and after[target][7] == before[target][7]
        assert after[target][4] is not None
    assert {key: row for key, row in after.items() if key not in targets} == \
        {key: row for key, row in before.items() if key not in targets}
    assert "dataset memory rebuilt" in printed
    assert memory_keys(ingested) == keys_of_tables(ingested)
    assert_sound(ingested)


def test_text_cleans_again_in_worker_processes_as_in_one(ingested, tmp_path, monkeypatch):
    before = articles(ingested)
    for target in sorted(before)[:2]:
        rewrite_text(ingested, target, before[target][6] + "\n\nShare this article on Facebook Twitter")
    shutil.copytree(ingested, tmp_path / "alone")
    with monkeypatch.context() as patched:  # with workers, no page is cleaned in this process
        patched.setattr(CleaningFn, "inline", lambda self, page: pytest.fail("cleaned in the main process"))
        code, printed, pooled = reprocess_cli("--out", str(ingested), "--what", "text", "--workers", "2")
    assert code == 0, printed
    code, printed, alone = reprocess_cli("--out", str(tmp_path / "alone"), "--what", "text")
    assert code == 0, printed
    assert pooled["workers"]["processes"] == 2 and len(pooled["workers"]["peak_rss_mib"]) == 2
    assert alone["workers"] == {"processes": 1, "peak_rss_mib": []}
    assert pooled["text_changed"] == alone["text_changed"] == 2
    same = ("articles", "changed", "days_rewritten", "kept_not_an_article", "actors")
    assert {key: pooled[key] for key in same} == {key: alone[key] for key in same}
    assert strip_reprocessed_at(articles(ingested)) == strip_reprocessed_at(articles(tmp_path / "alone"))
    assert open_pool() is None  # closed with the command


def strip_reprocessed_at(stored: dict[str, tuple]) -> dict[str, tuple]:
    return {key: row[:4] + row[5:] for key, row in stored.items()}


def test_text_without_an_archive_keeps_every_article(tmp_path):
    out = tmp_path / "data"
    assert run_cli("--feeds", str(DEMO_FEEDS), "--out", str(out), "--no-archive").code == 0
    files = dataset_files(out)
    code, printed, summary = reprocess_cli("--out", str(out), "--what", "text")
    assert code == 0, printed
    assert summary["kept_not_archived"] == summary["articles"] > 0 and summary["changed"] == 0
    assert "ingested without the raw archive" in printed
    assert dataset_files(out) == files


def test_a_run_holding_the_dataset_keeps_reprocess_out(ingested, capsys):
    with RunLock(str(ingested)):
        assert main(["reprocess", "--out", str(ingested)]) == 75
    assert "another run is using" in capsys.readouterr().err


def test_a_bad_gazetteer_or_a_damaged_file_changes_nothing(ingested, tmp_path, capsys):
    files = dataset_files(ingested)
    broken = gazetteer_with(tmp_path, lambda text: text.replace("  - id: coalition\n",
                                                                "  - id: Coal ition\n"))
    assert main(["reprocess", "--out", str(ingested), "--gazetteer", str(broken)]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "gazetteer.yaml" in error
    gazetteer = str(with_new_actor(tmp_path))
    assert main(["reprocess", "--out", str(ingested), "--gazetteer", gazetteer,
                 "--summary-json", str(tmp_path / "no" / "such" / "folder.json")]) == 1
    assert "cannot write --summary-json" in capsys.readouterr().err
    assert dataset_files(ingested) == files, "rewritten before finding it cannot say how"
    victim = sorted((ingested / "articles").rglob("*.parquet"))[0]
    victim.write_bytes(b"PAR1 not really")
    files = dataset_files(ingested)
    assert main(["reprocess", "--out", str(ingested), "--gazetteer", str(with_new_actor(tmp_path))]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and victim.name in error and "verify --repair" in error, error
    assert dataset_files(ingested) == files
    assert not list(ingested.rglob("*.inprogress"))


@pytest.mark.parametrize(("when", "where", "published"), [
    ("before", "_state/commits/reprocess-", False),  # every file written, hidden: the old set stays
    ("after", "_state/commits/reprocess-", True),  # committed, nothing renamed yet: rolled forward
    ("after", "/reprocessed-", True),  # killed among the renames
])
def test_killed_anywhere_it_leaves_the_old_files_or_the_new(ingested, tmp_path, when, where, published):
    before = articles(ingested)
    gazetteer = with_new_actor(tmp_path)
    process = subprocess.run([sys.executable, "-c", SELF_KILLING_CLI, when, where, "reprocess", "--out",
                              str(ingested), "--gazetteer", str(gazetteer)], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert_sound(ingested, repair=True)  # what the next start does: finish the commit or drop hidden files
    after = articles(ingested)
    assert after.keys() == before.keys()
    tagged = {article_id for article_id, row in after.items() if "tanf-garrison" in row[2]}
    assert bool(tagged) == published, "a mix of old and new files, or the wrong one"
    assert_mentions_agree(ingested)


def stored(article_id: str, text: str, actors: list[str]) -> StoredArticle:
    moment = datetime(2026, 1, 5, tzinfo=UTC)
    row = {"article_id": article_id, "url": f"https://a.example/{article_id}", "canonical_url": "",
           "source": "a.example", "feed_url": "", "title": "A report", "text": text, "published_at": moment,
           "date_source": "page", "fetched_at": moment, "language": "en", "language_confidence": 1.0,
           "actors": actors, "primary_actor": actors[0] if actors else "none", "event_types": [],
           "content_hash": "x", "word_count": len(text.split()), "run_id": "20260105T000000Z-aaaaaa"}
    return StoredArticle("2026-01-05", row["primary_actor"], row, ())


def test_retag_says_what_changed_and_keeps_the_rest():
    text = ("Syrian government forces shelled Idlib on Monday, residents said, and the shelling went on "
            "through the night across the province.")
    calm = "The weather in the north was mild on Monday, and farmers expect a good harvest later this year."
    with pipeline() as p:
        outcomes = (p
                    | beam.Create([("2026-01-05", stored("a1", text, [])),
                                   ("2026-01-05", stored("b2", calm, []))])
                    | RetagArticles(ClassifySettings(), DedupSettings(), WriteSettings(),
                                    text=False)).outcomes
        summary = outcomes | beam.MapTuple(lambda day, outcome: (
            outcome.rows[0][1]["article_id"], outcome.changed, outcome.rows[0][0][2],
            sorted(key[2] for key, _ in outcome.rows[1:])))
        assert_that(summary, equal_to([("a1", True, "syrian-regime", ["syrian-regime"]),
                                       ("b2", False, "none", [])]))


def test_killed_after_a_text_commit_the_next_run_rebuilds_the_memory(ingested):
    before = articles(ingested)
    target = sorted(before)[0]
    rewrite_text(ingested, target, before[target][6] + "\n\nShare this article on Facebook Twitter WhatsApp")
    process = subprocess.run([sys.executable, "-c", SELF_KILLING_CLI, "after", "_state/commits/reprocess-",
                              "reprocess", "--out", str(ingested), "--what", "text"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == -signal.SIGKILL, process.stderr
    code, printed, summary = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(ingested))
    assert code == 0 and summary["items"]["articles"] == 0, printed
    assert articles(ingested)[target][6] == before[target][6]
    assert memory_keys(ingested) == keys_of_tables(ingested)


WORDS = ("army", "forces", "village", "province", "shelling", "convoy", "ceasefire", "talks", "border",
         "refugees", "council", "commander", "rebels", "drone", "strike", "airport", "highway", "checkpoint",
         "negotiations", "humanitarian", "aid", "residents", "market", "hospital", "governor", "militia",
         "offensive", "frontline", "bridge", "river", "valley", "desert", "garrison", "patrol")
PROMO = "This report was produced with support from the Levant Journalism Fund in Amman."


def report_page(number: int, promo: bool = False) -> bytes:
    chooser = random.Random(number)
    paragraphs = [" ".join(" ".join(chooser.choice(WORDS) for _ in range(15)).capitalize() + "."
                           for _ in range(3)) for _ in range(5)]
    if promo:
        paragraphs.insert(3, PROMO)
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (f"<html><head><title>Report number {number} on the fighting</title>"
            f"<meta property='article:published_time' content='2017-06-{1 + number % 28:02d}T10:00:00Z'>"
            f"</head><body><article><h1>Report number {number}</h1>{body}</article></body></html>").encode()


def test_text_strips_each_article_of_the_template_lines_its_run_removed(site, tmp_path):
    """A site's promo line, learned as its template when the first run read it, stays out of
    those articles' text though the site dropped it later (today's template lacks it), and
    whichever days are reprocessed."""
    out = tmp_path / "data"
    args = ("--out", str(out), "--allow-private-network", "--host-delay", "0")
    for number in range(5):
        site.add(f"/a/{number}", report_page(number, promo=True))
    site.add("/first.xml", rss([{"link": f"/a/{number}"} for number in range(5)]),
             content_type="application/rss+xml")
    assert run_cli("--feeds", site.url("/first.xml"), *args).code == 0
    for number in range(100, 160):
        site.add(f"/b/{number}", report_page(number))
    site.add("/second.xml", rss([{"link": f"/b/{number}"} for number in range(100, 160)]),
             content_type="application/rss+xml")
    assert run_cli("--feeds", site.url("/second.xml"), *args).code == 0
    stored = query(out, "articles", "select text from t")
    assert len(stored) == 65 and not any(PROMO in text for (text,) in stored)
    code, printed, summary = reprocess_cli(*args[:2], "--what", "text")
    assert code == 0 and summary["changed"] == 0, printed
    # One day alone, without the rest of its run's articles to learn from: the same.
    code, printed, summary = reprocess_cli(*args[:2], "--what", "text", "--since", "2017-06-05",
                                           "--until", "2017-06-05")
    assert code == 0 and summary["articles"] >= 1 and summary["changed"] == 0, printed
    # Rows of an older version, without the lines: the templates are learned again, run by run.
    for path in (out / "articles").rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.set_column(table.schema.get_field_index("template_lines"), "template_lines",
                                        pa.nulls(table.num_rows, pa.list_(pa.string()))), path)
    code, printed, summary = reprocess_cli(*args[:2], "--what", "text")
    assert code == 0 and summary["changed"] == 0, printed


def merged_copies(site, tmp_path, fetched_apart_days: int = 0):
    """A dataset holding one story twice, merged by hand from two (as an older version's
    dedup could have left it), the second fetched `fetched_apart_days` later: (dataset,
    id of the earlier copy, id of the later)."""
    args = ("--allow-private-network", "--host-delay", "0")
    site.add("/p/arabtimes", (DEMO_PAGES / PAGES["/p/arabtimes"]).read_bytes())
    site.add("/p/gulfwire", (DEMO_PAGES / PAGES["/p/gulfwire"]).read_bytes())
    site.add("/first.xml", rss([{"link": "/p/arabtimes", "pubDate": "Wed, 23 Sep 2015 08:00:00 +0000"}]),
             content_type="application/rss+xml")
    site.add("/second.xml", rss([{"link": "/p/gulfwire", "pubDate": "Wed, 23 Sep 2015 11:00:00 +0000"},
                                 {"link": "/p/gulfwire?utm_source=rss"}]), content_type="application/rss+xml")
    out, other = tmp_path / "data", tmp_path / "other"
    assert run_cli("--feeds", site.url("/first.xml"), "--out", str(out), *args).code == 0
    assert run_cli("--feeds", site.url("/second.xml"), "--out", str(other), *args).code == 0
    for path in (other / "articles").rglob("*.parquet"):
        table = pq.read_table(path)
        later_fetch = pc.add(table["fetched_at"], pa.scalar(timedelta(days=fetched_apart_days)))
        pq.write_table(table.set_column(table.schema.get_field_index("fetched_at"), "fetched_at",
                                        later_fetch.cast(table.schema.field("fetched_at").type)), path)
    for table in ("articles", "mentions", "duplicates", "raw"):
        shutil.copytree(other / table, out / table, dirs_exist_ok=True)
    kept, later = (query(out, "articles", f"select article_id from t where url like '%{name}'")[0][0]
                   for name in ("arabtimes", "gulfwire"))
    assert query(out, "duplicates", "select duplicate_of from t") == [(later,)]
    return out, kept, later


def test_redo_dedup_moves_an_article_now_a_copy_to_duplicates(site, tmp_path):
    """--redo-dedup keeps the earlier copy, and every row that pointed at the later one
    points at it."""
    out, kept, later = merged_copies(site, tmp_path)
    code, printed, summary = reprocess_cli("--out", str(out), "--what", "text", "--redo-dedup")
    assert code == 0, printed
    assert summary["demoted"] == 1 and summary["duplicates_repointed"] == 1, printed
    assert [row[0] for row in query(out, "articles", "select article_id from t")] == [kept]
    [listing] = query(out, "duplicates", "select article_id from t where method = 'url'")
    assert sorted(query(out, "duplicates", "select article_id, duplicate_of, method from t")) == sorted(
        [(later, kept, "exact"), (listing[0], kept, "url")])
    assert_mentions_agree(out)
    assert memory_keys(out) == keys_of_tables(out)
    assert_sound(out)


def test_redo_dedup_pairs_only_articles_a_run_would_have_compared(site, tmp_path):
    """A copy fetched further apart than the runs' look-back (30 days) from its original
    stays an article, as runs left it, and the summary says so."""
    out, kept, later = merged_copies(site, tmp_path, fetched_apart_days=90)
    before = sorted(query(out, "duplicates", "select article_id, duplicate_of from t"))
    code, printed, summary = reprocess_cli("--out", str(out), "--what", "text", "--redo-dedup")
    assert code == 0, printed
    assert summary["demoted"] == 0 and summary["copies_outside_lookback"] == 1, printed
    assert "fetched more than 30 days apart" in printed
    stored = sorted(row[0] for row in query(out, "articles", "select article_id from t"))
    assert stored == sorted([kept, later])
    assert sorted(query(out, "duplicates", "select article_id, duplicate_of from t")) == before
    assert_sound(out)
