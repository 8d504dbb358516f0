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

from .tagging import NO_ACTOR, Gazetteer, load_event_types

GAZETTEER, EVENT_TYPES = "gazetteer.yaml", "event_types.yaml"
# Actor ids name partition folders (actor=<id>) and are a contract: plain and stable.
_ACTOR_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_ACTOR_KEYS = {"id": str, "name": str, "type": str, "aliases": list, "exact": list, "needs_context": list}
_TERM_LISTS = ("context_terms", "border_terms", "border_actors", "place_prepositions", "ignore")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and line."""


class _Lined(dict):
    line = 0


class _LinedLoader(yaml.SafeLoader):
    """YAML's safe loader whose mappings remember the line they start on."""

    def construct_lined_map(self, node):
        mapping = _Lined()
        mapping.line = node.start_mark.line + 1
        yield mapping
        mapping.update(self.construct_mapping(node))


_LinedLoader.add_constructor("tag:yaml.org,2002:map", _LinedLoader.construct_lined_map)


def read_rules(path: str, kind: str) -> str:
    """The text of a user's `kind` file (GAZETTEER or EVENT_TYPES), checked."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from error
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
    else:
        _check_event_types(spec, text, name)


def _fail(name: str, line: int, message: str) -> RulesError:
    return RulesError(f"{name} line {line}: {message}")


def _check_gazetteer(spec, text: str, name: str) -> None:
    if not isinstance(spec, dict) or not isinstance(spec.get("actors"), list) or not spec["actors"]:
        raise _fail(name, getattr(spec, "line", 1), "a gazetteer is a mapping with a list of `actors`")
    for key in spec:
        if key != "actors" and key not in _TERM_LISTS:
            raise _fail(name, spec.line, f"unknown key {key!r} (known: actors, {', '.join(_TERM_LISTS)})")
        if key in _TERM_LISTS and not _strings(spec[key]):
            raise _fail(name, spec.line, f"{key} must be a list of words or phrases")
    lines = {}
    for entry in spec["actors"]:
        line = getattr(entry, "line", spec.line)
        if not isinstance(entry, dict):
            raise _fail(name, line, "each actor is a mapping with id, name and type")
        for key, value in entry.items():
            if key not in _ACTOR_KEYS:
                raise _fail(name, line, f"unknown key {key!r} of an actor (known: {', '.join(_ACTOR_KEYS)})")
            if _ACTOR_KEYS[key] is list and not _strings(value):
                raise _fail(name, line, f"{key} of {entry.get('id')!r} must be a list of words or phrases")
            if _ACTOR_KEYS[key] is str and not (isinstance(value, str) and value.strip()):
                raise _fail(name, line, f"{key} of {entry.get('id')!r} must be text")
        missing = [key for key in ("id", "name", "type") if key not in entry]
        if missing:
            raise _fail(name, line, f"an actor needs {', '.join(missing)}")
        actor = entry["id"]
        if not _ACTOR_ID.fullmatch(actor) or actor == NO_ACTOR:
            raise _fail(name, line, f"actor id {actor!r} must be lower-case letters, digits and hyphens "
                                    f"(and not {NO_ACTOR!r}, which means no actor)")
        if actor in lines:
            raise _fail(name, line, f"actor {actor!r} is listed twice (first on line {lines[actor]})")
        lines[actor] = line
        if not entry.get("aliases") and not entry.get("exact"):
            raise _fail(name, line, f"actor {actor!r} has no aliases or exact words: it could never be found")
    try:
        Gazetteer.load(text)
    except ValueError as error:  # two actors' aliases that fold alike, a context word of no alias
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
    for event, entry in types.items():
        line = getattr(entry, "line", types.line)
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
                re.compile(pattern)
            except re.error as error:
                raise _fail(name, line, f"pattern {pattern!r} of {event!r} is not a regular expression: "
                                        f"{error}") from error
    load_event_types(text)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item.strip() for item in value)


def gazetteer_changes(text: str) -> list[str]:
    """What a gazetteer adds to or removes from the bundled one, a line each."""
    bundled, given = (_actors(yaml.safe_load(source)) for source in (data_text(GAZETTEER), text))
    changes = [f"new actor {actor}: {', '.join(sorted(given[actor]))}"
               for actor in given if actor not in bundled]
    changes += [f"actor {actor} removed (articles already tagged with it keep it)"
                for actor in bundled if actor not in given]
    for actor in (actor for actor in given if actor in bundled):
        added, removed = sorted(given[actor] - bundled[actor]), sorted(bundled[actor] - given[actor])
        changes += [f"{actor}: alias added: {alias}" for alias in added]
        changes += [f"{actor}: alias removed: {alias}" for alias in removed]
    return changes


def _actors(spec: dict) -> dict[str, set[str]]:
    return {entry["id"]: set(entry.get("aliases", [])) | set(entry.get("exact", []))
            for entry in spec["actors"]}
