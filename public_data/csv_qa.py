"""Convert a CSV with `image_path,question,answer` columns into chat records.

    python -m public_data.csv_qa --input qa.csv --images img/ --out qa.jsonl

Image paths are relative to --images (or absolute). Rows with a missing column value or a missing image are skipped
and reported. The CSV is read row by row.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from .common import Skip, convert, parser, relative_image

COLUMNS = ('image_path', 'question', 'answer')


def rows(path: Path) -> Iterator[tuple[str, dict[str, str] | Skip]]:
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f'{path}: missing column(s) {missing}; the header must have {",".join(COLUMNS)}')
        for row in reader:
            yield f'line {reader.line_num}', row


def convert_row(row: dict[str, str], images_dir: Path, out: Path) -> dict:
    empty = [c for c in COLUMNS if not (row.get(c) or '').strip()]
    if empty:
        raise Skip(f'empty {", ".join(empty)}')
    path = Path(row['image_path'])
    path = path if path.is_absolute() else images_dir / path
    if not path.is_file():
        raise Skip(f'image file not found: {path}')
    return {'messages': [
        {'role': 'user', 'content': [{'type': 'image', 'image': relative_image(path, out)},
                                     {'type': 'text', 'text': row['question']}]},
        {'role': 'assistant', 'content': row['answer']},
    ]}


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='the CSV file')
    p.add_argument('--images', type=Path, default=Path('.'), help='folder image paths are relative to')
    args = p.parse_args(argv)
    convert(rows(args.input), lambda row: convert_row(row, args.images, args.out), args.out, desc='csv')


if __name__ == '__main__':
    main()
