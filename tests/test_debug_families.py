"""`--debug` works for every config family and shows the batch its trainer sees: SFT, a fusion mixture, video, GKD
(prompt + reference answer) and GRPO (the prompts, with the reference answers its rewards compare against)."""
from pathlib import Path

import pytest

from src.sft import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('parent,expected', [
    ('lora.yaml', ['label spans (the text the loss is computed on):', '"desc"']),
    ('fusion.yaml', ['label spans', 'image tokens (input_ids == image_pad)']),
    ('video.yaml', ['video_grid_thw (frames / temporal patch, h, w per video)']),
    ('gkd.yaml', ['GKD: the batch is prompt + reference answer', 'label spans']),
    ('summary_grpo.yaml', ['GRPO: the batch is the prompts; 2 completions are sampled per prompt',
                           'reference answer 0:', 'none: no token of this batch carries loss']),
])
def test_debug_describes_the_batch_of_each_family(make_config, tiny_model: Path, parent: str, expected: list[str]):
    sections = {'rlhf': {'teacher_model': str(tiny_model)}} if parent == 'gkd.yaml' else {}
    report = main(make_config(parent, name=Path(parent).stem, **sections), debug=True)
    for text in expected:
        assert text in report, report
    assert report.splitlines()[-1].startswith('llm'), 'the trainable parameters close the report'
