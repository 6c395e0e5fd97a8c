"""The record check: every record read as training reads it, before step 1 (``custom.encode_check``) and in
``python -m src.datasets.validate``, with its encoded length computed without decoding its pixels.

Why the length needs no pixels: a Qwen-VL template replaces each image by ``(W / f) * (H / f)`` copies of its image
token, where ``(W, H)`` is the size it resizes the image to (``template.max_pixels``, then qwen-vl-utils' rounding to
``f`` = patch size x merge size pixels): a function of the image's size, which its header gives. The rest of the
sequence is text. For a record of one user turn and one text answer (every geometry and summary record) the template
tokenizes the answer on its own (its tokens are the labels), so

    length = base(prompt) + image tokens of each image's size + tokens of the answer

where ``base`` is measured once per prompt by the template itself, with a blank image and a probe answer taken back
out; the probe also shows that the answer is tokenized on its own (otherwise every record takes the next route). Any
other record (several turns, ms-swift's ``<image>`` rows) is encoded by the template with each image replaced by a
small blank image of known token count. Records with videos or ms-swift grounding objects (whose text depends on the
decoded media) are encoded in full. ``tests/datasets/test_record_check.py`` compares every route with the template's
real encode.

Image integrity without decoding: the header (size, mode, EXIF orientation) of every image is read; a JPEG or PNG
that ends with its end marker is complete, and any other file is decoded. ``deep`` (``custom.encode_check: deep``,
the validator's ``--deep``) decodes and encodes every record exactly as training does.

The work is shared: ranks check disjoint slices and gather every problem, so all ranks stop with the same message;
within a process, forked workers (a ``DataLoader``) check chunks of records on the machine's cores. A verdict is
remembered next to the data (``check_cache.py``), so a rerun or a resume of the same data skips the work.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..swift_seams import template_limits
from .builders import header_size, image_header_problem, image_input, image_source
from .builders.coords import model_image_size
from .check_cache import CACHE_ENV, VerdictCache
from .contract import REMOTE, RecordError, image_path, is_chat_record, media_slots, record_problems
from .dense_caption import DenseCaptionDataset, SizedImage, length_problem

if TYPE_CHECKING:
    from swift.template import Template

CHUNK = 256
"""Records per unit of work handed to a worker."""
PROBE = 'probe'
"""The answer that measures a prompt's base length."""
SHOWN = 20
"""Problems a training run prints in full; the rest are counted (the validator lists them all)."""
_MISSING = object()


class LengthCounter:
    """Encoded lengths of template inputs as ``template.encode`` counts them, from image sizes instead of pixels."""

    def __init__(self, template: 'Template'):
        self.template = template
        processor = template.processor.image_processor
        self.factor = int(processor.patch_size) * int(processor.merge_size)
        self.blank = Image.new('RGB', (self.factor, self.factor))
        self.blank_tokens = self.image_tokens(self.factor, self.factor)
        self._bases: dict[tuple, Any] = {}

    @classmethod
    def for_template(cls, template: 'Template | None') -> 'LengthCounter | None':
        """A counter for a Qwen-VL template; None for a template whose image tokens this does not know."""
        processor = getattr(getattr(template, 'processor', None), 'image_processor', None)
        if processor is None or not all(getattr(processor, k, None) for k in ('patch_size', 'merge_size')):
            return None
        return cls(template)

    def image_tokens(self, width: int, height: int) -> int:
        """Image tokens of a ``width`` x ``height`` image in this template."""
        resized_width, resized_height = model_image_size(width, height, self.template.max_pixels, self.factor)
        return (resized_width // self.factor) * (resized_height // self.factor)

    def length(self, inputs: dict[str, Any]) -> int:
        """The encoded length of ``inputs`` (``DenseCaptionDataset.sized_inputs``), with truncation off."""
        if _needs_media(inputs):
            return self._encode(_unsized(inputs))
        key = _single_turn_key(inputs)
        if key is not None:
            base = self._bases.get(key, _MISSING)
            if base is _MISSING:
                base = self._bases[key] = self._base(inputs)
            if base is not None:
                images = [i['image'] for i in inputs['messages'][0]['content'] if i['type'] == 'image']
                return base + sum(self.image_tokens(*_size(v)) for v in images) + len(
                    self._tokens(inputs['messages'][1]['content']))
        blanked, extra = self._blanked(inputs)
        return self._encode(blanked) + extra

    def _base(self, inputs: dict[str, Any]) -> int | None:
        """The length of a single-turn prompt without its images and answer; None when the template does not
        tokenize the answer on its own (then the answer's tokens are not additive)."""
        probe = {'messages': [inputs['messages'][0], {'role': 'assistant', 'content': PROBE}]}
        blanked, _ = self._blanked(probe)
        with template_limits(self.template, max_length=None):
            encoded = self.template.encode(blanked, return_length=True)
        answer = self._tokens(PROBE)
        learned = [t for t in encoded.get('labels') or [] if t != -100]
        if learned[:len(answer)] != answer:
            return None
        images = sum(1 for i in inputs['messages'][0]['content'] if i['type'] == 'image')
        return encoded['length'] - images * self.blank_tokens - len(answer)

    def _tokens(self, text: str) -> list[int]:
        return self.template.tokenizer(text, return_attention_mask=False, add_special_tokens=False)['input_ids']

    def _encode(self, inputs: dict[str, Any]) -> int:
        with template_limits(self.template, max_length=None):
            return self.template.encode(inputs, return_length=True)['length']

    def _blanked(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """``inputs`` with every image replaced by the blank image, and the image tokens that takes away."""
        extra = 0

        def blank(value: Any) -> Image.Image:
            nonlocal extra
            extra += self.image_tokens(*_size(value)) - self.blank_tokens
            return self.blank

        messages = []
        for message in inputs['messages']:
            content = message['content']
            if isinstance(content, list):
                content = [{**i, 'image': blank(i['image'])} if i['type'] == 'image' else i for i in content]
            messages.append({**message, 'content': content})
        out = {**inputs, 'messages': messages}
        if inputs.get('images'):
            out['images'] = [blank(v) for v in inputs['images']]
        return out, extra


def _size(value: Any) -> tuple[int, int]:
    """(width, height) of an image input: a ``SizedImage``, or a path / data URL whose header is read."""
    return (value.width, value.height) if isinstance(value, SizedImage) else header_size(value)


def _needs_media(inputs: dict[str, Any]) -> bool:
    """Videos (frame count and timestamps come from the file) and grounding objects (ms-swift writes their boxes
    relative to the loaded image) are counted by a full encode."""
    if inputs.get('videos') or inputs.get('objects'):
        return True
    return any(isinstance(m['content'], list) and any(i['type'] == 'video' for i in m['content'])
               for m in inputs['messages'])


def _single_turn_key(inputs: dict[str, Any]) -> tuple | None:
    """What a single-turn record's base length depends on (its prompt items), or None for any other record."""
    messages = inputs['messages']
    if set(inputs) != {'messages'} or len(messages) != 2 or messages[0]['role'] != 'user' \
            or messages[1]['role'] != 'assistant' or not isinstance(messages[1]['content'], str) \
            or not isinstance(messages[0]['content'], list):
        return None
    return tuple((i['type'], i.get('text')) for i in messages[0]['content'])


def _unsized(inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with each ``SizedImage`` back to the image it stands for (a full encode decodes it)."""
    messages = [{**m, 'content': [{**i, 'image': i['image'].value} if isinstance(i.get('image'), SizedImage) else i
                                  for i in m['content']] if isinstance(m['content'], list) else m['content']}
                for m in inputs['messages']]
    return {**inputs, 'messages': messages}


JPEG_START, JPEG_END = b'\xff\xd8\xff', b'\xff\xd9'
PNG_START, PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND\xaeB`\x82'
TAIL = 64
"""Bytes at the end of a file searched for its end marker (encoders may pad after it)."""


def _ends_complete(path: str) -> bool:
    """Whether a JPEG or PNG file carries its end marker where it belongs (a file cut short does not)."""
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL))
        tail = f.read()
    if head.startswith(JPEG_START):
        return JPEG_END in tail
    if head == PNG_START:
        return PNG_END in tail
    return False


def image_problems(record: dict[str, Any], base_dir: Path, deep: bool) -> tuple[list[str], list[str]]:
    """(problems, local media files) of a record's images: each must open (header), hold 8-bit samples and be
    complete (its end marker, or a full decode when the file does not show it; every file with ``deep``)."""
    problems, files = [], []
    for slot in media_slots(record):
        field_name, value, kind = slot.field, slot.value, slot.kind
        if not isinstance(value, (str, dict)):
            continue  # not a path, URL or inline bytes: the record's own schema check names the key to write
        path = image_path(value, base_dir)
        if path is not None and path.is_file():
            files.append(str(path))
        if kind != 'image' or (path is not None and not path.is_file()) or (
                isinstance(value, str) and value.startswith(REMOTE)):
            continue  # missing files and remote URLs are reported by the record checks
        try:
            source = image_input(value, base_dir)
        except ValueError as exc:
            problems.append(f'{field_name}: {exc}')
            continue
        if (problem := image_header_problem(source)) is not None:
            problems.append(f'{field_name}: {problem}')
            continue
        if not deep and path is not None and _ends_complete(str(path)):
            continue
        try:
            with Image.open(image_source(source)) as image:
                image.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the record's problem
            problems.append(f'{field_name}: {path or "the inline image"} does not decode as an image ({exc})')
    return problems, files


@dataclass
class Verdict:
    """What the check found in one record."""
    problems: list[str]
    length: int | None = None
    files: list[str] = field(default_factory=list)
    text_only: bool = False
    """The record trains without any image or video."""
    video: bool = False
    """The record trains with a video."""
    image: bool = False
    """The record trains with an image."""
    chat: bool = False
    """A chat record (`messages`): it trains as written, without `custom.mode`, prompts or augmentation."""
    prompt_keys: tuple[str, ...] = ()
    """The names a geometry record's prompt is looked up by in `custom.dataset_prompts` (`_fusion_source`,
    `dataset`)."""


def record_verdict(dataset: DenseCaptionDataset, idx: int, counter: LengthCounter | None, deep: bool) -> Verdict:
    """Every problem of record ``idx`` (the contract's, every one; its images; then what training does with it, with
    the template's length limit when the dataset has a template) and its encoded length."""
    where = dataset.where(idx)
    try:
        record = dataset.record(idx)
    except RecordError as exc:
        return Verdict([str(exc).removeprefix(f'{where}: ')])
    chat = isinstance(record, dict) and is_chat_record(record)
    problems = [] if chat else record_problems(record, dataset.path.parent, mode=dataset.settings.mode)
    files: list[str] = []
    if not problems and isinstance(record, dict):
        problems, files = image_problems(record, dataset.path.parent, deep)
    if problems:
        return Verdict(problems, None, files)
    template = dataset.template
    try:
        inputs = dataset.sized_inputs(idx, record, draw=idx)
        kinds = {'text_only': not has_media(inputs), 'video': has_media(inputs, ('video', )),
                 'image': has_media(inputs, ('image', )), 'chat': chat,
                 'prompt_keys': () if chat else prompt_keys(record)}
        if template is not None and (deep or counter is None):
            return Verdict([], dataset.encode(idx, draw=idx)['length'], files, **kinds)
    except RecordError as exc:
        return Verdict([str(exc).removeprefix(f'{where}: ')], None, files)
    if template is None:
        return Verdict([], None, files, **kinds)
    try:
        length = counter.length(inputs)
    except Exception as exc:  # noqa: BLE001 - the template's own refusal (a media file it cannot read), named
        return Verdict([f'could not encode the record: {type(exc).__name__}: {exc}'], None, files, **kinds)
    if template.max_length is not None and length > template.max_length:
        return Verdict([length_problem(length, template.max_length)], length, files, **kinds)
    return Verdict([], length, files, **kinds)


def prompt_keys(record: dict[str, Any]) -> tuple[str, ...]:
    """The `custom.dataset_prompts` keys a geometry record's prompt is looked up by (``BuildSettings.prompt``)."""
    return tuple(str(record[key]) for key in ('_fusion_source', 'dataset') if record.get(key))


def has_media(inputs: dict[str, Any], kinds: tuple[str, ...] = ('image', 'video')) -> bool:
    """Whether template inputs carry media of ``kinds`` (an image or a video by default)."""
    if any(inputs.get(f'{kind}s') for kind in kinds):
        return True
    return any(isinstance(m['content'], list) and any(i['type'] in kinds for i in m['content'])
               for m in inputs['messages'])


class _Chunks(Dataset):
    """Chunks of record indices of one file, checked where the ``DataLoader`` puts them (forked workers)."""

    def __init__(self, dataset: DenseCaptionDataset, indices: range, deep: bool):
        self.dataset, self.indices, self.deep = dataset, indices, deep
        self.counter: LengthCounter | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / CHUNK)

    def __getitem__(self, chunk: int) -> list[tuple[int, Verdict]]:
        if self.counter is None:
            self.counter = LengthCounter.for_template(self.dataset.template)
        return [(idx, record_verdict(self.dataset, idx, self.counter, self.deep))
                for idx in self.indices[chunk * CHUNK:(chunk + 1) * CHUNK]]


INDEX_LISTS = ('text_only', 'videos', 'images', 'chat')
"""The ``FileReport`` fields that list record indices."""


@dataclass
class FileReport:
    """The verdict on one file of records."""
    dataset: DenseCaptionDataset
    problems: list[tuple[int, str]]
    """(record index, problem), in record order."""
    longest: int | None
    """The longest encoded length (None without a template)."""
    text_only: list[int]
    """Indices of the records without any image or video."""
    videos: list[int] = field(default_factory=list)
    """Indices of the records with a video."""
    images: list[int] = field(default_factory=list)
    """Indices of the records with an image."""
    chat: list[int] = field(default_factory=list)
    """Indices of the chat records."""
    prompt_keys: dict[str, int] = field(default_factory=dict)
    """Geometry records per `custom.dataset_prompts` key they are looked up by (their `_fusion_source`, `dataset`)."""
    cached: bool = False

    def lines(self) -> list[str]:
        """``file:line: problem`` per problem."""
        return [f'{self.dataset.where(idx)}: {problem}' for idx, problem in self.problems]

    def verdict(self) -> dict[str, Any]:
        """The findings without the dataset, JSON-ready: what the cache stores and the ranks exchange."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ('dataset', 'cached')}

    @classmethod
    def merged(cls, dataset: DenseCaptionDataset, verdicts: list[dict[str, Any]]) -> 'FileReport':
        """One report from the verdicts on disjoint sets of the file's records (each rank's share)."""
        found = [v['longest'] for v in verdicts if v['longest'] is not None]
        keys = sum((Counter(v['prompt_keys']) for v in verdicts), Counter())
        indices = {name: sorted(i for v in verdicts for i in v[name]) for name in INDEX_LISTS}
        return cls(dataset, sorted(p for v in verdicts for p in map(tuple, v['problems'])),
                   max(found) if found else None, **indices, prompt_keys=dict(sorted(keys.items())))


def default_workers() -> int:
    """The cores of this process's share of the machine (its CPUs over the ranks on this node), at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    return max(1, min(8, cpus // int(os.environ.get('LOCAL_WORLD_SIZE', '1'))))


def check_file(dataset: DenseCaptionDataset, deep: bool = False, workers: int | None = None) -> FileReport:
    """Check every record of one file, or read the verdict from the cache when it holds this file's. The work is
    shared over the ranks (each takes every world-th record; all gather every problem) once their process group
    exists, and before that the processes checking the same file at once take turns on the cache entry's lock, so
    one checks and the others read its verdict. Every process returns the same report."""
    rank, world = _distributed()
    cache = VerdictCache.for_dataset(dataset, deep)
    workers = workers if workers is not None else default_workers()
    if world == 1:
        with cache.locked() if cache is not None else contextlib.nullcontext():
            cached = cache.load() if cache is not None else None
            if cached is not None:
                return FileReport(dataset, **cached, cached=True)
            report, files = _report(dataset, range(len(dataset)), deep, workers)
            if cache is not None:
                cache.store(report.verdict(), files)
            return report
    cached = cache.load() if cache is not None else None
    if not all(_gather(cached is not None)):
        cached = None
    if cached is not None:
        return FileReport(dataset, **cached, cached=True)
    shard, files = _report(dataset, range(rank, len(dataset), world), deep, workers)
    shards = _gather((shard.verdict(), files))
    report = FileReport.merged(dataset, [verdict for verdict, _ in shards])
    if cache is not None and rank == 0:
        cache.store(report.verdict(), sorted({f for _, shard_files in shards for f in shard_files}))
    return report


def check_uncached(dataset: DenseCaptionDataset, workers: int | None = None) -> FileReport:
    """Check every record of one file in this process (and its workers), without the cache: what a converter runs on
    the file it is about to write, which no later run reads as it is."""
    return _report(dataset, range(len(dataset)), False, workers if workers is not None else default_workers())[0]


def _report(dataset: DenseCaptionDataset, indices: range, deep: bool, workers: int) -> tuple[FileReport, list[str]]:
    """The report on the records at ``indices``, and the media files they name."""
    verdicts = _check_indices(dataset, indices, deep, workers)
    lengths = [v.length for _, v in verdicts if v.length is not None]
    keys = Counter(key for _, verdict in verdicts for key in verdict.prompt_keys)
    report = FileReport(dataset, [(idx, p) for idx, v in verdicts for p in v.problems],
                        max(lengths) if lengths else None, [idx for idx, v in verdicts if v.text_only],
                        [idx for idx, v in verdicts if v.video], [idx for idx, v in verdicts if v.image],
                        [idx for idx, v in verdicts if v.chat], dict(sorted(keys.items())))
    return report, sorted({f for _, v in verdicts for f in v.files})


def _check_indices(dataset: DenseCaptionDataset, indices: range, deep: bool,
                   workers: int) -> list[tuple[int, Verdict]]:
    chunks = _Chunks(dataset, indices, deep)
    if len(chunks) < 2:
        workers = 0
    # Its own generator: a DataLoader draws its workers' base seed from the global one otherwise, and the check runs
    # before the adapter's weights are drawn, so a run's initial weights would depend on how its records were checked.
    loader = DataLoader(chunks, batch_size=None, num_workers=min(workers, len(chunks)) if workers > 1 else 0,
                        multiprocessing_context='fork' if workers > 1 else None, generator=torch.Generator())
    verdicts: list[tuple[int, Verdict]] = []
    saved = os.environ.get('TOKENIZERS_PARALLELISM')
    os.environ['TOKENIZERS_PARALLELISM'] = 'false'  # forked workers tokenize on their own, without the warning
    try:
        with tqdm(total=len(indices), desc=f'checking {dataset.path.name}', unit='rec', file=sys.stderr,
                  mininterval=1.0) as bar:
            for chunk in loader:
                verdicts += chunk
                bar.update(len(chunk))
    finally:
        if saved is None:
            os.environ.pop('TOKENIZERS_PARALLELISM', None)
        else:
            os.environ['TOKENIZERS_PARALLELISM'] = saved
    return verdicts


def check_datasets(datasets: list[Any], deep: bool = False) -> list[FileReport]:
    """Check every file of records of ``datasets`` (``record_files()``) and raise one ``RecordError`` listing the
    problems (the first ``SHOWN`` in full) before training starts."""
    reports = [check_file(d, deep) for dataset in datasets if dataset is not None for d in dataset.record_files()]
    lines = [line for report in reports for line in report.lines()]
    count = sum(len(report.dataset) for report in reports)
    if lines:
        shown = '\n  '.join(lines[:SHOWN])
        more = f'\n  ... and {len(lines) - SHOWN} more' if len(lines) > SHOWN else ''
        problems = f'{len(lines)} problem{"s" * (len(lines) != 1)}'
        raise RecordError(f'{problems} in {count} records (the record check before step 1; '
                          '`python -m src.datasets.validate FILE --config CONFIG` lists every problem):\n  '
                          f'{shown}{more}')
    return reports


def _distributed() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(value: Any) -> list[Any]:
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


__all__ = ['CACHE_ENV', 'FileReport', 'LengthCounter', 'Verdict', 'check_datasets', 'check_file', 'image_problems',
           'record_verdict']
