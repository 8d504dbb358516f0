"""Would a trained model find the clutter our rules leave? A probe, not a stage.

    python bench/probe_line_model.py --corpus DIR     (needs: pip install -e '.[research]')

Two models, scored only on data they were not fitted on:

1. Lines: every line of our clean stage's text on the tune half
   (bench/corpus_split.json) that holds an annotated clutter snippet (1) or
   main-text snippet (0), with generic features -- the line's shape (words,
   sentence end, capitals, digits, punctuation), the markup block it comes
   from (tag, share of link text), its neighbours, its position, the
   call-to-action words of `schemas/data/cues.yaml`, and the class jusText
   (trafilatura's bundled fallback: stopword and link density) gives its
   paragraph. Logistic regression and gradient boosting, 5-fold
   cross-validation grouped by site (a fold's sites are never trained on).
2. Words: a character n-gram logistic regression fitted on the tune half's
   snippets (clutter against main text), scored on the frozen lines of
   tests/data/unseen_clutter.yaml that no rule or model has seen.

For each threshold it prints how many clutter lines the model would take and
how many lines of article it would cut with them. The held-out half is not
read. Figures and the conclusion: README, "Cleaning".
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from justext.core import ParagraphMaker, classify_paragraphs, revise_paragraph_classification  # noqa: E402
from lxml import etree  # noqa: E402
from trafilatura.baseline import basic_cleaning  # noqa: E402
from trafilatura.external import jt_stoplist_init  # noqa: E402
from trafilatura.utils import load_html  # noqa: E402

from bench.bench_clean import corpus_pages, normalise, ours  # noqa: E402
from schemas.settings import CleanSettings  # noqa: E402
from transforms.cleaner import Cleaner  # noqa: E402
from transforms.cues import load_cue_words  # noqa: E402
from transforms.textnorm import fold  # noqa: E402

try:  # scikit-learn: the well-kept library for small models; only this probe needs it
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
except ImportError:
    sys.exit("probe_line_model: needs scikit-learn: pip install -e '.[research]'")

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
_TAGS = {"h1": "h", "h2": "h", "h3": "h", "h4": "h", "h5": "h", "h6": "h", "li": "li", "p": "p",
         "figcaption": "figcaption", "td": "td", "div": "div", "a": "a", "span": "inline",
         "strong": "inline", "b": "inline", "em": "inline", "dt": "li", "dd": "li", "blockquote": "p"}
_SENTENCE_END = re.compile(r"[.!?…\"“”»)。！？؟]\s*$")
_PUNCT = re.compile(r"[.!?;:,\"“”«»،؟]")
_JUSTEXT = ("good", "neargood", "short", "bad")


def markup_blocks(tree) -> dict[str, tuple[str, float]]:
    """Folded text of each short block -> (kind of tag, share of its characters in links)."""
    sizes, blocks = {}, {}
    for _, element in etree.iterwalk(tree, events=("end",)):
        if not isinstance(element.tag, str):
            continue
        chars, linked = len(element.text or ""), 0
        for child in element:
            child_chars, child_linked = sizes.pop(child, (0, 0))
            chars += child_chars + len(child.tail or "")
            linked += child_linked + (len(child.tail or "") if element.tag == "a" else 0)
        linked = chars if element.tag == "a" else linked
        sizes[element] = (chars, linked)
        if 0 < chars <= 400 and element.tag in _TAGS:
            blocks.setdefault(fold(element.text_content()), (_TAGS[element.tag], linked / chars))
    return blocks


def justext_classes(tree, stoplist) -> dict[str, str]:
    """Folded paragraph text -> jusText's class of it, as trafilatura's fallback runs it."""
    paragraphs = ParagraphMaker.make_paragraphs(basic_cleaning(tree))
    classify_paragraphs(paragraphs, stoplist, 50, 150, 0.1, 0.2, 0.25, True)
    revise_paragraph_classification(paragraphs, 150)
    return {fold(paragraph.text): paragraph.class_type for paragraph in reversed(paragraphs)}


def line_features(lines: list[str], index: int, blocks, classes, cues) -> list[float]:
    line, folded = lines[index], fold(lines[index])
    words = line.split()
    tag, linked = blocks.get(folded, ("none", -1.0))
    justext = classes.get(folded) or next(
        (kind for text, kind in classes.items() if folded and folded in text), "none")
    lengths = sorted(len(other.split()) for other in lines)

    def neighbour(offset: int) -> list[float]:
        other = index + offset
        if not 0 <= other < len(lines):
            return [0.0, 1.0, 0.0]
        return [float(blocks.get(fold(lines[other]), ("", 0.0))[1] >= 0.9),
                float(len(lines[other].split()) <= 12), float(bool(_SENTENCE_END.search(lines[other])))]

    return [
        math.log1p(len(words)), float(len(words) <= 3), float(len(words) <= 8),
        float(bool(_SENTENCE_END.search(line))), float(line.rstrip().endswith(":")),
        float(line.rstrip().endswith("?")), len(_PUNCT.findall(line)) / max(len(words), 1),
        sum(word[:1].isupper() for word in words) / max(len(words), 1),
        sum(char.isdigit() for char in line) / max(len(line), 1),
        float(bool(re.search(r"www\.|https?:|@", line))),
        index / max(len(lines) - 1, 1), float(index == 0), float(index >= len(lines) - 3),
        math.log1p(len(lines)), len(words) / max(lengths[len(lengths) // 2], 1),
        *(float(tag == kind) for kind in ("h", "li", "p", "figcaption", "td", "div", "a", "inline", "none")),
        max(linked, 0.0), float(linked >= 0.9),
        *(float(justext == kind) for kind in _JUSTEXT),
        *(float(bool(pattern.search(folded))) for pattern in
          (cues.appeal, cues.disclosure, cues.cue, cues.address, cues.report)),
        *neighbour(-1), *neighbour(1),
    ]


def labelled_lines(corpus: Path):
    """(features, label, site) of each tune line our text holds with one kind of snippet only."""
    cleaner, cues, stoplist = Cleaner(CleanSettings()), load_cue_words(), frozenset(jt_stoplist_init())
    rows = []
    for half, url, spec in corpus_pages(corpus, None):
        if half != "tune":
            continue
        html = (corpus / "eval" / spec["file"]).read_bytes()
        text, _, rejected = ours(cleaner, html, url)
        if rejected:
            continue
        lines = [line for line in text.split("\n\n") if line.strip()]
        blocks, classes = markup_blocks(load_html(html)), justext_classes(load_html(html), stoplist)
        clutter = [normalise(snippet) for snippet in spec.get("without", [])]
        article = [normalise(snippet) for snippet in spec.get("with", [])]
        for index, line in enumerate(lines):
            is_clutter = any(snippet in normalise(line) for snippet in clutter)
            if is_clutter != any(snippet in normalise(line) for snippet in article):
                rows.append((line_features(lines, index, blocks, classes, cues), int(is_clutter),
                             spec["file"].split(".")[0]))
    return rows


def report(name: str, scores, labels) -> None:
    print(f"  {name}")
    for threshold in THRESHOLDS:
        taken = scores >= threshold
        print(f"    p >= {threshold:<4}  clutter lines taken {taken[labels == 1].sum():>3}"
              f" of {(labels == 1).sum()}   article lines cut {taken[labels == 0].sum():>3}"
              f" of {(labels == 0).sum()}")


def probe_lines(corpus: Path) -> None:
    rows = labelled_lines(corpus)
    features = np.array([row[0] for row in rows])
    labels, sites = np.array([row[1] for row in rows]), np.array([row[2] for row in rows])
    print("1. lines of our text on the tune half, 5 folds grouped by site:")
    for model in (LogisticRegression(max_iter=3000, class_weight="balanced"),
                  GradientBoostingClassifier(max_depth=3, n_estimators=150, random_state=0)):
        scores = np.zeros(len(labels))
        for train, test in GroupKFold(5).split(features, labels, sites):
            scores[test] = model.fit(features[train], labels[train]).predict_proba(features[test])[:, 1]
        report(type(model).__name__, scores, labels)


def probe_words(corpus: Path) -> None:
    texts, labels = [], []
    for half, _, spec in corpus_pages(corpus, None):
        if half == "tune":
            for kind, label in (("without", 1), ("with", 0)):
                texts += [fold(snippet) for snippet in spec.get(kind, [])]
                labels += [label] * len(spec.get(kind, []))
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        LogisticRegression(C=3, max_iter=3000, class_weight="balanced"))
    model.fit(texts, np.array(labels))
    frozen = yaml.safe_load((ROOT / "tests" / "data" / "unseen_clutter.yaml").read_text())
    lines = [entry["text"] for entry in frozen["clutter"] + frozen["prose"]]
    print(f"2. character n-grams fitted on {len(texts)} tune snippets,"
          " scored on tests/data/unseen_clutter.yaml:")
    report("LogisticRegression", model.predict_proba([fold(line) for line in lines])[:, 1],
           np.array([1] * len(frozen["clutter"]) + [0] * len(frozen["prose"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder with evaldata.json and eval/")
    corpus = parser.parse_args().corpus
    probe_lines(corpus)
    probe_words(corpus)


if __name__ == "__main__":
    main()
