"""End to end: `src.sft.main` runs real ms-swift training on the tiny Qwen3-VL on CPU and writes real checkpoints."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

from src.config import load_and_validate
from src.datasets import RecordError
from src.sft import cli, main, parse_cli, write_resolved_config
from tests.conftest import SMOKE_DATA, image_record, write_jsonl

ALIGNER = ('model.visual.merger.', 'model.visual.deepstack_merger_list.')


def _state(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / 'model.safetensors'))


def _logits(model, tiny_model: Path) -> torch.Tensor:
    """Logits of the first smoke record through transformers' own processor and chat template."""
    processor = AutoProcessor.from_pretrained(tiny_model)
    record = json.loads((SMOKE_DATA / 'train.jsonl').read_text().splitlines()[0])
    messages = record['messages']
    text = processor.apply_chat_template(messages, tokenize=False)
    image = Image.open(SMOKE_DATA / messages[0]['content'][0]['image'])
    inputs = processor(text=[text], images=[image], return_tensors='pt')
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.slow
def test_lora_run_saves_an_adapter_that_changes_the_logits(make_config, tiny_model: Path, tmp_path: Path):
    main(make_config('lora.yaml', name='lora'))
    out = tmp_path / 'lora'
    ckpt = out / 'checkpoint-4'
    assert (ckpt / 'adapter_config.json').is_file() and (ckpt / 'adapter_model.safetensors').is_file()
    full_weights = [p for p in out.rglob('*') if p.name.startswith(('model.safetensors', 'pytorch_model'))]
    assert full_weights == [], 'a LoRA run must not save the full model'
    modes = {p.name: p.stat().st_mode & 0o777 for p in ckpt.iterdir() if p.is_file()}
    assert modes['adapter_model.safetensors'] == modes['adapter_config.json'], 'weights readable as the rest'

    adapter_keys = load_file(str(ckpt / 'adapter_model.safetensors')).keys()
    assert any('visual.merger' in k for k in adapter_keys), 'freeze_aligner: false puts LoRA on the aligner'
    assert not any('visual.blocks' in k for k in adapter_keys), 'freeze_vit: true keeps LoRA off the ViT'

    from peft import PeftModel
    base = Qwen3VLForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32)
    base_logits = _logits(base, tiny_model)
    tuned = PeftModel.from_pretrained(base, ckpt)
    assert not torch.allclose(_logits(tuned, tiny_model), base_logits)

    from swift.infer_engine import InferRequest, RequestConfig, TransformersEngine
    engine = TransformersEngine(str(tiny_model), adapters=[str(ckpt)], model_type='qwen3_vl', torch_dtype=torch.float32)
    request = InferRequest(messages=[{'role': 'user', 'content': '<image>Describe.'}],
                           images=[str(SMOKE_DATA / 'images' / '000.png')])
    [response] = engine.infer([request], RequestConfig(max_tokens=4, temperature=0))
    assert response.choices[0].message.content is not None, 'ms-swift inference loads the adapter back'

    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    assert len([r for r in rows if 'train/loss' in r]) == 4
    assert any('eval/loss' in r for r in rows)
    assert not any(k.startswith(('train/train/', 'eval/eval/')) for r in rows for k in r)
    assert list((out / 'runs').glob('events.out.tfevents.*'))
    resolved = load_and_validate(out / 'resolved_config.yaml')
    assert resolved.tuner['train_type'] == 'lora'


@pytest.mark.slow
def test_full_run_with_frozen_vit_trains_only_aligner_and_llm(make_config, tiny_model: Path, tmp_path: Path):
    main(make_config('full.yaml', name='full'))
    ckpt = tmp_path / 'full' / 'checkpoint-4'
    reloaded = Qwen3VLForConditionalGeneration.from_pretrained(ckpt, dtype=torch.float32)
    assert isinstance(reloaded, Qwen3VLForConditionalGeneration)
    before, after = _state(tiny_model), _state(ckpt)
    assert before.keys() == after.keys()
    vit = [k for k in before if k.startswith('model.visual.') and not k.startswith(ALIGNER)]
    aligner = [k for k in before if k.startswith(ALIGNER)]
    llm = [k for k in before if k.startswith('model.language_model.layers.')]
    assert vit and aligner and llm
    assert all(torch.equal(before[k], after[k]) for k in vit), 'freeze_vit: every ViT weight bit-identical'
    assert any(not torch.equal(before[k], after[k]) for k in aligner), 'freeze_aligner: false trains the aligner'
    assert any(not torch.equal(before[k], after[k]) for k in llm)


@pytest.mark.slow
def test_aligner_only_run_changes_only_the_mergers(make_config, tiny_model: Path, tmp_path: Path):
    from peft import PeftModel

    main(make_config('aligner_only.yaml', name='aligner'))
    base = Qwen3VLForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    merged = PeftModel.from_pretrained(base, tmp_path / 'aligner' / 'checkpoint-4').merge_and_unload()
    after = merged.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, 'the aligner trained'
    assert all(k.startswith(ALIGNER) for k in changed), sorted(changed)
    assert any(k.startswith('model.visual.deepstack_merger_list.') for k in changed)


@pytest.mark.slow
def test_stage2_starts_from_the_stage1_checkpoint(make_config, tiny_model: Path, tmp_path: Path):
    main(make_config('stage1_aligner.yaml', name='stage1'))
    stage1 = (tmp_path / 'stage1' / 'last').resolve()
    assert os.readlink(tmp_path / 'stage1' / 'last') == 'checkpoint-4', 'relative: it survives moving the folder'
    main(make_config('stage2_llm_lora.yaml', name='stage2', model={'model': str(tmp_path / 'stage1' / 'last')}))
    adapter = tmp_path / 'stage2' / 'checkpoint-4' / 'adapter_config.json'
    assert Path(json.loads(adapter.read_text())['base_model_name_or_path']).resolve() == stage1
    base, trained = _state(tiny_model), _state(stage1)
    merger = [k for k in base if k.startswith('model.visual.merger.')]
    assert any(not torch.equal(base[k], trained[k]) for k in merger), 'stage 1 trained the aligner'
    assert all(torch.equal(base[k], trained[k]) for k in base if k.startswith('model.language_model.'))


@pytest.mark.slow
def test_debug_prints_one_batch_and_trainable_parameters_then_exits(make_config, tmp_path: Path, capsys):
    main(make_config('lora.yaml', name='debug'), debug=True)
    printed = capsys.readouterr().out
    assert 'pixel_values' in printed and 'image_grid_thw' in printed
    assert 'sample 0:' in printed and '(ok)' in printed and 'MISMATCH' not in printed
    assert '"bbox_2d"' in printed, 'decoded label spans'
    assert 'vit                0' in printed, 'the frozen ViT has no trainable parameters'
    assert not (tmp_path / 'debug').exists() or not list((tmp_path / 'debug').glob('checkpoint-*'))


@pytest.mark.slow
def test_over_length_record_stops_before_training(make_config, tmp_path: Path, image_dir: Path):
    data = write_jsonl(tmp_path / 'long.jsonl', [image_record('images/a.png'),
                                                 image_record('images/a.png', 'car ' * 300)])
    config = make_config('lora.yaml', name='long', global_max_length=128,
                         custom={'train_jsonl': str(data), 'val_jsonl': None})
    with pytest.raises(RecordError, match=rf'^1 problem in 2 records \(the record check before step 1.*\n  '
                                          rf'{data}:2: encoded length \d+ tokens exceeds max_length 128'):
        main(config)
    assert not list((tmp_path / 'long').glob('checkpoint-*'))


@pytest.mark.slow
def test_missing_image_stops_before_training(make_config, tmp_path: Path, image_dir: Path):
    data = write_jsonl(tmp_path / 'bad.jsonl', [image_record('images/a.png'), image_record('images/gone.png')])
    config = make_config('lora.yaml', name='bad', custom={'train_jsonl': str(data), 'val_jsonl': None})
    with pytest.raises(RecordError, match=rf'1 of 2 records cannot train \(checked before loading the model.*\n  '
                                          rf'{data}:2: messages\[0\].content\[0\].image: image file not found'):
        main(config)


def test_unknown_flag_says_settings_live_in_yaml(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_cli(['--config', 'x.yaml', '--learning_rate', '1e-4'])
    assert exc.value.code == 2
    assert 'the command line takes only --config, --base_config and --debug' in capsys.readouterr().err


def test_an_unexpected_error_in_a_multi_process_run_exits_1_with_its_traceback(tmp_path: Path):
    """As Python would report it, and through the same exit as a finished run (no C++ teardown to abort it); the
    error file torchrun summarises last holds it too."""
    script = 'import src.sft as sft; sft.cli = lambda: 1 / 0; sft.run_as_script()'
    error_file = tmp_path / 'error.json'
    done = subprocess.run([sys.executable, '-c', script], cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, env={**os.environ, 'WORLD_SIZE': '2', 'TORCHELASTIC_ERROR_FILE': str(error_file)},
                          timeout=120)
    assert done.returncode == 1
    assert 'Traceback (most recent call last)' in done.stderr and 'ZeroDivisionError' in done.stderr
    assert json.loads(error_file.read_text())['message']['message'] == 'ZeroDivisionError: division by zero'


def test_cli_reports_config_errors_and_exits_2(tmp_path: Path, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('training:\n  packing: true\n')
    assert cli(['--config', str(bad)]) == 2
    assert 'packing was removed; batches are padded' in capsys.readouterr().err


@pytest.mark.slow
def test_training_on_converted_coco_data_with_augmentation(make_config, tmp_path: Path):
    from public_data import coco

    data = tmp_path / 'converted' / 'coco_train.jsonl'
    report = coco.convert_file(SMOKE_DATA / 'coco' / 'instances_train.json', SMOKE_DATA / 'images', data)
    assert report.written == 32
    main(make_config('dense_augment.yaml', name='coco_aug', custom={'train_jsonl': str(data)}))
    out = tmp_path / 'coco_aug'
    assert (out / 'checkpoint-4' / 'adapter_model.safetensors').is_file()
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    assert len([r for r in rows if 'train/loss' in r]) == 4


@pytest.mark.slow
def test_video_records_sample_frames_as_configured(make_config, tmp_path: Path):
    import subprocess
    import sys

    from tests.conftest import REPO, write_video

    write_video(tmp_path / 'clips' / 'square.mp4', frames=16, fps=8)
    record = {'messages': [{'role': 'user', 'content': [{'type': 'video', 'video': 'clips/square.mp4'},
                                                        {'type': 'text', 'text': 'What moves?'}]},
                           {'role': 'assistant', 'content': 'A square, to the right.'}]}
    data = write_jsonl(tmp_path / 'video.jsonl', [record, record])
    config = make_config('video.yaml', name='video', custom={'train_jsonl': str(data)})
    # ms-swift reads the sampling settings once per process, when the processor loads: use a fresh process.
    debug = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(config), '--debug'], cwd=REPO,
                           capture_output=True, text=True, check=True)
    # 2 s of video at fps 4 is 8 frames, capped at max_frames 4 = 2 temporal patches; 64x64 pixels = 4x4 patches.
    assert 'video_grid_thw (frames / temporal patch, h, w per video): [[2, 4, 4], [2, 4, 4]]' in debug.stdout
    main(config)
    assert (tmp_path / 'video' / 'checkpoint-2' / 'adapter_model.safetensors').is_file()


@pytest.mark.slow
def test_cli_reports_data_errors_without_a_traceback(make_config, tmp_path: Path, image_dir: Path, capsys):
    data = write_jsonl(tmp_path / 'bad.jsonl', [image_record('images/gone.png')])
    config = make_config('lora.yaml', name='cli_bad', custom={'train_jsonl': str(data), 'val_jsonl': None})
    assert cli(['--config', str(config)]) == 2
    err = capsys.readouterr().err
    assert 'error: 1 of 1 records cannot train (checked before loading the model' in err
    assert f'\n  {data}:1: messages[0].content[0].image: image file not found' in err
    assert 'Traceback' not in err, 'no traceback'


@pytest.mark.slow
def test_qwen2_5_vl_takes_the_same_path(make_config, tmp_path: Path):
    from peft import PeftModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    model_dir = tmp_path / 'tiny-qwen2.5-vl'  # missing: built by `custom.build_tiny_model` for model_type qwen2_5_vl
    main(make_config('qwen2_5_vl_lora.yaml', name='qwen25', model={'model': str(model_dir)}))
    ckpt = tmp_path / 'qwen25' / 'checkpoint-4'
    base = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    tuned = PeftModel.from_pretrained(base, ckpt)
    assert any('lora_B' in n and n.count('visual.merger') for n, _ in tuned.named_parameters())
    rows = [json.loads(line) for line in (tmp_path / 'qwen25' / 'logging.jsonl').read_text().splitlines()]
    assert len([r for r in rows if 'train/loss' in r]) == 4


@pytest.mark.slow
def test_two_runs_in_one_process_each_get_their_own_tensorboard_events(make_config, tmp_path: Path):
    for name in ('first', 'second'):
        main(make_config('lora.yaml', name=name, custom={'val_jsonl': None},
                         training={'max_steps': 1, 'save_steps': 1, 'eval_strategy': 'no'}))
        assert list((tmp_path / name / 'runs').glob('events.out.tfevents.*')), name


def test_a_coordinate_convention_against_the_model_is_a_warning_on_screen(tmp_path: Path):
    import subprocess
    import sys

    from tests.conftest import REPO, SMOKE_CONFIGS, write_yaml

    config = write_yaml(tmp_path / 'x.yaml', {'extends': str(SMOKE_CONFIGS / 'qwen2_5_vl_lora.yaml'),
                                              'custom': {'coord_format': 'norm1000', 'train_jsonl': 'missing.jsonl'}})
    done = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(config)], cwd=REPO, capture_output=True,
                          text=True)
    assert "warning: " in done.stderr and "'norm1000' is not the convention the base model was trained on " \
        "('model_pixel')" in done.stderr


@pytest.mark.slow
def test_the_playbooks_two_stage_recipe_starts_stage2_from_stage1s_weights(make_config, tiny_model: Path,
                                                                          tmp_path: Path):
    """Stage 1: LoRA on the aligner only (LLM and ViT frozen). Stage 2, as the playbook writes it, with
    `tuner.resume_from_checkpoint: <stage 1 checkpoint>`: a fresh LoRA on LLM + aligner from stage 1's weights, step
    0."""
    from peft import PeftModel

    steps = {'max_steps': 2, 'save_steps': 2, 'eval_strategy': 'no', 'learning_rate': 1.0e-2}
    main(make_config('lora.yaml', name='stage1', custom={'val_jsonl': None}, training=steps,
                     tuner={'freeze_llm': True, 'freeze_vit': True, 'freeze_aligner': False}))
    stage1 = tmp_path / 'stage1' / 'checkpoint-2'
    main(make_config('lora.yaml', name='stage2', custom={'val_jsonl': None}, training=steps,
                     tuner={'freeze_llm': False, 'freeze_vit': True, 'freeze_aligner': False,
                            'resume_from_checkpoint': str(stage1)}))
    stage2 = tmp_path / 'stage2' / 'checkpoint-2'
    rows = [json.loads(line) for line in (tmp_path / 'stage2' / 'logging.jsonl').read_text().splitlines()]
    assert rows[0]['train/global_step/max_steps'] == '1/2', 'stage 2 starts at step 0'

    adapter = load_file(str(stage2 / 'adapter_model.safetensors'))
    assert any('language_model' in k and 'lora_' in k for k in adapter), 'stage 2 trains LoRA on the LLM'
    merged = Path(str(stage1) + '-merged')
    assert Path(json.loads((stage2 / 'adapter_config.json').read_text())['base_model_name_or_path']) == merged
    base = Qwen3VLForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32).state_dict()
    after = PeftModel.from_pretrained(Qwen3VLForConditionalGeneration.from_pretrained(merged, dtype=torch.float32),
                                      stage2).merge_and_unload().state_dict()
    merger = [k for k in base if k.startswith('model.visual.merger.')]
    assert any(not torch.equal(base[k], after[k]) for k in merger), "stage 1's aligner change is kept"
    assert any(not torch.equal(base[k], after[k]) for k in base if k.startswith('model.language_model.layers.'))
    resolved = (tmp_path / 'stage2' / 'resolved_config.yaml').read_text()
    assert f'resume_from_checkpoint: {stage1}' in resolved and str(merged) not in resolved, 'reruns from the config'


def test_the_resolved_config_cannot_delete_the_run_it_describes(make_config, tmp_path: Path):
    """A run with `overwrite_output_dir: true` wrote it into resolved_config.yaml, and rerunning that file (as its
    header says) replaced the run: checkpoints, logs and the file itself. The resolved config leaves it out and says
    so; everything else is kept."""
    config = make_config('lora.yaml', training={'overwrite_output_dir': True, 'learning_rate': 3e-4})
    cfg = load_and_validate(config)
    assert cfg.settings.overwrite_output_dir
    path = write_resolved_config(cfg, str(tmp_path / 'run'))
    rerun = load_and_validate(path)
    assert not rerun.settings.overwrite_output_dir and rerun.training['learning_rate'] == 3e-4
    assert 'overwrite_output_dir: true left out' in path.read_text().splitlines()[1]
