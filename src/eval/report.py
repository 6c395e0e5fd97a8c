"""Scores of every sample -> ``eval_report.json`` (overall, per dataset, per class) and the printed tables."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from .metrics import DenseScore, SummaryScore, summarize_dense, summarize_summary
from .samples import EvalSample

DENSE_COLUMNS = ('samples', 'parse_failure_rate', 'gt', 'pred', 'precision@0.5', 'recall@0.5', 'f1@0.5',
                 'f1@[.5:.95]', 'AP50', 'AP@[.5:.95]', 'desc_exact')
GEOMETRY_COLUMNS = ('gt', 'pred', 'precision@0.5', 'recall@0.5', 'f1@0.5', 'f1@[.5:.95]')
CLASS_COLUMNS = (*GEOMETRY_COLUMNS, 'AP@[.5:.95]')


def build_report(mode: str, samples: list[EvalSample], predictions: list[str], finish_reasons: list[str | None],
                 scores: list[DenseScore | SummaryScore]) -> dict[str, Any]:
    summarize = summarize_summary if mode == 'summary' else summarize_dense
    groups: dict[str, list] = defaultdict(list)
    for sample, score in zip(samples, scores):
        groups[sample.dataset].append(score)
    return {
        'mode': mode,
        'overall': summarize(scores),
        'per_dataset': {name: summarize(groups[name]) for name in sorted(groups)},
        'truncated': sum(reason == 'length' for reason in finish_reasons),
        'samples': [{
            'where': sample.where,
            'dataset': sample.dataset,
            'score': score.score,
            'parsed': score.parsed,
            'finish_reason': reason,
            'prediction': prediction,
            'reference': sample.reference,
        } for sample, prediction, reason, score in zip(samples, predictions, finish_reasons, scores)],
    }


def _cell(value: Any) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)


def format_table(title: str, columns: tuple[str, ...] | list[str], rows: dict[str, dict[str, Any]]) -> str:
    header = [title, *columns]
    body = [[name, *(_cell(values.get(c)) for c in columns)] for name, values in rows.items()]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ['  '.join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in [header, *body]]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def report_tables(report: dict[str, Any]) -> str:
    """Per dataset and overall; for dense answers also per geometry kind and per class (overall)."""
    rows = {**report['per_dataset'], 'all': report['overall']}
    if report['mode'] == 'summary':
        tables = [format_table('dataset', list(report['overall']), rows)]
    else:
        tables = [format_table('dataset', DENSE_COLUMNS, rows),
                  format_table('geometry', GEOMETRY_COLUMNS, report['overall']['per_geometry']),
                  format_table('class', CLASS_COLUMNS, report['overall']['per_class'])]
    if report['truncated']:
        tables.append(f'{report["truncated"]} answer(s) stopped at the token limit (finish_reason "length").')
    return '\n\n'.join(tables)
