"""Benchmark thothbot.core.redact against Presidio's pattern recognizers on two labelled corpora.

Run from the repository root: ``python -m bench redact``. The corpora: ``redact_corpus.jsonl``,
the one the redactor was developed against, and ``wild_corpus.jsonl``, written by a second
generator apart from that tuning (``tests/data/make_wild_corpus.py``). Prints, for each corpus
and engine, throughput (texts per second, best of a few runs, one core) and per-type recall and
false positives, then a side-by-side table, then whether thothbot meets its targets. Presidio
(``presidio-analyzer``) is optional: without it only thothbot's figures are printed.

Scoring: a labelled entity is recalled when a finding of the same type has the same span or
covers it; a false positive is a finding that overlaps no labelled entity. Presidio runs with
its predefined recognizers and a no-op NLP engine (no spaCy model is loaded or downloaded);
its EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, IP_ADDRESS and US_SSN map to ours, and
it has no recognizer for pasted secrets. Its figures are shown at score threshold 0 (every
pattern hit) and 0.5.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thothbot.core.redact import EntityType, Redactor

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CORPORA = {"tuned": DATA / "redact_corpus.jsonl", "wild": DATA / "wild_corpus.jsonl"}
TARGET_RECALL = 0.99
TARGET_FALSE_POSITIVE_TEXTS_PER_1000 = 1.0
TARGET_TEXTS_PER_SECOND = 20_000
RUNS = 5
PRESIDIO_RUNS = 2
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "US_SSN": "SSN",
}
TYPES = [kind.value for kind in EntityType]

Span = tuple[str, int, int]  # (type, start, end)


@dataclass
class Score:
    name: str
    texts_per_second: float
    labelled: Counter[str] = field(default_factory=Counter)
    recalled: Counter[str] = field(default_factory=Counter)
    false_positives: Counter[str] = field(default_factory=Counter)
    false_positive_texts: int = 0
    texts: int = 0


def load_corpus(path: Path) -> list[tuple[str, list[Span]]]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            labels = [(e["type"], e["start"], e["end"]) for e in row["entities"]]
            rows.append((row["text"], labels))
    return rows


def pin_one_core() -> set[int] | None:
    """Keep this process on one CPU so the figures are single-core figures.

    Returns the CPUs it was allowed before, for ``unpin``; None where pinning is unsupported.
    """
    if not (hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")):
        return None
    before = set(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {min(before)})
    return before


def unpin(before: set[int] | None) -> None:
    if before is not None:
        os.sched_setaffinity(0, before)


def best_rate(run: Callable[[str], object], texts: Sequence[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        for text in texts:
            run(text)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def score(
    name: str,
    rate: float,
    rows: Sequence[tuple[str, list[Span]]],
    findings: Iterable[list[Span]],
) -> Score:
    result = Score(name=name, texts_per_second=rate)
    for (_text, labels), found in zip(rows, findings, strict=True):
        result.texts += 1
        for kind, start, end in labels:
            result.labelled[kind] += 1
            if any(f[0] == kind and f[1] <= start and f[2] >= end for f in found):
                result.recalled[kind] += 1
        stray = [
            f for f in found if not any(f[1] < end and start < f[2] for _k, start, end in labels)
        ]
        for kind, _start, _end in stray:
            result.false_positives[kind] += 1
        result.false_positive_texts += bool(stray)
    return result


def run_thothbot(rows: Sequence[tuple[str, list[Span]]]) -> Score:
    redactor = Redactor()
    texts = [text for text, _labels in rows]
    rate = best_rate(redactor.find, texts, RUNS)
    findings = [[(e.type.value, e.start, e.end) for e in redactor.find(text)] for text in texts]
    return score("thothbot", rate, rows, findings)


def presidio_engine() -> Any | None:
    # The e-mail recognizer's tldextract would fetch the public suffix list; use its snapshot.
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        # An optional dependency (the bench extra), so imported only here.
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # noqa: PLC0415
        from presidio_analyzer.nlp_engine import NoOpNlpEngine  # noqa: PLC0415
    except ImportError:
        return None
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])


def run_presidio(engine: Any, rows: Sequence[tuple[str, list[Span]]]) -> list[Score]:
    texts = [text for text, _labels in rows]
    entities = list(PRESIDIO_TYPES)

    def analyze(text: str) -> Any:
        return engine.analyze(text=text, language="en", entities=entities, score_threshold=0)

    raw: list[Any] = []
    started = time.perf_counter()
    for text in texts:
        raw.append(analyze(text))
    best = time.perf_counter() - started
    rate = max(len(texts) / best, best_rate(analyze, texts, PRESIDIO_RUNS - 1))
    scores = []
    for threshold in (0.0, 0.5):
        findings = [
            [
                (PRESIDIO_TYPES[r.entity_type], r.start, r.end)
                for r in results
                if r.entity_type in PRESIDIO_TYPES and r.score >= threshold
            ]
            for results in raw
        ]
        scores.append(score(f"presidio@{threshold:g}", rate, rows, findings))
    return scores


def print_score(result: Score) -> None:
    print(f"\n{result.name}: {result.texts_per_second:,.0f} texts/s")
    print(f"  {'type':<7} {'recall':>14} {'false pos.':>10}")
    for kind in TYPES:
        labelled, recalled = result.labelled[kind], result.recalled[kind]
        recall = f"{recalled}/{labelled} {recalled / labelled:6.1%}" if labelled else "-"
        print(f"  {kind:<7} {recall:>14} {result.false_positives[kind]:>10}")
    print(
        f"  texts with a false positive: {result.false_positive_texts} of {result.texts}"
        f" ({per_1000(result):.2f} per 1,000)"
    )


def per_1000(result: Score) -> float:
    return 1000 * result.false_positive_texts / max(result.texts, 1)


def print_table(results: Sequence[Score]) -> None:
    print("\nside by side (recall / false positives; throughput in texts/s)")
    header = f"  {'':<8}" + "".join(f"{r.name:>20}" for r in results)
    print(header)
    print(f"  {'texts/s':<8}" + "".join(f"{r.texts_per_second:>20,.0f}" for r in results))
    for kind in TYPES:
        cells = []
        for r in results:
            labelled = r.labelled[kind]
            recall = r.recalled[kind] / labelled if labelled else 0.0
            cells.append(f"{recall:.1%} / {r.false_positives[kind]}")
        print(f"  {kind:<8}" + "".join(f"{cell:>20}" for cell in cells))
    print(
        f"  {'FP texts':<8}"
        + "".join(f"{f'{r.false_positive_texts} of {r.texts}':>20}" for r in results)
    )


def targets_met(result: Score) -> list[str]:
    """What thothbot misses of its targets on one corpus (empty: every target met)."""
    missed = [
        f"{kind} recall {result.recalled[kind] / result.labelled[kind]:.1%}"
        for kind in TYPES
        if result.labelled[kind] and result.recalled[kind] / result.labelled[kind] < TARGET_RECALL
    ]
    if per_1000(result) > TARGET_FALSE_POSITIVE_TEXTS_PER_1000:
        missed.append(f"{per_1000(result):.2f} false-positive texts per 1,000")
    if result.texts_per_second < TARGET_TEXTS_PER_SECOND:
        missed.append(f"{result.texts_per_second:,.0f} texts/s")
    return missed


def bench_corpus(name: str, path: Path, engine: Any | None) -> Score:
    rows = load_corpus(path)
    lengths = sorted(len(text) for text, _labels in rows)
    print(
        f"\n=== corpus {name!r}: {len(rows)} texts,"
        f" median {lengths[len(lengths) // 2]} chars, {path}"
    )
    result = run_thothbot(rows)
    print_score(result)
    if engine is None:
        return result
    presidio = run_presidio(engine, rows)
    for score_ in presidio:
        print_score(score_)
    print("  (Presidio has no recognizer for pasted secrets: SECRET recall is 0 by design.)")
    print_table([result, *presidio])
    return result


def main() -> None:
    before = pin_one_core()
    print(f"one core: pinned to CPU {min(before)}" if before else "one core: not pinned here")
    try:
        engine = presidio_engine()
        if engine is None:
            print("presidio-analyzer is not importable: install the bench extra to compare.")
        results = {name: bench_corpus(name, path, engine) for name, path in CORPORA.items()}
    finally:
        unpin(before)
    print(
        f"\ntargets: recall >= {TARGET_RECALL:.0%} for every type, at most"
        f" {TARGET_FALSE_POSITIVE_TEXTS_PER_1000:g} text in 1,000 with a false positive,"
        f" >= {TARGET_TEXTS_PER_SECOND:,} texts/s"
    )
    for name, result in results.items():
        missed = targets_met(result)
        print(f"  {name}: " + ("met" if not missed else "NOT met: " + ", ".join(missed)))


if __name__ == "__main__":
    main()
