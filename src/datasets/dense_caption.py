"""``DenseCaptionDataset``: JSONL records encoded by ms-swift's template, one record per index, never skipped.

A record is either a chat record (ready ``messages``, passed through) or a geometry / summary record, which is
checked against the contract, optionally augmented (training only), and rendered into messages by the builder of
``custom.mode``.

ms-swift's own ``LazyLLMDataset`` swaps a failing record for a random other one; here a record that fails to load or
encode raises with its file and line, so a run trains on exactly the data it was given. Only the byte offsets of the
lines are kept in memory; a record is read and parsed when it is asked for.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

from ..swift_seams import max_length_error, template_limits
from .augmentation import Augmenter, sample_rng
from .augmentation.pipeline import PROMPT_STREAM
from .builders import BUILDERS, BuildSettings, image_header_problem, image_input, load_image
from .builders.chat import to_template_inputs
from .contract import RecordError, is_chat_record, parse_line, record_problems
from .jsonl_index import JsonlIndex
from .pixels import model_size_of, uint8_patches

if TYPE_CHECKING:
    from swift.template import Template

# Keys an encoded sample carries for telemetry; the project's collator turns them into batch fields.
DATASET_LABEL = '_dataset_label'
DROPPED_OBJECTS = '_dropped_objects'


class DenseCaptionDataset(Dataset):
    """Records of one JSONL file, encoded on access by an ms-swift ``Template``."""

    def __init__(self,
                 jsonl_path: str | Path,
                 template: 'Template',
                 sample_limit: int | None = None,
                 settings: BuildSettings | None = None,
                 augmenter: Augmenter | None = None,
                 seed: int = 0,
                 label: str | None = None):
        self.path = Path(jsonl_path)
        if not self.path.is_file():
            raise RecordError(f'{self.path}: JSONL file not found')
        self.template = template
        self.settings = settings or BuildSettings()
        if augmenter is not None and augmenter.model_size is None:  # resample once, to the template's size
            augmenter = dataclasses.replace(augmenter, model_size=model_size_of(template))
        self.augmenter = augmenter
        self.seed = seed
        self.epoch = 0
        """Set by the trainer at each epoch start, so augmentation differs between epochs."""
        self.label = label
        """Telemetry name of every record (a fusion source); unset, a record's `_fusion_source` or `dataset`."""
        self._index = JsonlIndex(self.path, sample_limit)
        if not self._index:
            raise RecordError(f'{self.path}: no records')

    def __len__(self) -> int:
        return len(self._index)

    def where(self, idx: int) -> str:
        """``file:line`` of record ``idx``, the prefix of its error messages."""
        return f'{self.path}:{self._index.line_number(idx)}'

    def record(self, idx: int) -> Any:
        """Record ``idx`` as parsed JSON (the line must be UTF-8, as JSON Lines requires)."""
        return parse_line(self._index.read(idx), self.where(idx))

    def inputs(self, idx: int, draw: int | None = None) -> dict[str, Any]:
        """Record ``idx`` validated and converted to template inputs (``draw``: see ``encode``)."""
        return self._inputs(idx, self.record(idx), idx if draw is None else draw)[0]

    def sized_inputs(self, idx: int, record: Any, draw: int) -> dict[str, Any]:
        """The template inputs of ``record`` (the record at ``idx``) as ``encode`` would build them, with the image of
        a geometry / summary record as a ``SizedImage`` (its size after augmentation) instead of decoded pixels: what
        the record check needs to know the encoded length without decoding (``src/datasets/record_check.py``)."""
        return self._inputs(idx, record, draw, pixels=False)[0]

    def _inputs(self, idx: int, record: Any, draw: int, pixels: bool = True) -> tuple[dict[str, Any], int]:
        """(template inputs, objects augmentation dropped) of ``record``, the record at ``idx``; ``draw`` keys the
        augmentation randomness (with the seed and the epoch). ``pixels`` False: see ``sized_inputs``."""
        where = self.where(idx)
        if isinstance(record, dict) and is_chat_record(record):
            return to_template_inputs(record, self.path.parent, where), 0
        problems = record_problems(record, self.path.parent, mode=self.settings.mode)
        if problems:
            raise RecordError(f'{where}: ' + '; '.join(problems))
        try:
            image = image_input(record['images'][0], self.path.parent)
        except ValueError as exc:
            raise RecordError(f'{where}: images[0]: {exc}') from None
        if (problem := image_header_problem(image, record['width'], record['height'])) is not None:
            raise RecordError(f'{where}: images[0]: {problem}')
        dropped = 0
        if self.augmenter is not None and pixels:
            image, record, dropped = self.augmenter(load_image(image), record, sample_rng(self.seed, self.epoch, draw))
        elif self.augmenter is not None:
            record, dropped, _, _ = self.augmenter.move(record, sample_rng(self.seed, self.epoch, draw))
        if not pixels:
            image = SizedImage(image, record['width'], record['height'])
        settings = self.settings
        if settings.summary_variants:
            settings = settings.for_sample(sample_rng(self.seed, self.epoch, draw, stream=PROMPT_STREAM))
        try:
            return BUILDERS[settings.mode](record, image, settings), dropped
        except ValueError as exc:
            raise RecordError(f'{where}: {exc}') from None

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return self.encode(idx, draw=idx)

    def encode(self, idx: int, draw: int) -> dict[str, Any]:
        """Record ``idx`` encoded, plus its telemetry fields (``DATASET_LABEL``, ``DROPPED_OBJECTS``).

        ``draw`` keys the augmentation: a mixture passes the sample's position in the epoch, so a record drawn twice
        in one epoch is augmented twice, and the offline mixture file (where line = position) matches epoch 0.
        """
        record = self.record(idx)
        inputs, dropped = self._inputs(idx, record, draw)
        try:
            with uint8_patches(self.template):  # uint8 pixels when the model reads them (src/datasets/pixels.py)
                encoded = self.template.encode(inputs, return_length=True)
        except max_length_error():
            raise RecordError(f'{self.where(idx)}: '
                              f'{length_problem(self.encoded_length(inputs), self.template.max_length)}') from None
        except Exception as exc:  # noqa: BLE001 - e.g. an image that does not decode; name the record
            raise RecordError(f'{self.where(idx)}: could not encode the record: {type(exc).__name__}: {exc}') from exc
        label = self._label(record)
        if label:
            encoded[DATASET_LABEL] = label
        if self.augmenter is not None:
            encoded[DROPPED_OBJECTS] = dropped
        return encoded

    def label_of(self, idx: int) -> str | None:
        """The telemetry name of record ``idx`` (for trainers that encode themselves)."""
        return self._label(self.record(idx))

    def _label(self, record: Any) -> str | None:
        if self.label or not isinstance(record, dict):
            return self.label
        return record.get('_fusion_source') or record.get('dataset')

    def encoded_length(self, inputs: dict[str, Any]) -> int:
        """The token length of ``inputs`` with truncation off, to report how far over the limit a record is."""
        with template_limits(self.template, max_length=None):
            return self.template.encode(inputs, return_length=True)['length']

    def record_files(self) -> list['DenseCaptionDataset']:
        """The files of records this dataset reads (``record_check.check_datasets`` checks them)."""
        return [self]


@dataclass(frozen=True)
class SizedImage:
    """An image known by its size only: the stand-in for decoded pixels in ``DenseCaptionDataset.sized_inputs``."""
    value: str
    """What the template would load (``builders.image_input``)."""
    width: int
    height: int
    """The size the template receives it at (after augmentation)."""


def length_problem(length: int, max_length: int) -> str:
    """The message for a record whose encoded length exceeds the template's limit."""
    return (f'encoded length {length} tokens exceeds max_length {max_length}; raise `global_max_length`, lower the '
            'image resolution (template.max_pixels) or shorten the record')
