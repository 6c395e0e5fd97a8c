"""The stand-in row: with the weights sharded, a micro-batch without an image gains a row that holds one and
supervises nothing (tests/test_scale_invariance.py trains such a mix under ZeRO-3 and FSDP2 on two processes)."""
from __future__ import annotations

import copy

import torch

from src.trainers.stand_in_image import add_stand_in_rows, with_stand_in


def test_only_a_registered_template_adds_a_row_and_only_to_batches_without_media(template):
    text = {'input_ids': [1, 2, 3], 'labels': [-100, 2, 3]}
    image = {'input_ids': [4, 5], 'labels': [-100, 5], 'pixel_values': torch.zeros(4, 8)}
    assert with_stand_in(template, [text]) == [text], 'not registered: a run that does not shard the weights'
    other = copy.copy(template)
    add_stand_in_rows(other)
    rows = with_stand_in(other, [text, text])
    assert rows[:2] == [text, text] and len(rows) == 3
    stand_in = rows[2]
    assert stand_in['pixel_values'] is not None and stand_in['image_grid_thw'].shape == (1, 3), 'one image'
    assert set(stand_in['labels']) == {-100}, 'it supervises nothing'
    assert with_stand_in(other, [text, image]) == [text, image], 'a batch with an image runs the tower already'
    assert with_stand_in(template, [text]) == [text], 'registering one template leaves the others alone'
