"""What every converter shares: streaming JSON input, JSONL output, a progress bar, and the skip report."""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import ijson
from tqdm import tqdm


class Skip(Exception):
    """Raised by a converter for an input record it cannot convert; the message is the reason."""


def stream_json_array(path: Path, prefix: str = 'item') -> Iterator[Any]:
    """Items of a JSON array (``prefix`` is its ijson path, e.g. ``annotations.item``) without loading the file."""
    with open(path, 'rb') as f:
        yield from ijson.items(f, prefix, use_float=True)


def stream_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object or the JSON error) of each non-blank line."""
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield line_no, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield line_no, Skip(f'invalid JSON: {exc}')


class Report:
    """Counts written records and skipped ones by reason; prints the first few skips with their location."""

    def __init__(self, show: int = 20):
        self.written = 0
        self.skipped: Counter[str] = Counter()
        self._shown = 0
        self._show = show

    def skip(self, where: str, reason: str) -> None:
        self.skipped[reason.split(':')[0]] += 1
        if self._shown < self._show:
            print(f'skipped {where}: {reason}', file=sys.stderr)
            self._shown += 1

    def summary(self) -> str:
        lines = [f'wrote {self.written} records, skipped {sum(self.skipped.values())}']
        lines += [f'  {count:>8}  {reason}' for reason, count in self.skipped.most_common()]
        return '\n'.join(lines)


@contextmanager
def jsonl_writer(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        yield lambda record: f.write(json.dumps(record, ensure_ascii=False) + '\n')


def convert(items: Iterable[tuple[str, Any]], convert_one, out: Path, desc: str, total: int | None = None,
            report: Report | None = None) -> Report:
    """Run ``convert_one(item) -> record | list[record]`` over ``(where, item)`` pairs with a progress bar.

    A ``Skip`` (or an item that is itself a ``Skip``) is reported with its location and reason, never fatal.
    """
    report = report or Report()
    with jsonl_writer(out) as write:
        for where, item in tqdm(items, desc=desc, unit='rec', total=total, file=sys.stderr):
            try:
                if isinstance(item, Skip):
                    raise item
                result = convert_one(item)
            except Skip as exc:
                report.skip(where, str(exc))
                continue
            for record in result if isinstance(result, list) else [result]:
                write(record)
                report.written += 1
    print(report.summary(), file=sys.stderr)
    return report


def parser(description: str) -> argparse.ArgumentParser:
    """The argument parser every converter starts from (``--out`` is common to all)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', type=Path, required=True, help='output JSONL (image paths are written relative to it)')
    return p


def relative_image(image: Path, out: Path) -> str:
    """An image path as the JSONL stores it: relative to the output file's directory."""
    return os.path.relpath(image.resolve(), out.resolve().parent)
