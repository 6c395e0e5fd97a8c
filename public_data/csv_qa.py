"""Convert a CSV with `image_path,question,answer` columns into chat records.

    python -m public_data.csv_qa --input qa.csv --out qa.jsonl [--images img/] [--encoding latin-1]

Image paths are relative to --images (default: the CSV's folder) or absolute. The file is UTF-8 by default (a
byte-order mark, as Excel writes, is accepted; so are Windows line ends); --encoding reads another encoding (e.g.
latin-1, cp1252). Rows with a missing column value, a missing image, a field count other than the header's (an
unquoted comma inside a value) or the text `<image>` / `<video>` are skipped and reported; columns beyond the three
are named in a note. The CSV is read row by row.
"""
from __future__ import annotations

import codecs
import csv
import sys
from pathlib import Path
from typing import Iterator

from .common import (
    ConversionError,
    Skip,
    convert,
    images_folder,
    parser,
    relative_image,
    run,
)

COLUMNS = ('image_path', 'question', 'answer')


def rows(path: Path, encoding: str = 'utf-8-sig') -> Iterator[tuple[str, dict[str, str] | Skip]]:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConversionError(f'--encoding {encoding}: unknown encoding') from None
    try:
        with open(path, newline='', encoding=encoding) as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                other = next((d for d in (';', '\t') if len(header) == 1 and d in header[0]), None)
                hint = (f' (the header is separated by {other!r}: save the file comma-separated, as Excel\'s '
                        '"CSV UTF-8" does)' if other else '')
                raise ConversionError(f'{path}: missing column(s) {missing}; the header must have '
                                      f'{",".join(COLUMNS)}, found {header}{hint}')
            unused = [c for c in header if c not in COLUMNS]
            if unused:
                print(f'note: {path}: column(s) {", ".join(unused)} are not converted (a record takes '
                      f'{", ".join(COLUMNS)})', file=sys.stderr)
            for row in reader:
                extra, short = row.pop(None, None) or [], sum(row[c] is None for c in header)  # csv's fill-ins
                if extra or short:
                    yield f'{path}:{reader.line_num}', Skip(
                        f'row has {len(header) + len(extra) - short} fields, the header {len(header)} (a comma '
                        'inside a value must be quoted: "Red, with white stripes")')
                else:
                    yield f'{path}:{reader.line_num}', row
    except UnicodeDecodeError as exc:
        with open(path, 'rb') as f:
            utf16 = f.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # Excel's "Unicode text"
        advice = '--encoding utf-16 (the file starts with its byte-order mark)' if utf16 else 'e.g. --encoding latin-1'
        raise ConversionError(f'{path}: not {encoding} (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); '
                              f'pass the file\'s encoding, {advice}; nothing was written') from None
    except csv.Error as exc:
        raise ConversionError(f'{path}: not a readable CSV ({exc}); nothing was written') from None


def convert_row(row: dict[str, str], images_dir: Path, out: Path) -> dict:
    empty = [c for c in COLUMNS if not (row.get(c) or '').strip()]
    if empty:
        raise Skip(f'empty {", ".join(empty)}')
    for column in ('question', 'answer'):
        for placeholder in ('<image>', '<video>'):
            if placeholder in row[column]:
                raise Skip(f'`{column}` holds the text {placeholder}, which training reads as a media placeholder')
    path = Path(row['image_path'].strip())
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
    p.add_argument('--images', type=Path, help='folder image paths are relative to (default: the CSV\'s)')
    p.add_argument('--encoding', default='utf-8-sig', help='the CSV\'s text encoding (default UTF-8, with or '
                                                           'without a byte-order mark)')
    args = p.parse_args(argv)
    images_dir = images_folder(args.images, args.input)
    convert(rows(args.input, args.encoding), lambda row: convert_row(row, images_dir, args.out), args.out,
            desc='csv', inputs=[args.input])


if __name__ == '__main__':
    sys.exit(run(main))
