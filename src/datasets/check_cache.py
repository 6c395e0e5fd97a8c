"""The record check's verdicts, remembered next to the data so a rerun, a resume or another rank skips the work.

A verdict is stored in ``.toolkit_check/`` beside the JSONL file (or under ``$TOOLKIT_CHECK_CACHE`` when set; ``off``
turns the cache off) and keyed by everything it depends on: the file's content hash, how its records are built
(mode, prompts, coordinates, augmentation and seed, sample limit), the template (its class, tokenizer, length limit
and image sizing), whether the check was deep, and ``CHECK_VERSION``. The media files the records name are listed in
the verdict with their size and modification time; a verdict whose files changed is not used. Any change to these
inputs misses the cache and the check runs again; a folder that cannot be written to keeps no cache (with a note).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from .dense_caption import DenseCaptionDataset

logger = logging.getLogger(__name__)

CHECK_VERSION = 6  # 2: the verdict lists the records with a video; 3: with an image; 4: chat records; 5: prompt keys;
# 6: summary references, image_url files, a second system message and zero-area polygons are checked
"""Raised whenever what the check verifies changes, so older verdicts are not used."""
CACHE_ENV = 'TOOLKIT_CHECK_CACHE'
FOLDER = '.toolkit_check'


class VerdictCache:
    """The stored verdict of one file of records under one set of inputs."""

    def __init__(self, path: Path, key: str):
        self.path = path
        self.key = key

    @classmethod
    def for_dataset(cls, dataset: 'DenseCaptionDataset', deep: bool) -> 'VerdictCache | None':
        """The cache entry of ``dataset``'s verdict; None when ``$TOOLKIT_CHECK_CACHE`` is ``off``."""
        where = os.environ.get(CACHE_ENV)
        if where == 'off':
            return None
        folder = Path(where) if where else dataset.path.parent / FOLDER
        key = verdict_key(dataset, deep)
        return cls(folder / f'{dataset.path.name}.{key[:20]}.json', key)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the entry's lock: processes that check the same file at once (the ranks of a node before their
        process group exists) check it once; the others wait and read the verdict. No lock where nothing can be
        written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path.with_name(f'.{self.path.name}.lock'), 'a')
        except OSError:
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def load(self) -> dict[str, Any] | None:
        """The stored verdict (``FileReport``'s fields without the dataset) when one for these inputs is stored and its
        media files are unchanged."""
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get('key') != self.key:
            return None
        for path, stat in stored.get('files', {}).items():
            if _stat(path) != stat:
                return None
        verdict = stored['verdict']
        return {**verdict, 'problems': [(int(i), str(p)) for i, p in verdict['problems']]}

    def store(self, verdict: dict[str, Any], files: list[str]) -> None:
        """Write ``verdict`` (JSON-ready) atomically; a folder that cannot be written keeps none (logged)."""
        entry = {'key': self.key, 'version': CHECK_VERSION, 'verdict': verdict, 'files': {f: _stat(f) for f in files}}
        temporary = self.path.with_name(f'.{self.path.name}.{os.getpid()}.tmp')
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(entry))
            os.replace(temporary, self.path)
        except OSError as exc:
            logger.warning(f'the record check\'s verdict is not cached ({self.path.parent}: {exc.strerror or exc}); '
                           f'set {CACHE_ENV} to a writable folder to keep it')
            with contextlib.suppress(OSError):
                temporary.unlink()


def _stat(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content."""
    with open(path, 'rb') as f:
        return hashlib.file_digest(f, 'sha256').hexdigest()


def verdict_key(dataset: 'DenseCaptionDataset', deep: bool) -> str:
    """The hash of every input the verdict of ``dataset`` depends on."""
    augmenter = dataset.augmenter
    parts = {
        'version': CHECK_VERSION,
        'file': file_digest(dataset.path),
        'records': len(dataset),
        'settings': repr(dataclasses.asdict(dataset.settings)),
        'augmentation': None if augmenter is None else [repr(augmenter.ops), augmenter.rotate_box_to, dataset.seed],
        'template': template_identity(dataset.template),
        'deep': deep,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


_TOKENIZER_DIGESTS: dict[int, str] = {}


def template_identity(template: Any) -> Any:
    """What decides a template's encoded lengths: its class, tokenizer (vocabulary and merges), length limit, image
    sizing and the qwen-vl-utils limits it resizes within."""
    if template is None:
        return None
    from qwen_vl_utils import vision_process

    tokenizer = template.tokenizer
    digest = _TOKENIZER_DIGESTS.get(id(tokenizer))
    if digest is None:
        backend = getattr(tokenizer, 'backend_tokenizer', None)
        text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
        digest = _TOKENIZER_DIGESTS[id(tokenizer)] = hashlib.sha256(text.encode()).hexdigest()
    processor = template.processor.image_processor
    return [type(template).__name__, digest, getattr(tokenizer, 'chat_template', None), template.max_length,
            template.max_pixels, template.truncation_strategy, template.mode, template.loss_scale.__class__.__name__,
            repr(getattr(template, 'template_meta', None)),
            {k: repr(getattr(processor, k, None)) for k in ('patch_size', 'merge_size', 'temporal_patch_size', 'size',
                                                             'min_pixels', 'max_pixels')},
            {k: getattr(vision_process, k, None) for k in ('IMAGE_MIN_TOKEN_NUM', 'IMAGE_MAX_TOKEN_NUM',
                                                           'VIDEO_MIN_TOKEN_NUM', 'VIDEO_MAX_TOKEN_NUM', 'FPS',
                                                           'FPS_MIN_FRAMES', 'FPS_MAX_FRAMES')}]
