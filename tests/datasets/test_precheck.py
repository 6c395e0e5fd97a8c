"""Settings that shape geometry records, checked against the records before the model loads: a setting that no
training record would use is refused, naming it (a prompt keyed by a name no record has was silently unused)."""
import subprocess
import sys
from pathlib import Path

import yaml

from src.config import load_and_validate
from src.datasets.precheck import check_run_records, ignored_settings_problems
from tests.conftest import REPO, SMOKE_DATA

GEOMETRY = SMOKE_DATA / 'coco_train.jsonl'  # geometry records with `dataset: coco`
CHAT = SMOKE_DATA / 'text_chat.jsonl'


def problems(tmp_path: Path, custom: dict) -> list[str]:
    config = tmp_path / 'run.yaml'
    config.write_text(yaml.safe_dump({'extends': str(REPO / 'configs' / 'smoke' / 'lora.yaml'),
                                      'custom': {'val_jsonl': None, **custom}}))
    cfg = load_and_validate(config)
    return ignored_settings_problems(cfg, check_run_records(cfg))


def test_a_dataset_prompt_that_matches_a_records_dataset_is_used(tmp_path):
    assert problems(tmp_path, {'train_jsonl': str(GEOMETRY), 'dataset_prompts': {'coco': {'dense': 'Find all.'}}}) == []


def test_a_dataset_prompt_keyed_by_a_name_no_record_has_is_refused_with_the_names_there_are(tmp_path):
    [problem] = problems(tmp_path, {'train_jsonl': str(GEOMETRY), 'dataset_prompts': {'cocoo': {'dense': 'Find.'}}})
    assert problem.endswith('`custom.dataset_prompts`: `cocoo` matches no geometry record (a prompt is looked up '
                            'by a record\'s `_fusion_source`, then its `dataset`; the names the records '
                            'have: coco), so it would never be used.')


def test_under_online_fusion_a_dataset_prompt_keyed_by_a_source_name_points_to_the_sources_own_prompts(tmp_path):
    """Online fusion's records carry no `_fusion_source`: a source's prompt belongs in the source."""
    fusion = {'sources': [{'name': 'roads', 'train_jsonl': str(GEOMETRY)}]}
    custom = {'train_jsonl': None, 'fusion_config': fusion, 'dataset_prompts': {'roads': {'dense': 'Roads.'}}}
    [problem] = problems(tmp_path, custom)
    assert '`roads` matches no geometry record' in problem
    assert problem.endswith("Under online fusion a source's prompt goes in the source itself (`prompts:` in "
                            'custom.fusion_config).')


def test_a_fusion_source_of_chat_records_with_its_own_prompts_or_augmentation_is_refused(tmp_path):
    fusion = {'sources': [{'name': 'boxes', 'train_jsonl': str(GEOMETRY)},
                          {'name': 'talk', 'train_jsonl': str(CHAT), 'prompts': {'dense': 'Talk.'},
                           'augmentation': {'ops': [{'name': 'hflip', 'prob': 0.5}]}}]}
    [problem] = problems(tmp_path, {'train_jsonl': None, 'fusion_config': fusion})
    assert problem.endswith(f'fusion source `talk`: `prompts`, `augmentation` shape(s) geometry records, and all '
                            f'records of {CHAT} are chat records, which train as written. Remove them from the source')
    fusion['sources'][1].pop('prompts'), fusion['sources'][1].pop('augmentation')
    assert problems(tmp_path, {'train_jsonl': None, 'fusion_config': fusion}) == []


def test_an_offline_mixture_is_matched_by_its_fusion_source_names(tmp_path):
    """`scripts/fuse_datasets.py` writes `_fusion_source` into each record: the documented key for an offline file."""
    mix = tmp_path / 'mix.yaml'
    mix.write_text(yaml.safe_dump({'sources': [{'name': 'roads', 'train_jsonl': str(GEOMETRY), 'count': 4}]}))
    mixed = tmp_path / 'mixed.jsonl'
    done = subprocess.run([sys.executable, 'scripts/fuse_datasets.py', '--config', str(mix), '--out', str(mixed)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert problems(tmp_path, {'train_jsonl': str(mixed), 'dataset_prompts': {'roads': {'dense': 'Roads.'},
                                                                                'coco': {'dense': 'Coco.'}}}) == []


def test_a_dataset_prompt_used_by_the_validation_records_only_is_used(tmp_path):
    """Validation records are prompted as training records are: a key only they carry is not unused."""
    val = tmp_path / 'val.jsonl'
    val.write_text(''.join(line.replace('"dataset": "coco"', '"dataset": "coco_val"') + '\n'
                           for line in GEOMETRY.read_text().splitlines()[:3]))
    val_images = tmp_path / 'images'
    val_images.symlink_to(GEOMETRY.parent / 'images')
    custom = {'train_jsonl': str(GEOMETRY), 'val_jsonl': str(val), 'dataset_prompts': {'coco_val': {'dense': 'V.'}}}
    assert problems(tmp_path, custom) == []
