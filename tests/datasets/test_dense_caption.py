"""DenseCaptionDataset on ms-swift's real qwen3_vl template and the tiny model's processor."""
from pathlib import Path

import pytest

from src.datasets import BuildSettings, DenseCaptionDataset, RecordError
from src.datasets.record_check import check_datasets
from tests.conftest import SMOKE_DATA, image_record, write_jsonl

ANSWER = '[{"desc": "car", "bbox_2d": [1, 2, 3, 4]}]'


def test_encodes_images_and_masks_labels_outside_the_assistant_turn(image_dir: Path, template):
    path = write_jsonl(image_dir.parent / 'train.jsonl', [image_record('images/a.png', ANSWER)])
    sample = DenseCaptionDataset(path, template)[0]
    # 64x64 with 16px patches and 2x2 merging: a 4x4 patch grid, 4 image tokens.
    assert sample['image_grid_thw'].tolist() == [[1, 4, 4]]
    assert sample['input_ids'].count(template.image_token_id) == 4
    labelled = [t for t in sample['labels'] if t != -100]
    assert template.tokenizer.decode(labelled) == ANSWER + '<|im_end|>\n'


def test_collated_batch_is_padded(image_dir: Path, template):
    path = write_jsonl(image_dir.parent / 'train.jsonl',
                       [image_record('images/a.png', 'x'), image_record('images/b.png', ANSWER)])
    dataset = DenseCaptionDataset(path, template)
    batch = template.data_collator([dataset[0], dataset[1]])
    assert batch['input_ids'].shape == batch['labels'].shape
    assert batch['image_grid_thw'].tolist() == [[1, 4, 4], [1, 4, 6]]
    assert batch['pixel_values'].shape[0] == 16 + 24
    assert int(batch['attention_mask'][0].sum()) < batch['input_ids'].shape[1]  # the short one is padded


def test_over_length_record_raises_with_file_line_and_length(image_dir: Path, template):
    long_answer = ' '.join(['car'] * 600)
    path = write_jsonl(image_dir.parent / 'train.jsonl',
                       [image_record('images/a.png'), '', image_record('images/a.png', long_answer)])
    dataset = DenseCaptionDataset(path, template)
    dataset[0]
    with pytest.raises(RecordError) as err:
        dataset[1]
    message = str(err.value)
    assert message.startswith(f'{path}:3: encoded length ')
    length = int(message.split('encoded length ')[1].split()[0])
    assert length > 512
    assert 'exceeds max_length 512' in message
    with pytest.raises(RecordError) as err:  # the check before step 1 says the same, without decoding the image
        check_datasets([dataset])
    assert f'\n  {path}:3: encoded length {length} tokens exceeds max_length 512' in str(err.value)


def test_sample_limit_keeps_the_first_records(image_dir: Path, template):
    path = write_jsonl(image_dir.parent / 'train.jsonl', [image_record('images/a.png')] * 5)
    assert len(DenseCaptionDataset(path, template, sample_limit=2)) == 2


def test_invalid_json_line_is_named(image_dir: Path, template):
    path = write_jsonl(image_dir.parent / 'train.jsonl', [image_record('images/a.png'), '{"messages": [}'])
    with pytest.raises(RecordError, match=f'^{path}:2: invalid JSON'):
        DenseCaptionDataset(path, template)[1]


def test_missing_jsonl(tmp_path: Path, template):
    with pytest.raises(RecordError, match='absent.jsonl: JSONL file not found'):
        DenseCaptionDataset(tmp_path / 'absent.jsonl', template)


def test_summary_prompt_variants_alternate_about_half_and_half_per_epoch():
    dataset = DenseCaptionDataset(SMOKE_DATA / 'summary.jsonl', None, seed=3,
                                  settings=BuildSettings('summary', summary_variants=('variant A', 'variant B')))

    def prompts(epoch: int) -> list[str]:
        dataset.epoch = epoch
        return [dataset.inputs(i)['messages'][0]['content'][1]['text'] for i in range(len(dataset))]

    drawn = [p for epoch in range(50) for p in prompts(epoch)]
    assert 0.45 < drawn.count('variant A') / len(drawn) < 0.55
    assert prompts(7) == prompts(7) and prompts(7) != prompts(8)
    answers = [dataset.inputs(i)['messages'][-1]['content'] for i in range(len(dataset))]
    assert answers[3] == '无关图片'  # an irrelevant image's label, exactly
