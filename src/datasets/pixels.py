"""Images travel from the dataset to the vision tower as uint8 patches and are normalised where the model reads them.

The Qwen-VL image processor turns an image into float32 patch rows: rescaled, normalised, and each patch written
twice (``temporal_patch_size`` 2 makes a still image a two-frame clip). A 1024x768 image becomes 18.9 MB that is
allocated, concatenated by the collator and copied from a DataLoader worker to the trainer, although it carries the
2.4 MB of the decoded image. Here the template's image step (``processor.image_processor(images, do_resize=False)``
inside ms-swift's ``Template._encode``) produces the same patch order in uint8, one copy per patch, and a forward
pre-hook on the vision tower's patch embedding makes the rows the processor would have made, on the model's device:

    rows = repeat((patches - mean / rescale_factor) / (std / rescale_factor))     # (N, C*P*P) -> (N, C*T*P*P)

which is the processor's own float32 arithmetic (transformers fuses rescale into normalise the same way), so the
rows are bit-for-bit equal (``tests/datasets/test_pixels.py`` compares both paths on the tiny model: same
``input_ids`` and labels, equal pixels, equal logits).

Only the project's ``DenseCaptionDataset`` asks for uint8 patches, and only from a template registered with
``read_uint8_patches`` together with the model that consumes its batches, so a model without the hook never sees
them. Rows already in the processor's layout (``C*T*P*P`` wide: videos, ms-swift's own encodes in GKD / GRPO,
evaluation) pass the hook unchanged.
"""
from __future__ import annotations

import contextlib
import functools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature

from .builders.coords import model_image_size

if TYPE_CHECKING:
    from swift.template import Template
    from torch import nn


@dataclass(frozen=True)
class PatchLayout:
    """The Qwen-VL image processor's settings that fix the patch rows (``preprocessor_config.json``)."""
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    rescale_factor: float
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]

    @property
    def row_width(self) -> int:
        """Width of a uint8 patch row: channels x patch x patch (one frame)."""
        return len(self.image_mean) * self.patch_size**2

    def patchify(self, image: Image.Image) -> tuple[torch.Tensor, list[int]]:
        """(uint8 rows ``(grid_h * grid_w, C*P*P)`` in the processor's patch order, ``[1, grid_h, grid_w]``)."""
        pixels = torch.from_numpy(np.array(image))  # (H, W, C), writable copy of the decoded image
        height, width, channels = pixels.shape
        p, m = self.patch_size, self.merge_size
        grid_h, grid_w = height // p, width // p
        # The processor's order: merge windows row-major, the 2x2 patches of a window, then channel, row, column.
        rows = pixels.view(grid_h // m, m, p, grid_w // m, m, p, channels).permute(0, 3, 1, 4, 6, 2, 5)
        return rows.reshape(grid_h * grid_w, channels * p * p), [1, grid_h, grid_w]

    def expand(self, rows: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The processor's float rows of uint8 ``rows`` (any dtype holding the integers 0-255), in ``dtype``."""
        channels = len(self.image_mean)
        # transformers' rescale_and_normalize: mean and std scaled by 1 / rescale_factor in float32, then (x - m) / s
        mean = (torch.tensor(self.image_mean, device=rows.device) * (1.0 / self.rescale_factor)).view(1, -1, 1, 1)
        std = (torch.tensor(self.image_std, device=rows.device) * (1.0 / self.rescale_factor)).view(1, -1, 1, 1)
        values = (rows.view(-1, channels, 1, self.patch_size**2).float() - mean) / std
        frames = values.expand(-1, -1, self.temporal_patch_size, -1)
        return frames.reshape(rows.shape[0], -1).to(dtype)


def model_size_of(template: 'Template | None') -> Callable[[int, int], tuple[int, int]] | None:
    """(width, height) -> the size ``template`` resizes an image to before patching it (its `max_pixels`, then
    qwen-vl-utils' rounding to whole merged patches); None for a template without a Qwen-VL image processor."""
    layout = None if template is None else patch_layout(template.processor.image_processor)
    if layout is None:
        return None
    return functools.partial(model_image_size, max_pixels=template.max_pixels,
                             factor=layout.patch_size * layout.merge_size)


def patch_layout(image_processor: Any) -> PatchLayout | None:
    """The layout of a Qwen-VL image processor that rescales and normalises; None for any other processor."""
    names = ('patch_size', 'merge_size', 'temporal_patch_size', 'image_mean', 'image_std', 'rescale_factor')
    if not all(getattr(image_processor, name, None) is not None for name in names):
        return None
    if not (getattr(image_processor, 'do_rescale', False) and getattr(image_processor, 'do_normalize', False)):
        return None
    return PatchLayout(int(image_processor.patch_size), int(image_processor.merge_size),
                       int(image_processor.temporal_patch_size), float(image_processor.rescale_factor),
                       tuple(float(v) for v in image_processor.image_mean),
                       tuple(float(v) for v in image_processor.image_std))


class Uint8Images:
    """Stands in for ``processor.image_processor`` during one encode: the call ms-swift's Qwen-VL templates make
    for images (already resized by ``qwen_vl_utils.fetch_image``) returns uint8 rows; any other call, and every
    attribute, is the real processor's."""

    def __init__(self, processor: Any, layout: PatchLayout):
        self._processor = processor
        self._layout = layout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)

    def __call__(self, images: Any = None, **kwargs: Any) -> BatchFeature:
        if not self._handles(images, kwargs):
            return self._processor(images=images, **kwargs)
        rows, grids = zip(*(self._layout.patchify(image) for image in images))
        return BatchFeature({'pixel_values': torch.cat(rows) if len(rows) > 1 else rows[0],
                             'image_grid_thw': torch.tensor(grids, dtype=torch.long)})

    def _handles(self, images: Any, kwargs: dict[str, Any]) -> bool:
        if kwargs != {'return_tensors': 'pt', 'do_resize': False} or not isinstance(images, (list, tuple)):
            return False
        factor = self._layout.patch_size * self._layout.merge_size
        return bool(images) and all(isinstance(image, Image.Image) and image.mode == 'RGB' and image.width % factor == 0
                                    and image.height % factor == 0 for image in images)


_UINT8_TEMPLATES: 'weakref.WeakKeyDictionary[Template, PatchLayout]' = weakref.WeakKeyDictionary()
"""Templates registered by ``read_uint8_patches``, with their processor's layout (read once, not per encode)."""


def read_uint8_patches(template: 'Template', model: 'nn.Module') -> bool:
    """Let datasets encode uint8 patches with ``template``: hook every Qwen-VL patch embedding in ``model`` to
    expand them. False (and nothing changed) when the processor or the model is not Qwen-VL's."""
    layout = patch_layout(template.processor.image_processor)
    embeds = [module for module in model.modules() if _is_patch_embed(module)]
    if layout is None or not embeds:
        return False
    # The hook tells uint8 rows from the processor's by their width, which needs two or more frames per patch.
    if layout.temporal_patch_size < 2 or any(
            module.in_channels * module.patch_size**2 != layout.row_width
            or module.temporal_patch_size != layout.temporal_patch_size for module in embeds):
        return False
    for module in embeds:
        module.register_forward_pre_hook(_expander(layout, module))
    _UINT8_TEMPLATES[template] = layout
    return True


@contextlib.contextmanager
def uint8_patches(template: 'Template | None') -> Iterator[None]:
    """Within the block, ``template`` encodes images as uint8 rows, if it was registered by ``read_uint8_patches``."""
    if template is None or template not in _UINT8_TEMPLATES:
        yield
        return
    processor = template.processor
    real = processor.image_processor
    processor.image_processor = Uint8Images(real, _UINT8_TEMPLATES[template])
    try:
        yield
    finally:
        processor.image_processor = real


def with_processor_rows(template: 'Template | None', batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` with its uint8 image rows expanded to the processor's float rows when it also holds videos.

    transformers' Qwen-VL forward encodes images and videos apart, but ms-swift's DeepSpeed forward concatenates the
    image rows with the video rows before the patch embedding, which needs them of one width (one-frame uint8 rows
    beside two-frame video rows stopped the step: "Sizes of tensors must match"). Only such micro-batches pay the
    float rows; the hook passes rows already in the processor's layout unchanged."""
    layout = _UINT8_TEMPLATES.get(template) if template is not None else None
    pixels = batch.get('pixel_values')
    if (layout is None or pixels is None or batch.get('pixel_values_videos') is None
            or pixels.shape[-1] != layout.row_width):
        return batch
    batch['pixel_values'] = layout.expand(pixels, torch.float32)
    return batch


def _is_patch_embed(module: 'nn.Module') -> bool:
    return type(module).__name__.endswith('PatchEmbed') and all(
        hasattr(module, name) for name in ('in_channels', 'patch_size', 'temporal_patch_size', 'proj'))


def _expander(layout: PatchLayout, module: 'nn.Module'):

    def expand_uint8_rows(_module: 'nn.Module', args: tuple) -> tuple | None:
        if not args or args[0].shape[-1] != layout.row_width:
            return None  # already the processor's rows
        rows = args[0]
        return (layout.expand(rows, module.proj.weight.dtype), ) + tuple(args[1:])

    return expand_uint8_rows
