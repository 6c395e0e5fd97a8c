"""What every converter shares: reading the input (streamed where it can be), writing the output atomically, the
progress bar, the skip report, and the rules that make a converter never crash and never fake success.

- A record that cannot be converted is reported (where it is, why) and skipped; the end prints a count per reason.
- Input that is malformed as a whole (invalid JSON, a top-level object where a list is expected) is one error with
  its line and column, and no output is written.
- Writing 0 records is a failure with the reason (every record skipped, wrong ``--split``, missing images folder).
- ``--out`` must be a ``.jsonl`` file that is not an input (``convert`` checks it for every converter before
  anything is opened for writing); the output is written to a temporary file next to it and renamed at the end,
  so a failed run leaves no partial file.
- An input record of a shape the converter does not know stops the run with its location, never a traceback.

Converters raise ``ConversionError`` for what stops them; ``run`` turns it into ``error: ...`` and exit code 1.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

import ijson
from tqdm import tqdm

from src.datasets.contract import RecordError, collinear, parse_line


class Skip(Exception):
    """Raised by a converter for an input record it cannot convert; the message is the reason."""


class ConversionError(Exception):
    """The conversion as a whole cannot go on (malformed input, nothing written); the message says why."""


def json_error(path: Path) -> ConversionError:
    """The first JSON syntax error of ``path``, with its line and column (read whole: only on the error path)."""
    try:
        text = path.read_text(encoding='utf-8-sig')
        json.loads(text)
    except json.JSONDecodeError as exc:
        return ConversionError(f'{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}; nothing was written')
    except UnicodeDecodeError as exc:
        return ConversionError(f'{path}: not UTF-8 (byte {exc.start}); nothing was written')
    if (found := _non_json_number(text)) is not None:  # Python's json reads them, JSON (and the stream reader) not
        line, column, token = found
        return ConversionError(f'{path}:{line}:{column}: invalid JSON: {token} is not a JSON number (write null, or '
                               'leave the annotation out); nothing was written')
    return ConversionError(f'{path}: invalid JSON; nothing was written')


def _non_json_number(text: str) -> tuple[int, int, str] | None:
    """(line, column, token) of the first NaN / Infinity / -Infinity outside a string, or None."""
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == '\\', char != '"')
        elif char == '"':
            in_string = True
        elif (token := next((t for t in ('NaN', 'Infinity', '-Infinity') if text.startswith(t, i)), None)):
            line = text.count('\n', 0, i) + 1
            return line, i - (text.rfind('\n', 0, i) + 1) + 1, token
    return None


def read_text(path: Path) -> str:
    """The text of an input file (UTF-8, with or without a byte-order mark); a file in another encoding (UTF-16, as
    Windows tools write it, or latin-1) is one error naming it and its first undecodable byte."""
    try:
        return path.read_text(encoding='utf-8-sig')
    except UnicodeDecodeError as exc:
        raise ConversionError(f'{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it '
                              'as UTF-8; nothing was written') from None


def opening_byte(head: bytes) -> bytes:
    """The first byte of a JSON file's ``head`` past a UTF-8 byte-order mark and white space: ``[`` for an array,
    ``{`` for an object (or the first of JSON Lines)."""
    return head.lstrip(b'\xef\xbb\xbf \t\r\n')[:1]


def stream_json_array(path: Path, prefix: str = 'item') -> Iterator[Any]:
    """Items of a JSON array (``prefix`` is its ijson path, e.g. ``annotations.item``) without loading the file.

    A file that is not valid JSON raises ``ConversionError`` with the line and column of the first error; a file
    whose top level is not what ``prefix`` expects (an object instead of a list) raises one that says so."""
    try:
        with open(path, 'rb') as f:
            head = f.read(1 << 16)
            if prefix == 'item':
                first = opening_byte(head)
                if first and first != b'[':
                    raise ConversionError(f'{path}: the top level must be a JSON list of records, found '
                                          f'{"an object" if first == b"{" else repr(first.decode(errors="replace"))}'
                                          '; nothing was written')
            f.seek(3 if head.startswith(b'\xef\xbb\xbf') else 0)  # a UTF-8 byte order mark (Windows tools)
            yield from ijson.items(f, prefix, use_float=True)
    except ijson.JSONError:
        raise json_error(path) from None


def stream_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object, or a ``Skip`` with the reason) of each non-blank line, read as training reads
    one (``parse_line``: UTF-8 JSON)."""
    with open(path, 'rb') as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield line_no, parse_line(raw.rstrip(b'\r\n'), '')
            except RecordError as exc:
                yield line_no, Skip(str(exc).removeprefix(': '))


def json_items(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, item) of a JSON array, or of JSON Lines: by its suffix, or a `.json` file whose first item is not in
    brackets (the Hugging Face JSON loader LLaMA-Factory and LLaVA-NeXT use reads both)."""
    with open(path, 'rb') as f:
        lines = opening_byte(f.read(1 << 16)) == b'{'
    if path.suffix == '.jsonl' or lines:
        yield from ((f'{path}:{n}', item) for n, item in stream_jsonl(path))
    else:
        yield from ((f'{path} item {i}', item) for i, item in enumerate(stream_json_array(path)))


class Report:
    """Counts written records and skipped ones by reason; prints the first few skips with their location."""

    def __init__(self, show: int = 20):
        self.written = 0
        self.skipped: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        """Things done to records that were kept (e.g. boxes clamped at the image edge), counted."""
        self._shown = 0
        self._show = show

    def skip(self, where: str, reason: str) -> None:
        self.skipped[reason_kind(reason)] += 1
        if self._shown < self._show:
            print(f'skipped {where}: {reason}', file=sys.stderr)
            self._shown += 1

    def summary(self) -> str:
        lines = [f'wrote {self.written} records, skipped {sum(self.skipped.values())}']
        lines += [f'  {count:>8}  {reason}' for reason, count in self.skipped.most_common()]
        lines += [f'  {count:>8}  {note} (kept)' for note, count in self.notes.most_common()]
        return '\n'.join(lines)


def reason_kind(reason: str) -> str:
    """What a skip is counted under: the reason up to its first ``:`` outside brackets (``image file not found:
    a.png`` counts as ``image file not found``; the colon in ``(keys: a, b)`` does not cut)."""
    depth = 0
    for i, char in enumerate(reason):
        depth += char in '([{' and 1 or -(char in ')]}')
        if char == ':' and depth == 0:
            return reason[:i]
    return reason


@contextmanager
def atomic_jsonl(path: Path) -> Iterator[tuple[IO[str], Path]]:
    """(the open file, its path): a temporary file next to ``path``, renamed to ``path`` only when the block
    succeeds; the block may rewrite the temporary file once it has closed the open one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(temporary, 'w', encoding='utf-8') as f:
            yield f, temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_output(out: Path, inputs: Iterable[Path | None]) -> None:
    """``--out`` must name a ``.jsonl`` file (an annotation export, label file or image never does) that is not one of
    the inputs; ``convert`` checks it before anything is opened for writing, for every converter."""
    if out.suffix != '.jsonl':
        raise ConversionError(f'--out {out}: the output is JSON Lines; name it *.jsonl (nothing was written)')
    for path in inputs:
        if path is not None and out.resolve() == Path(path).resolve():
            raise ConversionError(f'--out {out} is the input file {path}; write the output somewhere else')


def convert(items: Iterable[tuple[str, Any]], convert_one, out: Path, desc: str, *, inputs: Iterable[Path | None],
            total: int | None = None, report: Report | None = None) -> Report:
    """Run ``convert_one(item) -> record | list[record]`` over ``(where, item)`` pairs with a progress bar, into
    ``out`` (checked against ``inputs`` first: ``check_output``).

    A ``Skip`` (or an item that is itself a ``Skip``) is reported with its location and reason, never fatal. Any
    other exception, in ``convert_one`` or in reading the next item, is an input shape the converter does not know:
    it stops the run with the record's location and the exception, never a bare traceback. What is written then goes
    through the record check training runs first (``refuse_what_training_would``), so a converter never writes a
    record that training refuses. The output appears only if the run succeeds and kept at least one record."""
    check_output(out, inputs)
    report = report or Report()
    origins: list[str] = []
    """Where each written record came from, by output line."""
    with atomic_jsonl(out) as (sink, temporary):
        where = None
        records = iter(tqdm(items, desc=desc, unit='rec', total=total, file=sys.stderr))
        while True:
            try:
                where, item = next(records)
            except StopIteration:
                break
            except ConversionError:
                raise
            except Exception as exc:  # noqa: BLE001 - the input around the last record read is named
                after = f'after {where}' if where is not None else 'at the first record'
                raise ConversionError(f'{after}: cannot read the next record ({type(exc).__name__}: {exc}); nothing '
                                      'was written') from exc
            try:
                if isinstance(item, Skip):
                    raise item
                result = convert_one(item)
            except Skip as exc:
                report.skip(where, str(exc))
                continue
            except ConversionError:  # says where already
                raise
            except Exception as exc:  # noqa: BLE001 - named with its record, then the run stops
                raise ConversionError(f'{where}: cannot convert this record ({type(exc).__name__}: {exc}); nothing '
                                      'was written') from exc
            for record in result if isinstance(result, list) else [result]:
                sink.write(json.dumps(record, ensure_ascii=False) + '\n')
                origins.append(where)
        sink.close()
        if origins:
            refuse_what_training_would(temporary, origins, report)
        report.written = len(origins)
        print(report.summary(), file=sys.stderr)
        if not report.written:
            reasons = ', '.join(f'{reason} ({n})' for reason, n in report.skipped.most_common(3))
            reasons = reasons or 'the input has no records'
            raise ConversionError(f'no record could be converted ({reasons}); {out} was not written')
    return report


REFUSED = 'the record check refuses it'
"""What a converted record that the record check refuses is counted under."""


def refuse_what_training_would(path: Path, origins: list[str], report: Report) -> None:
    """Check the converted records in ``path`` as training checks them before step 1 (``src.datasets.record_check``:
    the contract, the images' headers and end markers, what the chat builder needs), and take out of the file each
    one it refuses, reported as a skip of its input record (``origins``: where each line came from) with the
    problem. A converter's own checks can miss what the contract refuses (a float width, an image cut short, a
    chat answer left empty); this pass is what makes "every written record trains" hold for all of them."""
    from src.datasets.dense_caption import DenseCaptionDataset
    from src.datasets.record_check import check_uncached

    checked = check_uncached(DenseCaptionDataset(path, None))
    if not checked.problems:
        return
    refused: dict[int, str] = {}
    for idx, problem in checked.problems:
        refused.setdefault(idx, problem)
    for idx, problem in sorted(refused.items()):
        report.skip(origins[idx], f'{REFUSED}: {problem}')
    kept = path.with_name(path.name + '.kept')
    try:
        with open(path, 'rb') as source, open(kept, 'wb') as target:
            for idx, line in enumerate(source):
                if idx not in refused:
                    target.write(line)
        os.replace(kept, path)
    finally:
        kept.unlink(missing_ok=True)
    origins[:] = [where for idx, where in enumerate(origins) if idx not in refused]


def parser(description: str) -> argparse.ArgumentParser:
    """The argument parser every converter starts from (``--out`` is common to all)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', type=Path, required=True, help='output JSONL (image paths are written relative to it)')
    return p


def images_folder(images: Path | None, input_file: Path) -> Path:
    """Where relative media paths of ``input_file`` point: ``--images`` if given, else the input file's folder."""
    folder = images if images is not None else input_file.resolve().parent
    if not folder.is_dir():
        raise ConversionError(f'images folder {folder} does not exist; pass --images DIR')
    return folder


def run(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> int:
    """A converter's command line: ``ConversionError`` becomes ``error: ...`` on stderr and exit code 1."""
    try:
        main(argv)
    except ConversionError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


MEDIA = (('image', 'images', '<image>'), ('video', 'videos', '<video>'))  # kind, record field, placeholder


def chat_record(messages: list[dict[str, Any]], media: dict[str, list[str]], media_dir: Path, out: Path,
                prepend: bool = True) -> dict[str, Any]:
    """A chat record from text messages and media file names (relative to ``media_dir``): placeholders checked
    against the files (LLaVA puts them first in the first user turn when the text does not say where, ``prepend``),
    files checked to exist and written relative to ``out``."""
    if not messages or messages[-1]['role'] != 'assistant':
        raise Skip('the last turn is not the assistant answer')
    record: dict[str, Any] = {'messages': messages}
    for key, field, placeholder in MEDIA:
        names = media.get(field) or []
        count = sum(m['content'].count(placeholder) for m in messages)
        if names and count == 0 and prepend:
            user = next((m for m in messages if m['role'] == 'user'), None)
            if user is None:
                raise Skip(f'{key}(s) but no user turn to show them in')
            user['content'] = f'{placeholder}\n' * len(names) + user['content']
            count = len(names)
        if count != len(names):
            raise Skip(f'{count} {placeholder} placeholders for {len(names)} {key}(s)')
        paths = []
        for name in names:
            if not isinstance(name, str) or not name:
                raise Skip(f'{key} entry must be a file name, got {name!r:.60}')
            if name.startswith(('http://', 'https://')):
                raise Skip(f'remote {key} URL (training reads local files only): {name:.80}')
            path = Path(name) if Path(name).is_absolute() else media_dir / name
            if not path.is_file():
                raise Skip(f'{key} file not found: {path}')
            paths.append(relative_image(path, out))
        if paths:
            record[field] = paths
    return record


def relative_image(image: Path, out: Path) -> str:
    """An image path as the JSONL stores it: relative to the output file's directory."""
    return os.path.relpath(image.resolve(), out.resolve().parent)


# Detection converters (coco, yolo, voc, hf_dataset, labelstudio) share what follows: the stored image's size, one
# rule for coordinates that cross the image edge, and one rule for an image that would lose some of its objects.

def stored_size(source: Path | bytes, where: str) -> tuple[int, int]:
    """(width, height) of an image as stored, from its header. Raises ``Skip`` when it does not open, holds samples
    that do not fit 8 bits, or carries an EXIF rotation: annotation tools (Ultralytics, Label Studio in a browser)
    draw on the rotated view, training reads the stored pixels, so its coordinates would land elsewhere."""
    from PIL import ExifTags, Image

    from src.datasets.builders import WIDE_MODES

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            size, mode = image.size, image.mode
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is this image's problem
        raise Skip(f'not an image: {where} ({type(exc).__name__}: {exc})') from None
    if mode in WIDE_MODES:
        raise Skip(f'{WIDE_MODES[mode]} samples: {where} does not convert to 8-bit RGB without clipping; rescale it')
    if orientation not in (None, 1):
        raise Skip(f'EXIF orientation {orientation}: {where} is shown rotated, so its annotations are of the rotated '
                   'view while training reads the stored pixels; save it upright (PIL.ImageOps.exif_transpose)')
    return size


def annotated_size(path: Path, width: Any, height: Any, said_by: str) -> tuple[int, int]:
    """The stored size of ``path`` (``stored_size``), which must be the ``width`` x ``height`` the annotations give
    it (``said_by``: 'the annotations say'), else ``Skip``: their coordinates would land elsewhere."""
    stored = stored_size(path, str(path))
    if stored != (width, height):
        raise Skip(f'size mismatch: {path} is {stored[0]}x{stored[1]}, {said_by} {width}x{height} (their '
                   'coordinates would land elsewhere)')
    return stored


def coordinates(values: Any, what: str, count: int | None = None) -> list[float]:
    """``values`` as floats: a list of finite numbers (``count`` of them when given), else ``Skip`` with the reason
    (NaN would pass every bound after it, and infinity would be clamped into a plausible box)."""
    if not isinstance(values, (list, tuple)) or (count is not None and len(values) != count):
        raise Skip(f'{what} is not {count or "a list of"} numbers: {values!r:.60}')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise Skip(f'{what} has a value that is not a finite number: {values!r:.60}')
    return [float(v) for v in values]


def clamped(values: list[float], width: float, height: float) -> tuple[list[float], bool]:
    """x, y, x, y, ... clamped into [0, width] x [0, height], and whether any moved."""
    out = [float(min(max(v, 0.0), width if i % 2 == 0 else height)) for i, v in enumerate(values)]
    return out, out != [float(v) for v in values]


def pixels(values: Iterable[float]) -> list[int | float]:
    """Coordinates as a record stores them: to a hundredth of a pixel, a whole pixel as an integer (`25`, not `25.0`,
    as annotation tools and the shipped samples write them)."""
    return [int(v) if v == int(v) else v for v in (round(float(v), 2) for v in values)]


def box_object(desc: str, corners: list[float], width: float, height: float, report: Report) -> dict[str, Any]:
    """A contract box from pixel corners [x1, y1, x2, y2]: clamped into the image (counted), at least a pixel wide
    and high (else ``Skip``)."""
    (x1, y1, x2, y2), moved = clamped(coordinates(corners, 'box', 4), width, height)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise Skip(f'degenerate box {[round(v, 2) for v in corners]}')
    if moved:
        report.notes['box clamped at the image edge'] += 1
    return {'desc': desc, 'bbox_2d': pixels([x1, y1, x2, y2])}


def degenerate_polygon(coords: list[float]) -> bool:
    """As for a box: a polygon under a pixel wide or high in the image, or whose points lie on one line."""
    xs, ys = coords[0::2], coords[1::2]
    return max(xs) - min(xs) < 1 or max(ys) - min(ys) < 1 or collinear(coords)


def polygon_object(desc: str, points: list[float], width: float, height: float, report: Report) -> dict[str, Any]:
    """A contract polygon from pixel points x, y, x, y, ...: clamped into the image (counted), at least 3 points."""
    points = coordinates(points, 'polygon')
    if len(points) < 6 or len(points) % 2:
        raise Skip(f'polygon with fewer than 3 points ({len(points)} numbers)')
    coords, moved = clamped(points, width, height)
    if degenerate_polygon(coords):  # an outline along the edge once clamped has none
        raise Skip(f'degenerate polygon {[round(v, 2) for v in points][:8]} (no area, or under a pixel wide or high '
                   'in the image)')
    if moved:
        report.notes['polygon clamped at the image edge'] += 1
    return {'desc': desc, 'poly': pixels(coords)}


def image_objects(raw: Iterable[Any], convert_object: Callable[[Any], dict[str, Any] | list[dict] | None],
                  keep_partial: bool, report: Report) -> list[dict[str, Any]]:
    """The contract objects of one image's annotations. An annotation ``convert_object`` cannot convert (``Skip``)
    drops the whole image unless ``keep_partial``: a model trained on an image with objects missing from its answer
    learns to miss them. ``convert_object`` returns None for an annotation that is not an object at all, and a list
    for one that is several (a region with two labels)."""
    objects: list[dict[str, Any]] = []
    lost = []
    for item in raw:
        try:
            obj = convert_object(item)
        except Skip as exc:
            lost.append(str(exc))
            continue
        objects += obj if isinstance(obj, list) else [obj] if obj is not None else []
    if lost and not keep_partial:
        raise Skip(f'image would lose {len(lost)} object(s) ({reason_kind(lost[0])}); --keep-partial keeps it: '
                   f'{lost[0]}')
    if lost:
        report.notes['object dropped from a kept image (--keep-partial)'] += len(lost)
    if not objects:
        raise Skip('image has no objects (a dense-caption record needs at least one)')
    return objects


def geometry_record(image: Path, out: Path, width: int, height: int, objects: list[dict[str, Any]],
                    dataset: str) -> dict[str, Any]:
    """A geometry record as the contract stores it (docs/data/DATA_JSONL_CONTRACT.md)."""
    return {'images': [relative_image(image, out)], 'width': width, 'height': height, 'objects': objects,
            'dataset': dataset}


def add_detection_flags(p: argparse.ArgumentParser, default_name: str) -> None:
    """The flags every detection converter takes (``--dataset`` is None when not given: ``default_name``)."""
    p.add_argument('--dataset', help=f'the `dataset` name written into each record (default: {default_name})')
    p.add_argument('--keep-partial', action='store_true',
                   help='keep images some of whose objects could not be converted (default: drop and count them)')
