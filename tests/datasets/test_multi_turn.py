"""A multi-turn chat record learns from what the contract says: its last assistant answer by default, every
assistant answer with `template.loss_scale: default`; the template is built the way a run builds it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.config import load_and_validate
from src.datasets import DenseCaptionDataset
from src.trainers.swift_args import to_sft_arguments

RECORD = {'messages': [{'role': 'user', 'content': 'first question'}, {'role': 'assistant', 'content': 'alpha'},
                       {'role': 'user', 'content': 'second question'}, {'role': 'assistant', 'content': 'omega'}]}


@pytest.mark.parametrize('loss_scale,learned', [(None, ['omega']), ('default', ['alpha', 'omega'])])
def test_which_assistant_turns_carry_loss(make_config, tmp_path: Path, loss_scale, learned):
    from swift.model import get_processor

    data = tmp_path / 'chat.jsonl'
    data.write_text(json.dumps(RECORD) + '\n')
    template_section = {'template': {'loss_scale': loss_scale}} if loss_scale else {}
    cfg = load_and_validate(make_config('lora.yaml', custom={'train_jsonl': str(data), 'val_jsonl': None},
                                        **template_section))
    args = to_sft_arguments(cfg)
    template = args.get_template(get_processor(cfg.model['model'], model_type=cfg.model['model_type']))
    template.set_mode('train')
    labels = DenseCaptionDataset(data, template)[0]['labels']
    supervised = template.tokenizer.decode([t for t in labels if t != -100])
    assert [word for word in ('alpha', 'omega') if word in supervised] == learned
