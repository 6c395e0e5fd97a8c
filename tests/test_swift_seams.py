"""The ms-swift internals the project patches exist at the pinned version; an upgrade that moves one fails here."""
import dataclasses
import importlib
import inspect
import json
from pathlib import Path

import pytest

from src.swift_seams import CLASS_ATTRIBUTES, OVERRIDDEN, PATCHED, prefixed, prefixed_logging_jsonl, template_limits


@pytest.mark.parametrize('module,names', sorted(PATCHED.items()))
def test_every_patched_name_exists(module: str, names: tuple[str, ...]):
    loaded = importlib.import_module(module)
    for name in names:
        assert hasattr(loaded, name), f'ms-swift moved {module}.{name}; update src/swift_seams.py'


@pytest.mark.parametrize('where,names', sorted(CLASS_ATTRIBUTES.items()))
def test_every_class_attribute_the_project_sets_exists(where: tuple[str, str], names: tuple[str, ...]):
    cls = getattr(importlib.import_module(where[0]), where[1])
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name in names:
        assert hasattr(cls, name) or name in fields, f'{where[1]}.{name} is gone; see src/swift_seams.py'


@pytest.mark.parametrize('where,params', sorted(OVERRIDDEN.items()))
def test_every_overridden_method_keeps_its_signature(where: tuple[str, str, str], params: tuple[str, ...]):
    module, cls, method = where
    function = getattr(getattr(importlib.import_module(module), cls), method, None)
    assert function is not None, f'ms-swift removed {cls}.{method}; see src/swift_seams.py for what overrides it'
    assert tuple(inspect.signature(function).parameters) == params, (
        f'ms-swift changed {cls}.{method}{inspect.signature(function)}; see src/swift_seams.py')


def test_the_project_overrides_what_it_lists():
    from src.trainers.gkd import ProjectGKDTrainer
    from src.trainers.grpo import ProjectGRPOTrainer
    from src.trainers.rlhf_pipeline import ProjectRlhf
    from src.trainers.sft_pipeline import ProjectSft
    from src.trainers.telemetry import TelemetrySeq2SeqTrainer

    for cls, method in ((ProjectSft, '_prepare_dataset'), (ProjectRlhf, '_get_trainer_kwargs'),
                        (TelemetrySeq2SeqTrainer, '_get_data_collator'), (ProjectGKDTrainer, 'compute_loss'),
                        (ProjectGKDTrainer, '_prepare_batch_inputs'),
                        (ProjectGKDTrainer, 'resample_encode_failed_inputs'),
                        (ProjectGRPOTrainer, 'resample_encode_failed_inputs'), (ProjectGRPOTrainer, '_engine_infer')):
        assert any(method in vars(base) for base in cls.__mro__ if base.__module__.startswith('src.')), (cls, method)


def test_template_limits_restore_the_template():
    class Template:
        truncation_strategy, max_length = 'raise', 512

    template = Template()
    with pytest.raises(RuntimeError), template_limits(template, truncation_strategy='left', max_length=None):
        assert (template.truncation_strategy, template.max_length) == ('left', None)
        raise RuntimeError
    assert (template.truncation_strategy, template.max_length) == ('raise', 512)


def test_the_jsonl_writer_is_still_called_with_path_and_row():
    from swift.utils import append_to_jsonl

    assert list(inspect.signature(append_to_jsonl).parameters)[:2] == ['fpath', 'obj']
    from swift.trainers import TrainerFactory
    assert 'causal_lm' in TrainerFactory.TRAINER_MAPPING and 'gkd' in TrainerFactory.TRAINER_MAPPING


def test_every_key_gets_one_prefix_and_the_summary_history_too():
    row = {'loss': 1.0, 'eval_loss': 2.0, 'train/token_acc': 0.5, 'global_step/max_steps': '4/4',
           'train_runtime': 1.2, 'log_history': [{'loss': 1.0, 'step': 1}, {'eval_loss': 2.0, 'step': 1}]}
    assert prefixed(row) == {
        'train/loss': 1.0, 'eval/loss': 2.0, 'train/token_acc': 0.5, 'train/global_step/max_steps': '4/4',
        'train/train_runtime': 1.2,
        'train/log_history': [{'train/loss': 1.0, 'train/step': 1}, {'eval/loss': 2.0, 'train/step': 1}]}
    assert prefixed(prefixed(row)) == prefixed(row)


def test_ms_swifts_writers_write_prefixed_rows_only_during_a_run(tmp_path: Path):
    patcher = importlib.import_module('swift.trainers.patcher')
    original = patcher.append_to_jsonl
    with prefixed_logging_jsonl():
        patcher.append_to_jsonl(str(tmp_path / 'logging.jsonl'), {'loss': 1.0, 'elapsed_time': '1s'})
        patcher.append_to_jsonl(str(tmp_path / 'other.jsonl'), {'loss': 1.0})
    assert patcher.append_to_jsonl is original
    assert json.loads((tmp_path / 'logging.jsonl').read_text()) == {'train/loss': 1.0, 'train/elapsed_time': '1s'}
    assert json.loads((tmp_path / 'other.jsonl').read_text()) == {'loss': 1.0}
