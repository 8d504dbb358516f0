"""`news-ingest verify`: a sound dataset (fresh, or of the oldest release)
verifies clean; each kind of damage is found and named; `--repair` mends
what the next run would, leaves the rest, and a run afterwards works."""
from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.cli import EXIT_LOCKED, main
from pipelines.lock import RunLock
from pipelines.verify import KINDS
from schemas.tables import DUPLICATES

from .conftest import ROOT, run_cli

pytestmark = pytest.mark.e2e  # whole runs through the command line: `make test-fast` skips them

DEMO_FEEDS = ROOT / "seeds" / "demo.opml"
OLD = ROOT / "tests" / "data" / "old-dataset"
# The partition of each demo article (one file each); copies point at the first two.
ARABTIMES = "date=2015-09-23/actor=russia"  # an `exact` copy points at it
DEFENSEPOST = "date=2018-09-18/actor=shq"  # another feed's `url` listing points at it
LEVANT = "date=2017-06-08/actor=coalition"
GRASSWIRE = "date=2017-08-03/actor=coalition"
SYRIAHR = "date=2017-08-02/actor=syrian-regime"
STRAY_RUN = "part-20990101T000000Z-abcdef-00000.parquet"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(out))
    assert code == 0, printed
    return out


@pytest.fixture
def dataset(demo, tmp_path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(demo, out)
    return out


def verify(out: Path, *args: str) -> tuple[int, str]:
    captured = io.StringIO()
    with redirect_stdout(captured):
        code = main(["verify", "--out", str(out), *args])
    return code, captured.getvalue()


def files_of(out: Path) -> dict[str, int]:
    return {str(path.relative_to(out)): path.stat().st_size for path in out.rglob("*") if path.is_file()}


def kinds_in(printed: str) -> set[str]:
    return {kind for kind, label in KINDS.items() if f"{label}: " in printed}


def article_file(out: Path, partition: str) -> Path:
    """The demo run's file of an article (not one a damage added beside it)."""
    return next(path for path in (out / "articles" / partition).glob("part-*.parquet")
                if path.name != STRAY_RUN)


def article(out: Path, partition: str) -> dict:
    return pq.read_table(article_file(out, partition), columns=["article_id", "url"]).to_pylist()[0]


# Each damage: what it does to a dataset, and the kind of problem verify must name.

def truncated_articles_file(out: Path) -> None:
    path = article_file(out, LEVANT)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty_file(out: Path) -> None:
    (article_file(out, GRASSWIRE).parent / STRAY_RUN).write_bytes(b"")


def leftover(out: Path) -> None:
    folder = next((out / "mentions").glob("date=*/actor=*"))
    (folder / f".{STRAY_RUN}.inprogress").write_bytes(b"half a file")


def commit_left_behind(out: Path) -> None:
    """A run killed between writing its commit list and the renames."""
    path = article_file(out, GRASSWIRE)
    hidden = path.with_name(f".{path.name}.inprogress")
    path.rename(hidden)
    (out / "_state" / "commits").mkdir(parents=True, exist_ok=True)
    (out / "_state" / "commits" / "20990101T000000Z-abcdef.json").write_text(
        json.dumps({"files": [str(path)], "replaced": []}))


def damaged_templates(out: Path) -> None:
    path = next((out / "_state" / "templates").glob("history-*.parquet"))
    path.write_bytes(path.read_bytes()[:40])


def damaged_memory(out: Path) -> None:
    path = next((out / "_state" / "memory" / "keys").rglob("*.parquet"))
    path.write_bytes(b"PAR1 not really")


def damaged_feed_state(out: Path) -> None:
    (out / "_state" / "feeds.json").write_text("{")


def duplicate_of_removed_article(out: Path) -> None:
    article_file(out, ARABTIMES).unlink()


def article_url_also_a_copy(out: Path) -> None:
    """A copy row whose URL is a stored article's, pointing at another article."""
    stored, other = article(out, SYRIAHR), article(out, DEFENSEPOST)
    row = {name: None for name in DUPLICATES.names} | {
        "article_id": stored["article_id"], "url": stored["url"], "duplicate_of": other["article_id"],
        "method": "exact", "similarity": 1.0, "detected_at": datetime(1970, 1, 1, tzinfo=UTC),
        "run_id": "20990101T000000Z-abcdef"}
    folder = out / "duplicates" / "date=1970-01-01"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row], schema=DUPLICATES), folder / STRAY_RUN)


def stored_twice(out: Path) -> None:
    path = article_file(out, SYRIAHR)
    shutil.copy(path, path.parent / STRAY_RUN)


def stray_file(out: Path) -> None:
    (out / "duplicates" / "notes.txt").write_text("a person's notes")


def bad_partition_value(out: Path) -> None:
    folder = (out / "articles" / GRASSWIRE).parent
    folder.rename(folder.with_name("date=2017-8-3"))


def misplaced_rows(out: Path) -> None:
    path = article_file(out, LEVANT)
    elsewhere = path.parent.parent.with_name("date=2001-01-01") / path.parent.name
    elsewhere.mkdir(parents=True)
    path.rename(elsewhere / path.name)


def another_schema(out: Path) -> None:
    folder = article_file(out, DEFENSEPOST).parent
    pq.write_table(pa.table({"article_id": ["x"], "url": [42]}), folder / STRAY_RUN)


DAMAGES = {
    truncated_articles_file: "unreadable", empty_file: "unreadable", leftover: "leftovers",
    commit_left_behind: "commits", damaged_templates: "state", damaged_memory: "state",
    damaged_feed_state: "state", duplicate_of_removed_article: "dangling",
    article_url_also_a_copy: "url_and_copy", stored_twice: "urls_twice", stray_file: "orphans",
    bad_partition_value: "partitions", misplaced_rows: "misplaced", another_schema: "schema",
}
# What --repair mends, and what it leaves for a person to judge.
MENDED = (truncated_articles_file, empty_file, leftover, commit_left_behind, damaged_templates,
          damaged_memory, damaged_feed_state)
LEFT = {duplicate_of_removed_article: "dangling", article_url_also_a_copy: "url_and_copy",
        stray_file: "orphans", bad_partition_value: "partitions", another_schema: "schema"}


def test_a_fresh_dataset_is_sound(dataset):
    code, printed = verify(dataset)
    assert code == 0, printed
    files = sum(1 for table in ("articles", "mentions", "duplicates", "rejects")
                for _ in (dataset / table).rglob("*.parquet"))
    assert printed.splitlines() == [f"verify: dataset is sound ({files} files, 5 articles)"], printed


def test_a_dataset_of_the_oldest_release_is_sound(tmp_path):
    out = tmp_path / "data"
    shutil.copytree(OLD, out, ignore=shutil.ignore_patterns("README.md"))
    code, printed = verify(out)
    assert code == 0 and "dataset is sound" in printed and "5 articles" in printed, printed


@pytest.mark.parametrize("damage", list(DAMAGES), ids=lambda damage: damage.__name__)
def test_each_damage_is_found_named_and_left_as_it_is(dataset, damage):
    damage(dataset)
    before = files_of(dataset)
    code, printed = verify(dataset)
    assert code == 1, printed
    assert DAMAGES[damage] in kinds_in(printed), printed
    assert printed.splitlines()[-1].startswith("verify: ") and "problem" in printed.splitlines()[-1]
    assert files_of(dataset) == before, "without --repair, verify changes nothing"


def test_repair_mends_what_a_run_would_and_a_run_then_works(dataset):
    for damage in MENDED:
        damage(dataset)
    code, printed = verify(dataset, "--repair")
    assert code == 0, printed
    assert "repair: rolled forward 1 interrupted commit" in printed
    assert "repair: rebuilt the dataset memory" in printed
    assert printed.splitlines()[-1].startswith("verify: dataset is sound"), printed
    assert list((dataset / "_state" / "quarantine").rglob("*.parquet.*")), "unreadable files moved aside"
    assert verify(dataset)[0] == 0
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(dataset))
    assert code == 0, printed
    assert verify(dataset)[0] == 0


def test_repair_leaves_what_is_for_a_person_to_judge(dataset):
    for damage in (*LEFT, truncated_articles_file):
        damage(dataset)
    code, printed = verify(dataset, "--repair")
    assert code == 1, printed
    # The removed article, and the one in a folder readers pass over, left their mentions behind.
    # The truncated file's salvage rebuilt the memory, which sets a file of another schema aside.
    left = {*LEFT.values(), "mentions_dangling"} - {"schema"}
    assert kinds_in(printed.split("repair: ")[-1]) == left, printed
    assert (dataset / "duplicates" / "notes.txt").exists()
    assert list((dataset / "_state" / "quarantine").rglob(f"{STRAY_RUN}.*")), "set aside, not deleted"
    code, again = verify(dataset)
    assert code == 1 and kinds_in(again) == left, again
    code, printed, _ = run_cli("--feeds", str(DEMO_FEEDS), "--out", str(dataset))
    assert code == 0, printed


def test_verify_holds_the_run_lock_and_leaves_a_crash_for_the_next_start(dataset, capsys):
    with RunLock(str(dataset)):
        assert verify(dataset)[0] == EXIT_LOCKED
    assert "another run is using" in capsys.readouterr().err
    lock = dataset / "_state" / "run.lock"
    lock.write_text("{}")  # what a killed run leaves
    leftover(dataset)
    code, printed = verify(dataset)
    assert code == 1 and "leftovers" in kinds_in(printed), printed
    assert lock.exists(), "the next start still knows to clean up after the crash"
    assert verify(dataset, "--repair")[0] == 0
    assert not lock.exists()


def test_a_folder_that_is_not_a_dataset_is_a_one_line_error(tmp_path, capsys):
    assert verify(tmp_path)[0] == 1
    assert capsys.readouterr().err.count("\n") == 1
