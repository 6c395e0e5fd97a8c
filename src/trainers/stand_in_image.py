"""With the weights sharded, a micro-batch without an image gets a stand-in row holding one, so every process runs
the same modules in the same order at every step.

With the weights sharded (DeepSpeed ZeRO-3, FSDP2) each module's weights are gathered from all processes when it
runs, forward and backward: the processes must run the same modules in the same order. Qwen-VL runs its vision tower
only for a batch that holds an image or a video, so a step where one process's micro-batch holds only text records
and another's an image leaves their collectives out of step (gloo aborts, NCCL hangs until its timeout). ms-swift
adds 0 x a black image's features to a text-only batch's embeddings under DeepSpeed, which runs the vision tower
forward; but the backward graph still differs from an image batch's (the features are added, not scattered into
image tokens and the deepstack layers), and ZeRO-3 fetched the aligner on one process while the other fetched the
patch embedding.

Here the batch itself is made alike: a micro-batch with no image gains one extra row, a 32x32 black image and its
prompt, every label -100 and no dataset name. The model then takes exactly the path of an image batch. The row
supervises nothing, so the loss (a mean over supervised tokens), the gradients and the per-dataset metrics are the
batch's own. Its cost, on text-only micro-batches only: one more row through the language model, and the logits of
every position (ms-swift trims them to the supervised positions only for a batch of one row, and otherwise from the
earliest supervised position of any row). Only runs that shard the weights over two or more processes and whose
records mix text-only and image records register their template (``ProjectSft._stand_in_rows``).
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..datasets.pixels import uint8_patches

if TYPE_CHECKING:
    from swift.template import Template

MEDIA_FIELDS = ('pixel_values', 'pixel_values_videos')
_STAND_INS: 'weakref.WeakKeyDictionary[Template, dict[str, Any]]' = weakref.WeakKeyDictionary()
"""Templates registered by ``add_stand_in_rows``, with their encoded stand-in row."""


def add_stand_in_rows(template: 'Template') -> None:
    """Give every micro-batch collated for ``template`` without an image a stand-in row that holds one."""
    inputs = {'messages': [{'role': 'user', 'content': '<image>'}, {'role': 'assistant', 'content': '.'}],
              'images': [Image.new('RGB', (32, 32))]}
    with uint8_patches(template):  # the same pixel path as the records' images
        row = template.encode(inputs, return_length=True)
    row['labels'] = [-100] * len(row['input_ids'])
    _STAND_INS[template] = row


def with_stand_in(template: 'Template | None', rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` plus the stand-in row when ``template`` is registered and no row holds an image or a video."""
    row = _STAND_INS.get(template) if template is not None else None
    if row is None or any(row_has_media(r) for r in rows):
        return rows
    return [*rows, dict(row)]


def row_has_media(row: dict[str, Any]) -> bool:
    return any(row.get(field) is not None for field in MEDIA_FIELDS)
