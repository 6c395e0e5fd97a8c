"""The same global batch gives the same step, whether it is split as 1 x 4, 2 processes x 2, or 1 x 2 x accumulation 2,
and whichever engine shards it: DeepSpeed ZeRO-2, ZeRO-3 or FSDP2 over two processes.

Each run trains through `scripts/train.sh` (`NPROC_PER_NODE=2` for the two-process splits, gloo on CPU) and every key
of the first `logging.jsonl` rows (training and evaluation) is compared. LoRA dropout is off: its masks are drawn per
process and per micro-batch, so with it the gradients differ by design. The engine runs also measure what each rank
holds after step 1 (the numbers of parameter and optimizer-state elements of its shards, by a trainer callback from a
plugin file), and the LoRA ones are killed (SIGKILL) right after their step-1 checkpoint and resumed from it: step 2
must come out as in the uninterrupted one-process run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.testing.tiny_model import build_tiny_model
from src.trainers.engines import free_port
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SPLITS = {'1x4': (1, 4, 1), '2x2': (2, 2, 1), '1x2x2': (1, 2, 2)}  # processes, micro-batch, accumulation
ENGINES = {'zero2': {'deepspeed': {'enabled': True, 'config': 'zero2'}},
           'zero3': {'deepspeed': {'enabled': True, 'config': 'zero3'}},
           'fsdp2': {'training': {'fsdp': 'fsdp2'}}}
BATCH_SPLITS = tuple(SPLITS)
# The smoke mixture without its text-only chat source (text-only records beside images under sharded weights have
# their own test below); every split trains on this one.
IMAGE_MIX = {'custom': {'fusion_config': {'seed': 7, 'sources': [
    {'name': 'grounding', 'train_jsonl': str(REPO / 'public_data/smoke/train.jsonl'),
     'val_jsonl': str(REPO / 'public_data/smoke/val.jsonl'), 'ratio': 1.0, 'domain': 'target'},
    {'name': 'coco', 'train_jsonl': str(REPO / 'public_data/smoke/coco_train.jsonl'), 'ratio': 0.5,
     'domain': 'source', 'prompts': {'dense': 'Detect every COCO object; answer JSON [{"desc", "bbox_2d"}].'}}]}}}
SPLITS.update({engine: (2, 2, 1) for engine in ENGINES})
# A trainer callback in ms-swift's plugin form (`training.external_plugins`, `training.callbacks`): after step 1 each
# rank writes how many parameter and optimizer-state elements it holds; with KILL_AFTER_STEP_1_SAVE set, rank 0 kills
# its own process right after the step-1 checkpoint is written, as a power cut or an OOM killer would.
SHARDS_PLUGIN = """import json, os, signal
import torch
from swift.callbacks import callbacks_map
from swift.callbacks.base import TrainerCallback


def _local(tensor):
    if hasattr(tensor, 'ds_tensor'):  # a ZeRO-3 parameter: this rank's partition
        return tensor.ds_tensor.numel()
    return tensor.to_local().numel() if hasattr(tensor, 'to_local') else tensor.numel()  # FSDP2: a DTensor


def _inner(optimizer):
    while not hasattr(optimizer, 'state') or not isinstance(optimizer, torch.optim.Optimizer):
        optimizer = optimizer.optimizer
    return optimizer


class ShardSizes(TrainerCallback):
    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step != 1:
            return
        optimizer = _inner(self.trainer.optimizer)
        states = sum(_local(v) for s in optimizer.state.values() for k, v in s.items()
                     if torch.is_tensor(v) and k != 'step')
        sizes = {'params': sum(_local(p) for p in model.parameters()), 'optimizer': states}
        teacher = getattr(self.trainer, 'teacher_model', None)
        if teacher is not None:
            sizes['teacher'] = sum(_local(p) for p in teacher.parameters())
        rank = int(os.environ.get('RANK', '0'))
        with open(os.path.join(args.output_dir, f'shards_{rank}.json'), 'w') as f:
            json.dump(sizes, f)

    def on_save(self, args, state, control, **kwargs):
        if os.environ.get('KILL_AFTER_STEP_1_SAVE') and state.global_step == 1 and os.environ.get('RANK') == '0':
            os.kill(os.getpid(), signal.SIGKILL)


callbacks_map['shard_sizes'] = ShardSizes
"""
# Keys that measure the machine, not the math.
TIMING = ('runtime', 'per_second', 'speed', 'elapsed_time', 'remaining_time', 'memory', 'total_flos', 'step_time')
TOLERANCE = 1e-4


def _run(make_config, parent: str, name: str, split: str, kill: bool = False, **sections) -> list[dict]:
    processes, micro, accumulation = SPLITS[split]
    engine = ENGINES.get(split, {})
    training = {'per_device_train_batch_size': micro, 'gradient_accumulation_steps': accumulation,
                'per_device_eval_batch_size': 4 // processes,  # one global evaluation batch of 4 in every split
                'max_steps': 1, 'save_strategy': 'no', 'eval_strategy': 'steps', 'eval_steps': 1,
                'train_dataloader_shuffle': False, 'report_to': [], **engine.get('training', {}),
                **sections.pop('training', {})}
    plugin = make_config(parent, name=f'{name}_{split}').parent / 'shards_plugin.py'  # this test's folder
    plugin.write_text(SHARDS_PLUGIN)
    training['external_plugins'] = training.get('external_plugins', []) + [str(plugin)]
    training['callbacks'] = ['shard_sizes']
    config = make_config(parent, name=f'{name}_{split}', training=training,
                         tuner={'lora_dropout': 0.0, **sections.pop('tuner', {})},
                         **{k: v for k, v in engine.items() if k != 'training'}, **sections)
    out = Path(str(config).removesuffix('.yaml'))
    done = _launch(config, processes, {'KILL_AFTER_STEP_1_SAVE': '1'} if kill else {})
    if kill:
        assert done.returncode != 0 and (out / 'checkpoint-1').is_dir(), 'killed right after its step-1 save'
        assert not (out / 'checkpoint-2').exists()
        resumed = make_config(parent, name=f'{name}_{split}', training={
            **training, 'resume_from_checkpoint': str(out / 'checkpoint-1')},
            tuner={'lora_dropout': 0.0}, **{k: v for k, v in engine.items() if k != 'training'}, **sections)
        done = _launch(resumed, processes, {})
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]


def _launch(config: Path, processes: int, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    env.update(PYTHON=sys.executable, NPROC_PER_NODE=str(processes), MASTER_PORT=str(free_port()),
               **extra_env)
    return subprocess.run([str(REPO / 'scripts' / 'train.sh'), str(config)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _shards(folder: Path) -> list[dict[str, int]]:
    """What each rank of an engine run held after step 1: parameter and optimizer-state elements."""
    return [json.loads((folder / f'shards_{rank}.json').read_text()) for rank in range(2)]


def _assert_partitioned(tmp_path: Path, name: str, engines=tuple(ENGINES)) -> dict[str, list[dict[str, int]]]:
    """Each rank of an engine holds about half of what a rank of plain data parallelism (2x2) holds: the optimizer
    state under every engine, the parameters (and a GKD teacher's) too under ZeRO-3 and FSDP2. Returns the sizes."""
    whole = _shards(tmp_path / f'{name}_2x2')[0]
    sizes = {'2x2': _shards(tmp_path / f'{name}_2x2')}
    for engine in engines:
        sizes[engine] = _shards(tmp_path / f'{name}_{engine}')
        for rank in sizes[engine]:
            assert rank['optimizer'] == pytest.approx(whole['optimizer'] / 2, rel=0.15), (engine, rank, whole)
            sharded = 0.5 if engine != 'zero2' else 1.0
            for key in ('params', 'teacher'):
                if key in whole:
                    assert rank[key] == pytest.approx(whole[key] * sharded, rel=0.15), (engine, key, rank, whole)
    return sizes


def _table(runs: dict[str, list[dict]], step: int = 1) -> dict[str, dict[str, float]]:
    """The math keys (numbers, timing aside) of each split's training and evaluation rows of ``step``."""
    table = {}
    for split, rows in runs.items():
        train = [r for r in rows if 'train/loss' in r][step - 1]
        evaluations = [r for r in rows if 'eval/loss' in r]
        evaluation = evaluations[step - 1] if len(evaluations) >= step else {}
        table[split] = {k: v for k, v in {**train, **evaluation}.items()
                        if isinstance(v, (int, float)) and not any(t in k for t in TIMING)}
    return table


def _assert_same(table: dict[str, dict[str, float]], splits: tuple[str, ...]) -> None:
    reference = table[splits[0]]
    for split in splits[1:]:
        assert table[split].keys() == reference.keys(), split
        for key, value in table[split].items():
            assert value == pytest.approx(reference[key], rel=TOLERANCE, abs=1e-7), f'{split}: {key}'


def _compare_past_the_schedule(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Step 1 of runs of different lengths: every math key agrees but the learning rate, which follows each run's
    own schedule (its warmup is a share of `max_steps`)."""
    table = _table(runs)
    for values in table.values():
        values.pop('train/learning_rate', None)
    _assert_same(table, tuple(runs))
    return table


def _compare(runs: dict[str, list[dict]], step: int = 1) -> dict[str, dict[str, float]]:
    """Every math key of the ``step`` rows agrees across all the splits run; returns them."""
    table = _table(runs, step)
    _assert_same(table, tuple(runs))
    return table


def test_sft_lora_with_per_dataset_telemetry_and_eval(make_config, tmp_path: Path):
    """Two steps. The engine runs are killed right after their step-1 checkpoint and resumed from it, so their step 2
    is a resumed one; every split must agree on both steps."""
    runs = {}
    for split in SPLITS:
        saves = {'save_strategy': 'steps', 'save_steps': 1} if split in ENGINES else {}
        runs[split] = _run(make_config, 'fusion.yaml', 'lora', split, kill=split in ENGINES,
                           training={'max_steps': 2, **saves}, **IMAGE_MIX)
    table = _compare(runs)
    reference = table['1x4']
    assert {'train/loss', 'train/grad_norm', 'train/token_acc', 'eval/loss', 'eval/token_acc'} <= reference.keys()
    assert any(k.endswith('_loss') and k not in ('train/loss', 'eval/loss') for k in reference), 'per-source keys'
    second = _compare(runs, step=2)
    sizes = _assert_partitioned(tmp_path, 'lora')
    print(json.dumps({'step 1': table, 'step 2': second, 'elements per rank': sizes}, indent=1))
    # ZeRO-3's adapter opens in ms-swift's own inference, on the run's validation records, offline
    checkpoint = tmp_path / 'lora_zero3' / 'checkpoint-2'
    done = subprocess.run([str(Path(sys.executable).parent / 'swift'), 'infer', '--adapters', str(checkpoint),
                           '--load_data_args', 'true', '--max_new_tokens', '4', '--temperature', '0',
                           '--result_path', str(tmp_path / 'zero3_infer.jsonl')], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len((tmp_path / 'zero3_infer.jsonl').read_text().splitlines()) == 8, 'one answer per validation record'
    # ZeRO-3's optimizer state is split two ways: one process refuses to resume it, before the model loads and
    # before the run's log is touched
    log = (tmp_path / 'lora_zero3' / 'logging.jsonl').read_text()
    alone = make_config('fusion.yaml', name='lora_zero3', tuner={'lora_dropout': 0.0}, **ENGINES['zero3'],
                        training={'resume_from_checkpoint': str(checkpoint), 'max_steps': 3}, **IMAGE_MIX)
    refused = _launch(alone, 1, {})
    assert refused.returncode == 2 and ('was saved by 2 processes under DeepSpeed (`deepspeed.enabled: true`), whose '
                                        'optimizer state is split 2 ways; this run has 1') in refused.stderr
    assert (tmp_path / 'lora_zero3' / 'logging.jsonl').read_text() == log


def test_sft_full(make_config, tmp_path: Path):
    """Full fine-tuning under every engine: the same step 1 and the same step 2, the state partitioned, and the
    final checkpoint a consolidated model that transformers loads and generates from (ZeRO-3's and FSDP2's too)."""
    runs = {split: _run(make_config, 'full.yaml', 'full', split, custom={'val_jsonl': None},
                        training={'eval_strategy': 'no', 'max_steps': 2,
                                  **({'save_strategy': 'steps', 'save_steps': 2} if split in ENGINES else {})})
            for split in SPLITS}
    table = {'step 1': _compare(runs), 'step 2': _compare(runs, step=2)}
    table['elements per rank'] = _assert_partitioned(tmp_path, 'full')
    print(json.dumps(table, indent=1))
    from safetensors import safe_open
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    def keys(engine: str) -> set[str]:
        with safe_open(tmp_path / f'full_{engine}' / 'checkpoint-2' / 'model.safetensors', 'pt') as f:
            return set(f.keys())

    assert keys('fsdp2') == keys('zero3') and 'lm_head.weight' not in keys('fsdp2'), 'the tied head is not a copy'
    for engine in ('zero3', 'fsdp2'):
        checkpoint = tmp_path / f'full_{engine}' / 'checkpoint-2'
        assert (checkpoint / 'model.safetensors').is_file(), engine
        model = AutoModelForImageTextToText.from_pretrained(checkpoint)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        prompt = tokenizer('List every object.', return_tensors='pt')
        generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
        assert generated.shape[1] == prompt['input_ids'].shape[1] + 4, engine


def test_gkd_terms_their_sum_per_dataset_telemetry_and_eval(make_config, tmp_path: Path):
    """GKD on the fusion mixture with visual KD and the monitor: every logged key of step 1 (training and evaluation,
    per source too) agrees across the splits; the terms add up to the loss, and evaluation's loss is its sft_loss.

    SGD, not AdamW: the evaluation after the step measures how far the student moved from the teacher, and AdamW's
    first update is about lr x sign(gradient), so gradients that are zero up to rounding move weights by a whole
    step in either direction; with SGD the move is proportional to the (split-invariant) gradient. The teacher is
    another random initialisation of the tiny architecture, so that every KD term is far from zero."""
    teacher = build_tiny_model(tmp_path / 'teacher', seed=1)
    gkd = {'rlhf': {'rlhf_type': 'gkd', 'teacher_model': str(teacher), 'beta': 0.5, 'sft_alpha': 1.0,
                    'lmbda': 0.0, 'seq_kd': False},
           'custom': {'trainer_variant': 'gkd_monitor', **IMAGE_MIX['custom'],
                      'visual_kd': {'aligner': {'enabled': True, 'weight': 1.0, 'distance': 'mse'},
                                    'deepstack': {'enabled': True, 'weight': 0.5, 'distance': 'cosine'}}}}
    runs = {split: _run(make_config, 'fusion.yaml', 'gkd', split,
                        training={'optim': 'sgd', 'max_steps': 2 if split == 'zero3' else 1}, **gkd)
            for split in (*BATCH_SPLITS, 'zero3')}
    assert len([r for r in runs['zero3'] if 'train/loss' in r]) == 2, 'ZeRO-3 trains on past its first step'
    table = _compare_past_the_schedule(runs)
    _assert_partitioned(tmp_path, 'gkd', engines=('zero3', ))  # the teacher is partitioned too
    for values in table.values():
        assert min(abs(values[f'{mode}/{k}']) for mode in ('train', 'eval')
                   for k in ('llm_kd_loss', 'vision_kd_loss')) > 1e-3
        for mode in ('train', 'eval'):
            parts = sum(values[f'{mode}/{k}'] for k in ('sft_loss', 'llm_kd_loss', 'vision_kd_loss'))
            assert values[f'{mode}/loss'] == pytest.approx(
                parts if mode == 'train' else values['eval/sft_loss'], rel=1e-6), mode
    reference = table['1x4']
    assert {'eval/llm_kd_loss', 'eval/vision_kd_loss', 'train/token_acc', 'eval/token_acc'} <= reference.keys()
    assert any(k.endswith('_loss') and k.split('/')[1] not in ('loss', 'sft_loss', 'llm_kd_loss', 'vision_kd_loss')
               for k in reference), 'per-source keys'
    print(json.dumps(table, indent=1))


# A reward in ms-swift's plugin form whose value differs between random completions (the summary rewards score a
# random model's output 0 everywhere, which would leave every advantage, and the gradient, at 0).
PLUGIN = """from swift.rewards import ORM, orms


class DistinctChars(ORM):
    def __call__(self, completions, **kwargs):
        return [len(set(c)) / max(len(c), 1) for c in completions]


orms['distinct_chars'] = DistinctChars
"""


def test_grpo_with_seeded_rollouts(make_config, tmp_path: Path):
    """GRPO samples the same completions in every data-parallel split when each is seeded by its position in the
    global generation batch (`rlhf.seeded_rollouts`); ms-swift's default `loss_type: grpo` weighs the global batch's
    sequences equally, so rewards and the gradient agree. ZeRO-3 (generation with the weights gathered from both
    ranks) agrees too: under DeepSpeed ms-swift's Qwen3-VL forward dropped the images of a generation
    (`swift_seams.generation_sees_images`), and its completions differed."""
    plugin = tmp_path / 'plugin.py'
    plugin.write_text(PLUGIN)
    rlhf = {'seeded_rollouts': True, 'generation_batch_size': 4, 'reward_funcs': ['distinct_chars', 'summary_format'],
            'reward_weights': [1.0, 1.0]}
    runs = {split: _run(make_config, 'summary_grpo.yaml', 'grpo', split, rlhf=rlhf,
                        training={'external_plugins': [str(plugin)], 'max_steps': 2 if split == 'zero3' else 1})
            for split in (*BATCH_SPLITS, 'zero3')}
    assert len([r for r in runs['zero3'] if 'train/loss' in r]) == 2, 'ZeRO-3 trains on past its first step'
    table = _compare_past_the_schedule(runs)
    reference = table['1x4']
    assert reference['train/grad_norm'] > 1e-4 and reference['train/reward_std'] > 0
    assert {'train/rewards/DistinctChars/mean', 'train/completions/mean_length'} <= reference.keys()
    print(json.dumps(table, indent=1))


def test_text_only_beside_image_records_trains_under_zero3_and_fsdp2_as_in_one_process(make_config, tmp_path: Path):
    """Each process's micro-batch of one step holds only text records (rank 1) or only images (rank 0): with the
    weights sharded, the text-only process runs the vision tower on a stand-in image (src/trainers/stand_in_image.py),
    so the processes gather and reduce the same weights in the same order. Full fine-tuning, so the aligner's
    gradients are reduced too. The launches have a timeout: a hang fails the test. Step 1 equals the one-process
    step on the same global batch."""
    from tests.conftest import SMOKE_DATA

    images = [json.loads(line) for line in (SMOKE_DATA / 'train.jsonl').read_text().splitlines()][:2]
    for record in images:
        for item in record['messages'][0]['content']:
            if item['type'] == 'image':
                item['image'] = str(SMOKE_DATA / item['image'])
    texts = [json.loads(line) for line in (SMOKE_DATA / 'text_chat.jsonl').read_text().splitlines()][:2]
    data = tmp_path / 'uneven.jsonl'  # image, text, image, text: rank 0 takes the images, rank 1 the texts
    data.write_text(''.join(json.dumps(r) + '\n' for pair in zip(images, texts) for r in pair))
    runs = {split: _run(make_config, 'full.yaml', 'uneven', split, custom={'train_jsonl': str(data), 'val_jsonl': None})
            for split in ('1x4', 'zero3', 'fsdp2')}
    table = _compare(runs)
    assert table['1x4']['train/grad_norm'] > 1e-4
    print(json.dumps(table, indent=1))


def test_micro_batches_of_images_and_videos_train_under_deepspeed_as_in_one_process(make_config, tmp_path: Path):
    """Each process's micro-batch holds an image record and a video record. ms-swift's DeepSpeed forward runs the
    vision tower once on the image rows and the video rows concatenated, so both must have the processor's width
    (the project's one-frame uint8 image rows stopped the step: "Sizes of tensors must match"). Step 1 under ZeRO-2
    equals the one-process step on the same global batch. ZeRO-3 refuses the mix before the model loads: a step
    where one process held only images and the other only videos stopped in the backward pass."""
    from tests.conftest import SMOKE_DATA

    def absolute(record: dict) -> dict:
        for message in record['messages']:
            for item in message['content'] if isinstance(message['content'], list) else []:
                for kind in ('image', 'video'):
                    if item['type'] == kind:
                        item[kind] = str(SMOKE_DATA / item[kind])
        return record

    def first(name: str) -> list[dict]:
        return [absolute(json.loads(line)) for line in (SMOKE_DATA / name).read_text().splitlines()][:2]

    data = tmp_path / 'images_and_videos.jsonl'  # image, image, video, video: each rank takes one of each
    data.write_text(''.join(json.dumps(r) + '\n' for r in first('train.jsonl') + first('video.jsonl')))
    runs = {split: _run(make_config, 'video.yaml', 'image_video', split, training={'eval_strategy': 'no'},
                        custom={'train_jsonl': str(data)}) for split in ('1x4', 'zero2')}
    print(json.dumps(_compare(runs), indent=1))
    zero3 = make_config('video.yaml', name='image_video_zero3', custom={'train_jsonl': str(data)}, **ENGINES['zero3'])
    refused = _launch(zero3, 2, {})
    assert refused.returncode != 0, refused.stderr
    assert 'the training records differ in their media: of 4, 2 have a video (the first at ' in refused.stderr
    assert 'traceback : error: ' in refused.stderr.split('Root Cause')[-1], 'the reason closes torchrun\'s summary'
    assert not (tmp_path / 'image_video_zero3').exists(), 'refused before the run starts'


def test_lora_dropout_under_fsdp2_gives_ddps_step(make_config, tmp_path: Path):
    """Dropout masks are drawn per process the same way under DDP and FSDP2; FSDP2's activation checkpointing must
    recompute each layer with its forward's masks (``swift_seams.fsdp2_recompute_keeps_rng``), or the gradient is
    another forward's: the same loss with another gradient norm."""
    runs = {split: _run(make_config, 'lora.yaml', 'dropout', split, tuner={'lora_dropout': 0.05},
                        custom={'val_jsonl': None}, training={'eval_strategy': 'no'}) for split in ('2x2', 'fsdp2')}
    table = _compare(runs)
    assert table['2x2']['train/grad_norm'] > 1e-4
