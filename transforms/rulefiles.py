"""A user's gazetteer or event-types file (`--gazetteer`, `--event-types`):
read and checked before any run uses it, every mistake named with its line,
and compared with the bundled file (`news-ingest gazetteer --check`).

The checked text travels in ClassifySettings, so the workers of a cluster
need no copy of the file; transforms/tagging.py builds the matchers from it.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from schemas import data_text
from schemas.settings import WriteSettings

from .tagging import NO_ACTOR, Gazetteer, load_event_types, words_of

GAZETTEER, EVENT_TYPES, OUTLETS = "gazetteer.yaml", "event_types.yaml", "outlets.yaml"
# Actor ids name partition folders (actor=<id>) and are a contract: plain and stable.
_ACTOR_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_LONGEST_ID = WriteSettings().max_partition_chars  # longer ids would be cut in their folder names
_EVENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_ACTOR_KEYS = {"id": str, "name": str, "type": str, "wikidata": str, "aliases": list, "exact": list,
               "needs_context": list}
_WIKIDATA_ID = re.compile(r"Q[1-9][0-9]{0,11}")
_TERM_LISTS = ("context_terms", "border_terms", "border_actors", "place_prepositions", "ignore")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and line."""


class _Lined(dict):
    line = 0
    key_lines: dict = {}


class _LinedLoader(yaml.SafeLoader):
    """YAML's safe loader whose mappings remember the line they start on and
    each key's; a key given twice is refused (YAML would keep the last silently)."""

    def construct_lined_map(self, node):
        mapping = _Lined()
        mapping.line = node.start_mark.line + 1
        yield mapping
        self.flatten_mapping(node)
        mapping.key_lines = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            if key in mapping.key_lines:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (first on line {mapping.key_lines[key]})",
                    key_node.start_mark)
            mapping.key_lines[key] = key_node.start_mark.line + 1
        mapping.update(self.construct_mapping(node))


_LinedLoader.add_constructor("tag:yaml.org,2002:map", _LinedLoader.construct_lined_map)


def read_rules(path: str, kind: str) -> str:
    """The text of a user's `kind` file (GAZETTEER, EVENT_TYPES or OUTLETS), checked."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        line = Path(path).read_bytes()[:error.start].count(b"\n") + 1
        raise RulesError(f"{path} line {line}: not UTF-8 text") from error
    except OSError as error:
        raise RulesError(f"cannot read {path}: {error.strerror or error}") from error
    check_rules(text, kind, path)
    return text


def check_rules(text: str, kind: str, name: str) -> None:
    """RulesError, naming `name` and the line, unless `text` is a usable `kind` file."""
    try:
        spec = yaml.load(text, Loader=_LinedLoader)  # noqa: S506 (a safe loader, with line numbers)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RulesError(f"{name}{where}: not valid YAML: {problem}") from error
    if kind == GAZETTEER:
        _check_gazetteer(spec, text, name)
    elif kind == OUTLETS:
        _check_outlets(spec, name)
    else:
        _check_event_types(spec, text, name)


def _fail(name: str, line: int, message: str) -> RulesError:
    return RulesError(f"{name} line {line}: {message}")


def _check_gazetteer(spec, text: str, name: str) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("actors"), list) or not spec["actors"]:
        raise _fail(name, getattr(spec, "line", 1), "a gazetteer is a mapping with a list of `actors`")
    for key in spec:
        line = spec.key_lines.get(key, spec.line)
        if key != "actors" and key not in _TERM_LISTS:
            raise _fail(name, line, f"unknown key {key!r} (known: actors, {', '.join(_TERM_LISTS)})")
        if key in _TERM_LISTS:
            _check_terms(spec[key], f"{key}", name, line)
    lines, items = {}, {}
    for entry in spec["actors"]:
        line = getattr(entry, "line", spec.line)
        if not isinstance(entry, dict):
            raise _fail(name, line, "each actor is a mapping with id, name and type")
        for key, value in entry.items():
            if key not in _ACTOR_KEYS:
                raise _fail(name, line, f"unknown key {key!r} of an actor (known: {', '.join(_ACTOR_KEYS)})")
            if _ACTOR_KEYS[key] is list:
                _check_terms(value, f"{key} of {entry.get('id')!r}", name, entry.key_lines.get(key, line),
                             single_words=key == "exact")
            if _ACTOR_KEYS[key] is str and not (isinstance(value, str) and value.strip()):
                raise _fail(name, line, f"{key} of {entry.get('id')!r} must be text")
        missing = [key for key in ("id", "name", "type") if key not in entry]
        if missing:
            raise _fail(name, line, f"an actor needs {', '.join(missing)}")
        actor = entry["id"]
        if not _ACTOR_ID.fullmatch(actor) or actor == NO_ACTOR or len(actor) > _LONGEST_ID:
            raise _fail(name, line, f"actor id {actor!r} must be lower-case letters, digits and hyphens, "
                                    f"at most {_LONGEST_ID} (and not {NO_ACTOR!r}, which means no actor)")
        if actor in lines:
            raise _fail(name, line, f"actor {actor!r} is listed twice (first on line {lines[actor]})")
        lines[actor] = line
        _check_wikidata(entry, name, line, items)
        if not entry.get("aliases") and not entry.get("exact"):
            raise _fail(name, line, f"actor {actor!r} has no aliases or exact words: it could never be found")
    try:
        Gazetteer.load(text)
    except (ValueError, LookupError, TypeError) as error:  # names of two actors alike, ...
        message = str(error)
        named = sorted((found.start(), actor) for actor in lines
                       for found in [re.search(rf"(?<![\w-]){re.escape(actor)}(?![\w-])", message)] if found)
        others = "".join(f" ({actor}: line {lines[actor]})" for _, actor in named[1:])
        raise _fail(name, lines[named[0][1]] if named else spec.line, message + others) from error


def _check_event_types(spec, text: str, name: str) -> None:
    types = spec.get("event_types") if isinstance(spec, dict) else None
    if not isinstance(types, dict) or not types:
        raise _fail(name, getattr(spec, "line", 1), "an event-types file is a mapping `event_types` of "
                                                     "type names to their patterns")
    unknown = [key for key in spec if key != "event_types"]
    if unknown:
        raise _fail(name, spec.key_lines[unknown[0]], f"unknown key {unknown[0]!r} (known: event_types)")
    for event, entry in types.items():
        line = types.key_lines.get(event, types.line)
        if not isinstance(event, str) or not _EVENT_NAME.fullmatch(event):
            raise _fail(name, line, f"event type name {event!r} must be lower-case letters, digits, "
                                    "hyphens or underscores (quote one YAML reads as a number or yes/no)")
        if not isinstance(entry, dict) or not _strings(entry.get("patterns")) or not entry["patterns"]:
            raise _fail(name, line, f"event type {event!r} needs a list of `patterns`")
        unknown = set(entry) - {"patterns", "min_hits"}
        if unknown:
            raise _fail(name, line, f"unknown key {sorted(unknown)[0]!r} of {event!r} (known: patterns, "
                                    "min_hits)")
        hits = entry.get("min_hits", 1)
        if not isinstance(hits, int) or isinstance(hits, bool) or hits < 1:
            raise _fail(name, line, f"min_hits of {event!r} must be a whole number, 1 or more")
        for pattern in entry["patterns"]:
            try:
                alone = re.compile(pattern)
            except re.error as error:
                raise _fail(name, line, f"pattern {pattern!r} of {event!r} is not a regular expression: "
                                        f"{error}") from error
            if alone.fullmatch(""):
                raise _fail(name, line, f"pattern {pattern!r} of {event!r} matches nothing at all, so "
                                        "every article would get the type")
        try:  # the patterns of a type are joined into one: flags, group names and numbers must allow it
            re.compile(r"\b(?:" + "|".join(entry["patterns"]) + r")\b", re.IGNORECASE)
        except re.error as error:
            raise _fail(name, line, f"the patterns of {event!r} cannot be joined into one expression "
                                    f"({error}): leave out global flags like (?i), group names and "
                                    "back-references") from error
    load_event_types(text)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value)


def _check_terms(value, what: str, name: str, line: int, single_words: bool = False) -> None:
    """A list of names that can each be found: text with words in it (exact
    words one word each, matched as written)."""
    if not _strings(value):
        raise _fail(name, line, f"{what} must be a list of words or phrases (quote one YAML reads as "
                                "yes/no or a number)")
    for term in value:
        if single_words and (len(term.split()) != 1 or not term.replace(".", "")):
            raise _fail(name, line, f"{what}: {term!r} is not one word (exact words are matched alone)")
        if not single_words and not words_of(term):
            raise _fail(name, line, f"{what}: {term!r} has no word to match")


def gazetteer_changes(text: str) -> list[str]:
    """What a gazetteer changes against the bundled one, a line each: actors
    added or removed, and every field and term list that differs."""
    bundled, given = yaml.safe_load(data_text(GAZETTEER)), yaml.safe_load(text)
    old, new = ({entry["id"]: entry for entry in spec["actors"]} for spec in (bundled, given))
    changes = [f"new actor {actor}: {', '.join(_names(new[actor]))}" for actor in new if actor not in old]
    changes += [f"actor {actor} removed (articles already tagged with it keep it)"
                for actor in old if actor not in new]
    for actor in (actor for actor in new if actor in old):
        for field in ("name", "type", "wikidata"):
            if old[actor].get(field) != new[actor].get(field):
                changes.append(f"{actor}: {field} {old[actor].get(field)!r} -> {new[actor].get(field)!r}")
        for field in ("aliases", "exact", "needs_context"):
            changes += _set_changes(f"{actor}: {field}", old[actor].get(field, []), new[actor].get(field, []))
    for field in _TERM_LISTS:
        changes += _set_changes(field, bundled.get(field, []), given.get(field, []))
    return changes


def _names(entry: dict) -> list[str]:
    return sorted({*entry.get("aliases", []), *entry.get("exact", [])})


def _set_changes(what: str, before: list[str], after: list[str]) -> list[str]:
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    return ([f"{what} added: {', '.join(added)}"] if added else []) + (
        [f"{what} removed: {', '.join(removed)}"] if removed else [])


def _check_wikidata(entry: dict, name: str, line: int, items: dict[str, tuple[str, int]]) -> None:
    """An actor's Wikidata item, if it has one: well-formed (Q and digits) and no other actor's."""
    if "wikidata" not in entry:
        return
    item, actor = str(entry["wikidata"]).strip(), entry["id"]
    line = entry.key_lines.get("wikidata", line)
    if not _WIKIDATA_ID.fullmatch(item):
        raise _fail(name, line, f"wikidata of {actor!r} must be a Wikidata item id like Q2429253, "
                                f"not {item!r}")
    if item in items:
        other, other_line = items[item]
        raise _fail(name, line, f"wikidata {item} of {actor!r} is already {other!r}'s (line {other_line}): "
                                "one item, one actor")
    items[item] = actor, line


_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
_OUTLET_KEYS = ("country", "language", "name")


def _check_outlets(spec, name: str) -> None:
    """An outlets file: `outlets:` mapping registered domains to {country (ISO 3166-1
    alpha-2), language (ISO 639-1), name}, each checked against the standards' lists."""
    import pycountry  # the ISO lists: loaded only when an outlets file is checked

    if not isinstance(spec, dict) or set(spec) != {"outlets"} or not isinstance(spec["outlets"], dict):
        raise _fail(name, getattr(spec, "line", 1), "an outlets file is a mapping `outlets:` of domains")
    outlets = spec["outlets"]
    for domain, facts in outlets.items():
        line = outlets.key_lines.get(domain, outlets.line)
        if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
            raise _fail(name, line, f"{domain!r} is not a registered domain in lower case, like bbc.co.uk")
        if not isinstance(facts, dict) or not facts:
            raise _fail(name, line, f"{domain}: give a mapping of {', '.join(_OUTLET_KEYS)}")
        unknown = sorted(str(key) for key in facts if key not in _OUTLET_KEYS)
        if unknown:
            known = ", ".join(_OUTLET_KEYS)
            raise _fail(name, line, f"{domain}: unknown key {unknown[0]!r} (known: {known})")
        country, language = facts.get("country"), facts.get("language")
        if country is not None and not _iso_code(country, str.isupper, pycountry.countries):
            raise _fail(name, line, f"{domain}: country {country!r} is not an ISO 3166-1 alpha-2 code "
                                    "like GB or SY")
        if language is not None and not _iso_code(language, str.islower, pycountry.languages):
            raise _fail(name, line, f"{domain}: language {language!r} is not an ISO 639-1 code like ar or en")
        if "name" in facts and not isinstance(facts["name"], str):
            raise _fail(name, line, f"{domain}: name must be text")


def _iso_code(value, written, database) -> bool:
    """A two-letter code, written as its standard writes it, that the standard's list holds."""
    return isinstance(value, str) and len(value) == 2 and written(value) and bool(database.get(alpha_2=value))
