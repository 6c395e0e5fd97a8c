"""The project's trainer callbacks on a real run: epoch hand-off to the dataset."""
from pathlib import Path

import pytest

from src.config import load_and_validate
from src.trainers.sft_pipeline import ProjectSft
from src.trainers.swift_args import to_sft_arguments

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def test_training_dataset_learns_the_epoch_so_augmentation_changes(make_config, tmp_path: Path):
    # 4 records, batch 2: 2 steps per epoch, so step 4 ends the second epoch.
    config = make_config('dense_augment.yaml', name='epochs', custom={'sample_limit': 4, 'val_jsonl': None},
                         training={'max_steps': 4, 'save_steps': 4, 'eval_strategy': 'no'})
    cfg = load_and_validate(config)
    pipeline = ProjectSft(to_sft_arguments(cfg), cfg)
    pipeline.main()
    dataset = pipeline.trainer.train_dataset
    assert dataset.epoch == 1
    assert dataset.augmenter is not None
