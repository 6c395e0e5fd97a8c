"""Reward functions for the summary task, each a pure function of (completion, reference summary) -> float in [0, 1].

The summary of a relevant image is a two-line header and a JSON object of object counts per description::

    dataset: roads
    objects: 5
    {"car": 3, "车道线": 2}

An irrelevant image is answered with the single line ``无关图片``. Every reward judges the completion against what
the reference calls for: ``无关图片`` earns credit (format, parse, content) only when the reference is ``无关图片``
too, and a summary only when the reference is one. A completion that does not parse never raises: the parts that
cannot be read score ``PENALTY`` (0.0), except in ``summary_parse``, a gate that is 0 for a readable answer and
``PARSE_PENALTY`` (-1.0) for an unreadable one. Definitions as formulas: docs/training/grpo.md.

ms-swift calls a reward as ``reward(completions, solution=[...], **row_columns)``; ``solution`` is the reference
summary of each row. ``REWARDS`` maps the names used in ``rlhf.reward_funcs`` to the functions.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

IRRELEVANT = '无关图片'
PENALTY = 0.0
"""What a reward scores for the part of a completion it cannot parse."""
PARSE_PENALTY = -1.0
"""What `summary_parse` scores for a completion that cannot be read as the answer the reference calls for."""
_DATASET = re.compile(r'^dataset: (\S.*)$')
_TOTAL = re.compile(r'^objects: ([0-9]{1,9})$')
"""ASCII digits (`\\d` also reads full-width ５), at most 9: a longer run of digits is a degenerate completion, whose
value would overflow the scores' float arithmetic."""
MAX_COUNT = 10**9 - 1
"""The largest count read; a larger one makes the counts unreadable."""
MAX_STARTS = 16
"""How many `{` of a completion are tried as the start of the counts (text before them may hold braces)."""


@dataclass(frozen=True)
class Summary:
    """What could be read from a summary text; unreadable parts are None."""

    irrelevant: bool = False
    dataset: str | None = None
    total: int | None = None
    counts: dict[str, int] | None = None
    exact: bool = False
    """The whole text follows the format, with nothing before, between or after the parts."""


def normalize(text: str) -> str:
    """Line ends unified, trailing spaces removed, Unicode in NFC (so composed and decomposed labels compare equal)."""
    lines = unicodedata.normalize('NFC', text).replace('\r\n', '\n').strip().split('\n')
    return '\n'.join(line.rstrip() for line in lines)


def parse_summary(text: str) -> Summary:
    """Read a summary; never raises.

    >>> parse_summary('dataset: roads\\nobjects: 3\\n{"car": 3}')
    Summary(irrelevant=False, dataset='roads', total=3, counts={'car': 3}, exact=True)
    """
    text = normalize(text if isinstance(text, str) else '')
    if text == IRRELEVANT:
        return Summary(irrelevant=True, exact=True)
    lines = text.split('\n')
    dataset = _DATASET.match(lines[0])
    total = _TOTAL.match(lines[1]) if dataset and len(lines) > 1 else None
    body = '\n'.join(lines[bool(dataset) + bool(total):]).strip()  # the header lines that are there, then the JSON
    counts, around = None, body
    start = body.find('{')
    for _ in range(MAX_STARTS):  # the JSON is read wherever it starts: the first `{` that opens counts
        if start < 0:
            break
        value, end = _counts_at(body, start)
        if value is not None:
            counts, around = value, (body[:start] + body[end:]).strip()
            break
        start = body.find('{', start + 1)
    return Summary(False, dataset and dataset.group(1).strip(), total and int(total.group(1)), counts,
                   bool(dataset and total and counts is not None and not around))


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError('a description is counted twice')  # which count is meant is unknown
    return dict(pairs)


def _counts_at(body: str, start: int) -> tuple[dict[str, int] | None, int]:
    """(the counts object that starts at ``start``, where it ends), or (None, 0). A degenerate completion (a
    thousand `[`, a number of 5,000 digits, a description counted twice) is unreadable, never an exception."""
    try:
        value, end = json.JSONDecoder(object_pairs_hook=_unique).raw_decode(body, start)
    except (ValueError, RecursionError):  # ValueError: JSONDecodeError, an integer too long to convert, a twice key
        return None, 0
    if isinstance(value, dict) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT
                                       for v in value.values()):
        return value, end
    return None, 0


def reference_problem(text: Any) -> str | None:
    """Why ``text`` cannot be a reference summary (None when it can): it must follow the format exactly, and its
    header's total must be the sum of its counts. Every reward judges completions against it, so the record check
    refuses such a reference before training instead of the reward raising at the step that samples it."""
    ref = parse_summary(text) if isinstance(text, str) else None
    if ref is None or not ref.exact:
        return (f'does not follow the summary format (`dataset: <name>`, `objects: <total>`, then the JSON counts '
                f'per description, nothing around them; or the line {IRRELEVANT}): {text!r:.120}')
    if not ref.irrelevant and ref.total != sum(ref.counts.values()):
        return f'says `objects: {ref.total}`, but its counts sum to {sum(ref.counts.values())}'
    return None


def _reference(text: str) -> Summary:
    if (problem := reference_problem(text)) is not None:
        raise ValueError(f'the reference summary {problem}')
    return parse_summary(text)


Scorer = Callable[[str, str], float]


def _irrelevance(completion: Summary, reference: Summary) -> float | None:
    """The score when either side is irrelevant; None when both describe objects."""
    if reference.irrelevant or completion.irrelevant:
        return float(reference.irrelevant and completion.irrelevant)
    return None


def score_format(completion: str, reference: str) -> float:
    """1 if the completion is exactly the kind of answer the reference is: the irrelevant line for an irrelevant
    reference, else header + JSON counts and nothing else."""
    c, r = parse_summary(completion), _reference(reference)
    return float(c.exact and c.irrelevant == r.irrelevant)


def score_parse(completion: str, reference: str) -> float:
    """A gate: 0 if the answer the reference calls for can be read (the irrelevant line for an irrelevant reference,
    else JSON counts, with or without the header, text around them allowed), else ``PARSE_PENALTY``."""
    c, r = parse_summary(completion), _reference(reference)
    readable = c.irrelevant if r.irrelevant else c.counts is not None and not c.irrelevant
    return 0.0 if readable else PARSE_PENALTY


def _when_both_relevant(rule: Callable[[Summary, Summary], float]) -> Scorer:
    """A scorer from its rule for two relevant summaries; when either side is irrelevant, `_irrelevance` decides."""

    def score(completion: str, reference: str) -> float:
        c, r = parse_summary(completion), _reference(reference)
        decided = _irrelevance(c, r)
        return decided if decided is not None else rule(c, r)

    score.__name__, score.__doc__ = rule.__name__, rule.__doc__
    return score


@_when_both_relevant
def score_header(c: Summary, r: Summary) -> float:
    """1 if both header lines equal the reference's, else 0 (strict: a half-right header earns nothing)."""
    return float(c.dataset == r.dataset and c.total == r.total)


@_when_both_relevant
def score_dataset(c: Summary, r: Summary) -> float:
    """1 if the `dataset:` line names the reference's dataset."""
    return float(c.dataset == r.dataset)


@_when_both_relevant
def score_objects_total(c: Summary, r: Summary) -> float:
    """1 - |predicted total - reference total| / max(reference total, 1), floored at 0."""
    if c.total is None:
        return PENALTY
    return max(0.0, 1.0 - abs(c.total - r.total) / max(r.total, 1))


@_when_both_relevant
def score_content_f1(c: Summary, r: Summary) -> float:
    """F1 of the object counts as multisets of descriptions: matched = sum over desc of min(predicted, reference)."""
    if c.counts is None:
        return PENALTY
    predicted, wanted = sum(c.counts.values()), sum(r.counts.values())
    if predicted == 0 and wanted == 0:
        return 1.0
    matched = sum(min(n, r.counts.get(desc, 0)) for desc, n in c.counts.items())
    return 2 * matched / (predicted + wanted)


def score_content(completion: str, reference: str) -> float:
    """1 if the completion equals the reference text (after `normalize`): the strict audit reward."""
    return float(normalize(completion if isinstance(completion, str) else '') == normalize(reference))


def _batched(name: str, score: Scorer) -> Callable[..., list[float]]:
    """The ms-swift form of a scorer: ``(completions, solution, **columns) -> list[float]``."""

    def reward(completions: list[str], solution: list[str], **kwargs: Any) -> list[float]:
        return [score(c, s) for c, s in zip(completions, solution)]

    reward.__name__ = reward.__qualname__ = name  # ms-swift logs `rewards/<name>/mean`
    reward.__doc__ = score.__doc__
    return reward


SCORERS: dict[str, Scorer] = {
    'summary_format': score_format,
    'summary_header': score_header,
    'summary_parse': score_parse,
    'summary_dataset': score_dataset,
    'summary_objects_total': score_objects_total,
    'summary_content_f1': score_content_f1,
    'summary_content': score_content,
}
REWARDS: dict[str, Callable[..., list[float]]] = {name: _batched(name, score) for name, score in SCORERS.items()}


def register() -> None:
    """Make the rewards available to ms-swift by name (``rlhf.reward_funcs: [summary_format, ...]``)."""
    from ..swift_seams import register_rewards

    register_rewards(REWARDS)