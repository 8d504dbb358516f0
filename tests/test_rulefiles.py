"""A user's gazetteer and event types: `--gazetteer`/`--event-types` on run
and extract, every mistake a one-line error naming its line, and
`news-ingest gazetteer --check` saying what a file changes."""
from __future__ import annotations

import json

import pytest

from pipelines.cli import main
from schemas import data_text

from .conftest import DEMO_PAGES, ROOT, query, run_cli

PAGE = DEMO_PAGES / "arabtimes-rebels-probe-defection.html"  # datelined Beirut
LEBANON = """  - id: lebanon
    name: Lebanese state and army
    type: state
    aliases: [Lebanon, Lebanese army, Beirut]
"""


def with_actor(tmp_path, entry: str = LEBANON):
    """The bundled gazetteer with one more actor, as a user would edit it."""
    path = tmp_path / "gazetteer.yaml"
    path.write_text(data_text("gazetteer.yaml").replace("actors:\n", "actors:\n" + entry, 1))
    return path


def extracted(capsys, *args: str) -> dict:
    assert main(["extract", str(PAGE), *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_extract_tags_with_the_users_gazetteer(capsys, tmp_path):
    assert "lebanon" not in extracted(capsys)["actors"]
    assert "lebanon" in extracted(capsys, "--gazetteer", str(with_actor(tmp_path)))["actors"]


def test_check_says_what_a_gazetteer_changes(capsys, tmp_path):
    path = with_actor(tmp_path)
    path.write_text(path.read_text().replace("      - Daesh\n", "      - Daesh\n      - Daeshi\n", 1))
    assert main(["gazetteer", "--check", str(path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"{path}: a usable gazetteer; against the bundled one: 2 changes"
    assert printed[1:] == ["  new actor lebanon: Beirut, Lebanese army, Lebanon",
                           "  isis: aliases added: Daeshi"]

    assert main(["gazetteer", "--check", str(ROOT / "schemas" / "data" / "gazetteer.yaml")]) == 0
    assert "against the bundled one: no changes" in capsys.readouterr().out


ACTOR = "  - id: {id}\n    name: Someone\n    type: group\n    aliases: [{alias}]\n"


@pytest.mark.parametrize(("entry", "line", "words"), [
    (ACTOR.format(id="isis", alias="Somebody"), 2, "actor 'isis' is listed twice (first on line"),
    (ACTOR.format(id="New Group", alias="Somebody"), 2, "actor id 'New Group' must be lower-case"),
    (ACTOR.format(id="none", alias="Somebody"), 2, "which means no actor"),
    (ACTOR.format(id="copycat", alias="Daesh"), 2, "folds like a name of"),
    (ACTOR.format(id="typo", alias="Somebody").replace("aliases:", "alias:"), 2, "unknown key 'alias'"),
    ("  - id: nameless\n    type: group\n    aliases: [Somebody]\n", 2, "an actor needs name"),
    ("  - id: mute\n    name: Mute\n    type: group\n", 2, "has no aliases or exact words"),
    ("  - id: broken\n    name: [unclosed\n", 4, "not valid YAML"),  # where YAML notices
    ("  - id: twice\n    name: T\n    type: group\n    aliases: [A]\n    aliases: [B]\n", 6,
     "'aliases' is given twice"),
    (ACTOR.format(id="dashes", alias="'---'"), 5, "has no word to match"),  # the aliases' line
    (ACTOR.format(id="spaced", alias="X").replace("aliases:", "exact:").replace("[X]", "[Foo Bar]"), 5,
     "is not one word"),
    (ACTOR.format(id="x" * 65, alias="Somebody"), 2, "at most 64"),
    (ACTOR.format(id="islamic-society", alias="X").replace("aliases: [X]", "exact: [IS]"), 2,
     "exact word 'IS' of"),
    (ACTOR.format(id="fsa", alias="Free Syrian Army"), 2, "of the ignore list folds like a name of fsa"),
    (ACTOR.format(id="wd", alias="X") + "    wikidata: Q-12\n", 6, "must be a Wikidata item id like"),
    (ACTOR.format(id="wd", alias="X") + "    wikidata: q42\n", 6, "must be a Wikidata item id like"),
])
def test_a_bad_gazetteer_is_one_line_naming_its_line(capsys, tmp_path, entry, line, words):
    """`line` counts from the added actor's first line (2, as if it were first in its file)."""
    path = with_actor(tmp_path, entry)
    first = path.read_text().splitlines().index(entry.splitlines()[0]) + 1
    bundled = {actor: number for number, text in enumerate(path.read_text().splitlines(), 1)
               for actor in [text.partition("- id: ")[2]] if actor}
    assert main(["gazetteer", "--check", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"news-ingest: error: {path} line ") and words in err, err
    if "exact word 'IS'" in words:  # the bundled isis comes later and is the one refused
        assert f"(islamic-society: line {first})" in err, err
    elif "listed twice" in words:
        assert f" line {bundled['isis']}: " in err and f"(first on line {first})" in err, err
    elif "copycat" in entry:  # both actors' lines are named
        assert f" line {bundled['isis']}: " in err and f"(copycat: line {first})" in err, err
    else:
        assert f" line {first + line - 2}: " in err, err


@pytest.mark.parametrize(("text", "words"), [
    ("event_types:\n  siege:\n    patterns: ['besieg(?:ed|ing']\n",
     "line 2: pattern 'besieg(?:ed|ing' of 'siege' is not a regular expression"),
    ("event_types:\n  siege:\n    min_hits: 0\n    patterns: [siege]\n",
     "line 2: min_hits of 'siege' must be a whole number, 1 or more"),
    ("event_types:\n  siege:\n    patterns: ['x?']\n",
     "line 2: pattern 'x?' of 'siege' matches nothing at all"),
    ("event_types:\n  siege:\n    patterns: ['(?i)siege', 'besieged']\n",
     "line 2: the patterns of 'siege' cannot be joined into one expression"),
    ("event_types:\n  2024:\n    patterns: [siege]\n", "line 2: event type name 2024 must be lower-case"),
    ("event_types:\n  siege:\n    patterns: [siege]\n  siege:\n    patterns: [sieges]\n",
     "line 4: not valid YAML: 'siege' is given twice (first on line 2)"),
    ("event_types:\n  siege:\n    patterns: [siege]\nlabels: {}\n", "line 4: unknown key 'labels'"),
    ("event_types:\n  siege: [siege]\n", "line 2: event type 'siege' needs a list of `patterns`"),
    ("types:\n  siege: {patterns: [siege]}\n", "line 1: an event-types file is a mapping `event_types`"),
])
def test_a_bad_event_types_file_stops_extract_in_one_line(capsys, tmp_path, text, words):
    path = tmp_path / "events.yaml"
    path.write_text(text)
    assert main(["extract", str(PAGE), "--event-types", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured
    assert captured.err.startswith(f"news-ingest: error: {path} {words}"), captured.err


def test_a_gazetteer_that_is_not_utf8_names_the_line(capsys, tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("actors:\n  - id: a\n    name: \u00c9tat\n".encode("latin-1"))
    assert main(["gazetteer", "--check", str(path)]) == 1
    assert capsys.readouterr().err.strip() == f"news-ingest: error: {path} line 3: not UTF-8 text"


def test_check_names_every_kind_of_change(capsys, tmp_path):
    path = with_actor(tmp_path, "")
    text = path.read_text()
    isis = text.index("- id: isis")
    text = text[:isis] + text[isis:].replace("name: ", "name: Daesh, ", 1)
    path.write_text(text.replace("place_prepositions: [in, ", "place_prepositions: [", 1))
    assert main(["gazetteer", "--check", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "isis: name 'Islamic State" in printed and "-> 'Daesh, Islamic State" in printed
    assert "  place_prepositions removed: in\n" in printed


def test_users_event_types_label_articles(capsys, tmp_path):
    path = tmp_path / "events.yaml"
    path.write_text("event_types:\n  defection:\n    patterns: ['defect(?:ed|ion|ors?)?']\n")
    assert extracted(capsys, "--event-types", str(path))["event_types"] == ["defection"]


@pytest.mark.e2e
def test_a_run_tags_with_the_users_gazetteer(capsys, tmp_path):
    missing = tmp_path / "nowhere.yaml"
    code, _, _ = run_cli("--feeds", str(ROOT / "seeds" / "demo.opml"), "--out", str(tmp_path / "x"),
                         "--gazetteer", str(missing))
    assert code == 1 and f"cannot read {missing}" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # checked before anything was written

    out = tmp_path / "data"
    assert run_cli("--feeds", str(ROOT / "seeds" / "demo.opml"), "--out", str(out),
                   "--gazetteer", str(with_actor(tmp_path)))[0] == 0
    tagged = query(out, "mentions", "select count(distinct article_id) from t where actor = 'lebanon'")
    assert tagged[0][0] >= 1


def test_one_wikidata_item_for_two_actors_names_both(capsys, tmp_path):
    path = with_actor(tmp_path, ACTOR.format(id="daesh-again", alias="X") + "    wikidata: Q2429253\n")
    assert main(["gazetteer", "--check", str(path)]) == 1
    err = capsys.readouterr().err
    added = path.read_text().splitlines().index("    wikidata: Q2429253") + 1  # the new actor's, first
    assert f"wikidata Q2429253 of 'isis' is already 'daesh-again''s (line {added})" in err, err


def test_every_bundled_wikidata_item_is_well_formed_and_names_one_actor():
    """Each actor's Wikidata QID, where it has one, is Q and digits and no other actor's;
    the states have theirs."""
    import re

    from schemas import load_data

    actors = load_data("gazetteer.yaml")["actors"]
    items = [actor["wikidata"] for actor in actors if "wikidata" in actor]
    assert all(re.fullmatch(r"Q[1-9][0-9]*", item) for item in items), items
    assert len(items) == len(set(items))
    assert {actor["id"] for actor in actors if actor["type"] == "state"} <= {
        actor["id"] for actor in actors if "wikidata" in actor}
