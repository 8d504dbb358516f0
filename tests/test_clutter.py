"""Line-level clutter detection: every family in every language, structure,
near-miss prose that must survive, idempotence."""
from __future__ import annotations

import pytest
import yaml

from schemas.settings import CleanSettings
from transforms.clutter import (
    PageSignals,
    clutter_family,
    is_breadcrumb,
    load_clutter_families,
    remove_clutter,
    template_key,
)
from transforms.textnorm import fold

from .conftest import ROOT

FAMILIES = load_clutter_families()
SETTINGS = CleanSettings()
CASES = yaml.safe_load((ROOT / "tests" / "data" / "clutter_cases.yaml").read_text())
CLUTTER = [(family, language, line) for family, languages in CASES["clutter"].items()
           for language, lines in languages.items() for line in lines]
PROSE = [(language, line) for language, lines in CASES["prose"].items() for line in lines]
BODY = ["The Coalition said on Wednesday that talks with the brigade had been cordial.",
        "A spokesperson said the militia had returned heavy weapons and some vehicles."]


def test_every_required_family_is_covered_in_every_language():
    required = ("share", "follow", "subscribe", "ad-blocker", "cookie", "comments",
                "navigation", "copyright", "view-counter")
    languages = {"en", "ar", "fr", "de", "es", "ru", "tr"}
    assert all(set(CASES["clutter"][family]) >= languages for family in required)


@pytest.mark.parametrize("family, language, line", CLUTTER)
def test_clutter_line_is_recognised(family, language, line):
    found = clutter_family(line, FAMILIES)
    assert found is not None and found.name == family


@pytest.mark.parametrize("family, language, line", CLUTTER)
def test_clutter_line_is_removed_from_a_body(family, language, line):
    # Enough text after the line that no trailer rule may take it.
    after = BODY * 6
    cleaned = remove_clutter([*BODY, line, *after], PageSignals(), FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == [*BODY, *after]


@pytest.mark.parametrize("language, prose", PROSE)
def test_prose_that_mentions_clutter_words_is_kept(language, prose):
    assert clutter_family(prose, FAMILIES) is None
    cleaned = remove_clutter([BODY[0], prose, BODY[1]], PageSignals(), FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == [BODY[0], prose, BODY[1]]


def test_long_lines_are_never_matched():
    line = "Share this article " + "and a very long sentence of real reporting " * 20
    assert clutter_family(line, FAMILIES) is None


def test_trailer_marker_never_cuts_a_long_remainder():
    body = [*BODY, "Related Articles", *["A real paragraph " * 20] * 10]
    cleaned = remove_clutter(body, PageSignals(), FAMILIES, SETTINGS)
    assert cleaned.text.count("A real paragraph") == 200
    assert cleaned.removed == ("related",)


def test_a_real_paragraph_after_a_trailer_marker_keeps_the_rest():
    paragraph = ("Residents said the convoy left at dawn, escorted by two armoured vehicles, and that "
                 "the families who stayed behind were told to expect more departures within the week.")
    cleaned = remove_clutter([*BODY, "More stories from Syria", paragraph, "0 / 0"], PageSignals(),
                             FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == [*BODY, paragraph]
    assert cleaned.removed == ("related", "counter")


def test_short_trailer_after_a_marker_is_removed():
    body = [*BODY, "Join us in the newsroom?", "Request an invite", "0 / 0"]
    linked = PageSignals(link_only=frozenset({fold("Request an invite")}))
    cleaned = remove_clutter(body, linked, FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == BODY
    assert cleaned.removed == ("promo", "trailer", "counter")


def test_an_unlinked_list_after_a_misplaced_marker_is_kept():
    facts = ["Key facts", "- 12,000 people left the camp", "- Two convoys a week", "- No aid since May"]
    cleaned = remove_clutter([*BODY, "You may also like", *facts], PageSignals(), FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == [*BODY, *facts]


# An in-body widget between paragraphs, in each language: the marker, then
# three one-line paragraphs of reporting short enough for any length rule.
IN_BODY_WIDGETS = {
    "en": ("You may also like", ["Two schools reopened in Daraa on Sunday.",
                                 "Teachers said attendance was low.", "The ministry promised new books."]),
    "ar": ("قد يعجبك", ["أعيد فتح مدرستين في درعا يوم الأحد.", "قال المعلمون إن الحضور كان ضعيفا.",
                        "وعدت الوزارة بكتب جديدة."]),
    "fr": ("Vous aimerez aussi", ["Deux écoles ont rouvert à Deraa dimanche.",
                                  "Les enseignants ont noté peu d'élèves.",
                                  "Le ministère promet des livres."]),
    "de": ("Das könnte Sie auch interessieren", ["In Daraa öffneten am Sonntag zwei Schulen.",
                                                 "Lehrer sprachen von wenigen Schülern.",
                                                 "Das Ministerium versprach neue Bücher."]),
    "es": ("Te puede interesar", ["Dos escuelas reabrieron en Deraa el domingo.",
                                  "Los maestros dijeron que faltaron alumnos.",
                                  "El ministerio prometió libros nuevos."]),
    "ru": ("Читайте также", ["В Дераа в воскресенье открылись две школы.",
                             "Учителя сказали, что учеников мало.", "Министерство обещало новые учебники."]),
    "tr": ("İlginizi çekebilir", ["Dera'da pazar günü iki okul yeniden açıldı.",
                                  "Öğretmenler katılımın düşük olduğunu söyledi.",
                                  "Bakanlık yeni kitap sözü verdi."]),
}


@pytest.mark.parametrize("language", sorted(IN_BODY_WIDGETS))
def test_an_in_body_widget_removes_itself_and_never_the_paragraphs_after_it(language):
    marker, after = IN_BODY_WIDGETS[language]
    cleaned = remove_clutter([*BODY, marker, *after], PageSignals(), FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == [*BODY, *after]
    assert cleaned.removed == ("related",)


def test_a_real_trailer_of_headlines_after_the_last_paragraph_goes():
    headlines = ["Coalition strikes militia near Tanf", "Rukban camp runs out of food",
                 "Why did the ShQ leave the zone?"]
    signals = PageSignals(link_only=frozenset(fold(line) for line in headlines))
    cleaned = remove_clutter([*BODY, "You may also like", *headlines], signals, FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == BODY
    assert cleaned.removed == ("related", "trailer", "trailer", "trailer")


def test_labels_before_the_headline_become_the_section():
    lines = ["Middle EastWar", "ShQ relocating to Aleppo province", *BODY]
    cleaned = remove_clutter(lines, PageSignals(title="ShQ relocating to Aleppo province"),
                             FAMILIES, SETTINGS)
    assert cleaned.section == "Middle East › War"
    assert cleaned.text.split("\n\n") == BODY
    assert cleaned.removed == ("section", "headline")


def test_a_short_first_line_without_headline_stays_unless_it_is_a_label():
    heading = "Background of the deal"
    kept = remove_clutter([heading, *BODY], PageSignals(title="Something else"), FAMILIES, SETTINGS)
    assert kept.text.split("\n\n") == [heading, *BODY] and kept.section is None
    declared = remove_clutter(["Middle East News", *BODY],
                              PageSignals(sections=frozenset({fold("Middle East News")})),
                              FAMILIES, SETTINGS)
    assert declared.section == "Middle East News" and declared.text.split("\n\n") == BODY
    crumbs = remove_clutter(["Home › World › Middle East", *BODY], PageSignals(), FAMILIES, SETTINGS)
    assert crumbs.text.split("\n\n") == BODY


def test_datelines_before_the_headline_go():
    lines = ["August 3, 2017", "Coalition allowed weapons", *BODY]
    cleaned = remove_clutter(lines, PageSignals(title="Coalition allowed weapons"), FAMILIES, SETTINGS)
    assert cleaned.text.split("\n\n") == BODY
    assert cleaned.removed == ("dateline", "headline")


def test_a_block_of_link_lines_goes_but_a_single_link_stays():
    links = ["Coalition strikes militia near Tanf", "ShQ leaves the deconfliction zone",
             "Rukban camp runs out of food"]
    signals = PageSignals(link_only=frozenset(fold(line) for line in links))
    block = remove_clutter([*BODY, *links], signals, FAMILIES, SETTINGS)
    assert block.text.split("\n\n") == BODY
    assert block.removed == ("link-list",) * 3
    single = remove_clutter([BODY[0], links[0], BODY[1]], signals, FAMILIES, SETTINGS)
    assert single.text.split("\n\n") == [BODY[0], links[0], BODY[1]]


def test_linked_tags_ending_the_body_go_but_an_unlinked_sign_off_stays():
    signals = PageSignals(link_only=frozenset({fold("Syria"), fold("Coalition")}))
    tagged = remove_clutter([*BODY, "Syria", "Coalition"], signals, FAMILIES, SETTINGS)
    assert tagged.text.split("\n\n") == BODY and tagged.removed == ("tail-label", "tail-label")
    signed = remove_clutter([*BODY, "Reporting by Tom Perry"], signals, FAMILIES, SETTINGS)
    assert signed.text.split("\n\n")[-1] == "Reporting by Tom Perry"


def test_cleaning_clean_text_changes_nothing():
    lines = ["Middle EastWar", "Headline here", *BODY, "Related Articles", "Back to top button"]
    once = remove_clutter(lines, PageSignals(title="Headline here"), FAMILIES, SETTINGS)
    twice = remove_clutter(once.text.split("\n\n"), PageSignals(title="Headline here"),
                           FAMILIES, SETTINGS)
    assert twice.text == once.text and twice.removed == ()


def test_breadcrumb_shapes():
    assert is_breadcrumb("Middle EastWar") and is_breadcrumb("Home › World")
    assert not any(is_breadcrumb(line) for line in
                   ("Middle East News", "Brett McGurk speaks", "Why YouTube matters", "iPhone sales"))


def test_a_name_with_inner_capitals_is_not_taken_for_a_breadcrumb():
    lines = ["Brett McGurk speaks", *BODY]
    assert remove_clutter(lines, PageSignals(), FAMILIES, SETTINGS).text.split("\n\n") == lines


def test_template_keys_ignore_case_and_punctuation_but_not_numbers():
    assert template_key("Support our newsroom!") == template_key("support our NEWSROOM")
    assert template_key("The death toll rose to 120.") != template_key("The death toll rose to 130.")
