"""End to end: `python -m src.eval` on the tiny Qwen3-VL (adapter and full checkpoints), saved answers re-scored
exactly, and the gallery page opened in headless Chromium."""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from src.datasets.contract import RecordError
from src.eval.errors import EvalError
from src.eval.run import cli, main
from tests.conftest import SMOKE_DATA, image_record, write_jsonl

IMAGES = SMOKE_DATA / 'images'
# (dataset, image, width, height, objects); every geometry kind appears.
VAL = [
    ('coco', '000.png', 96, 64, [{'desc': 'car', 'bbox_2d': [0, 0, 48, 32]},
                                 {'desc': 'lane', 'line': [0, 60, 96, 60]}]),
    ('coco', '001.png', 64, 64, [{'desc': 'dog', 'bbox_2d': [0, 0, 32, 32]},
                                 {'desc': 'roof', 'poly': [32, 32, 64, 32, 64, 64, 32, 64]}]),
    ('roads', '002.png', 64, 96, [{'desc': 'car', 'bbox_2d': [0, 0, 32, 48]}]),
    ('roads', '004.png', 96, 64, [{'desc': 'car', 'bbox_2d': [48, 32, 96, 64]}]),
]
# The answers a model could give, in norm1000: perfect, cut off, the wrong class, nothing.
ANSWERS = [
    '[{"desc": "car", "bbox_2d": [0, 0, 500, 500]}, {"desc": "lane", "line": [0, 938, 1000, 938]}]',
    '[{"desc": "dog", "bbox_2d": [0, 0,',
    '[{"desc": "dog", "bbox_2d": [0, 0, 500, 500]}]',
    '[]',
]


@pytest.fixture
def val_config(make_config, tmp_path: Path) -> tuple[Path, Path]:
    """A dense LoRA config whose `custom.val_jsonl` is VAL; returns (config, val file)."""
    val = write_jsonl(tmp_path / 'val.jsonl', [
        {'images': [str(IMAGES / image)], 'width': w, 'height': h, 'objects': objects, 'dataset': dataset}
        for dataset, image, w, h, objects in VAL])
    return make_config('lora.yaml', custom={'val_jsonl': str(val)}), val


@pytest.fixture(scope='module')
def adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real PEFT LoRA adapter for the tiny model, saved as training saves one."""
    from peft import LoraConfig, get_peft_model
    from swift.model import get_model_processor

    model, _ = get_model_processor(str(tiny_model), model_type='qwen3_vl', torch_dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=['q_proj', 'v_proj'], init_lora_weights=False))
    folder = tmp_path_factory.mktemp('adapter') / 'checkpoint-1'
    peft_model.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_eval_of_an_adapter_generates_scores_and_draws(val_config, adapter: Path, tmp_path: Path, capsys):
    config, val = val_config
    out = tmp_path / 'eval'
    report = main(config, adapter, visualize=3, output=out, batch_size=3, max_new_tokens=12)

    predictions = [json.loads(line) for line in (out / 'predictions.jsonl').read_text().splitlines()]
    assert [p['where'] for p in predictions] == [f'{val}:{i}' for i in range(1, 5)]
    assert all(p['finish_reason'] in ('stop', 'length') for p in predictions)
    # The tiny model is random: no answer parses, so every object is a miss, and nothing crashes.
    overall = report['overall']
    assert overall['parse_failure_rate'] == 1.0 and overall['gt'] == 6 and overall['recall@0.5'] == 0.0
    assert set(report['per_dataset']) == {'coco', 'roads'}
    assert set(overall['per_class']) == {'car', 'lane', 'dog', 'roof'}
    assert json.loads((out / 'eval_report.json').read_text())['checkpoint'] == str(adapter.resolve())
    assert sorted(p.name for p in (out / 'pictures').glob('*.png')) == ['0001.png', '0002.png', '0003.png']
    seen = open_in_chromium(out / 'pictures', tmp_path / 'gallery.png')
    assert seen['console'] == [] and seen['failed'] == [] and seen['loaded'] == [True] * 3
    printed = capsys.readouterr().out
    assert 'f1@0.5' in printed and 'roof' in printed and 'eval_report.json' in printed


@pytest.mark.slow
def test_eval_of_a_full_checkpoint_through_the_command_line(val_config, tiny_model: Path, tmp_path: Path, capsys):
    config, _ = val_config
    out = tmp_path / 'full_eval'
    code = cli(['--config', str(config), '--checkpoint', str(tiny_model), '--limit', '2', '--output', str(out),
                '--max-new-tokens', '8'])
    assert code == 0
    report = json.loads((out / 'eval_report.json').read_text())
    assert report['overall']['samples'] == 2 and report['overall']['gt'] == 4
    assert not (out / 'pictures').exists()


def _write_answers(folder: Path, val: Path, answers: list[str]) -> Path:
    return write_jsonl(folder / 'answers.jsonl', [{'where': f'{val}:{i}', 'prediction': text, 'finish_reason': 'stop'}
                                                  for i, text in enumerate(answers, 1)])


def test_saved_answers_are_scored_exactly(val_config, tmp_path: Path):
    config, val = val_config
    report = main(config, tmp_path, output=tmp_path / 'out', predictions=_write_answers(tmp_path, val, ANSWERS))
    overall = report['overall']
    assert overall['parse_failure_rate'] == 0.25
    assert (overall['gt'], overall['pred'], overall['tp@0.5']) == (6, 3, 2)
    assert overall['precision@0.5'] == pytest.approx(2 / 3) and overall['recall@0.5'] == pytest.approx(1 / 3)
    assert overall['f1@[.5:.95]'] == pytest.approx(4 / 9)  # the perfect pair matches at every threshold
    assert overall['desc_exact'] == pytest.approx(2 / 3)  # car, lane right; dog for car wrong
    coco, roads = report['per_dataset']['coco'], report['per_dataset']['roads']
    assert (coco['precision@0.5'], coco['recall@0.5']) == (1.0, 0.5)
    assert (roads['precision@0.5'], roads['recall@0.5'], roads['parse_failure_rate']) == (0.0, 0.0, 0.0)
    roof = dict(overall['per_class']['roof'])
    assert roof.pop('AP@[.5:.95]') is None  # a polygon class: box AP does not score it
    assert roof == pytest.approx({
        'gt': 1, 'pred': 0, 'tp@0.5': 0, 'precision@0.5': 0.0, 'recall@0.5': 0.0, 'f1@0.5': 0.0,
        'precision@[.5:.95]': 0.0, 'recall@[.5:.95]': 0.0, 'f1@[.5:.95]': 0.0})
    assert [s['score'] for s in report['samples']] == [1.0, 0.0, 0.0, 0.0]
    assert [s['parsed'] for s in report['samples']] == [True, False, True, True]


def _chromium() -> str:
    path = shutil.which('chromium')
    if path is None:
        if os.environ.get('CI'):
            pytest.fail('chromium is not installed; scripts/install.sh installs Debian\'s chromium package')
        pytest.skip('needs Debian\'s chromium (apt-get install chromium)')
    return path


def open_in_chromium(folder: Path, screenshot: Path) -> dict:
    """Serve ``folder`` on localhost, open its index.html in headless Chromium, take a full-page screenshot; returns
    the console errors / warnings, failed requests, the score column and whether each picture loaded."""
    from playwright.sync_api import sync_playwright

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen = {'console': [], 'failed': []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_chromium(), args=[
                '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                '--disable-component-update', '--disable-sync'])
            page = browser.new_page()
            page.on('console', lambda m: seen['console'].append(m.text) if m.type in ('error', 'warning') else None)
            page.on('pageerror', lambda e: seen['console'].append(str(e)))
            page.on('requestfailed', lambda r: seen['failed'].append(r.url))
            response = page.goto(f'http://127.0.0.1:{server.server_address[1]}/index.html')
            page.wait_for_load_state('networkidle')
            seen['status'] = response.status
            seen['scores'] = page.locator('tbody tr td:nth-child(2)').all_inner_texts()
            seen['loaded'] = page.evaluate('Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)')
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    return seen


@pytest.mark.slow
def test_the_gallery_lists_the_worst_first_and_opens_in_chromium_without_console_errors(val_config, tmp_path: Path):
    config, val = val_config
    out = tmp_path / 'out'
    answers = [ANSWERS[0], ANSWERS[0], ANSWERS[1], '[{"desc": "car", "bbox_2d": [0, 0, 500, 500]}]']
    main(config, tmp_path, visualize=4, output=out, predictions=_write_answers(tmp_path, val, answers))
    assert len(list((out / 'pictures').glob('*.png'))) == 4
    main(config, tmp_path, visualize=2, output=out, predictions=_write_answers(tmp_path, val, answers))
    assert sorted(p.name for p in (out / 'pictures').glob('*.png')) == ['0001.png', '0002.png'], 'no stale pictures'
    main(config, tmp_path, visualize=4, output=out, predictions=_write_answers(tmp_path, val, answers))

    seen = open_in_chromium(out / 'pictures', tmp_path / 'gallery.png')
    assert seen['status'] == 200 and seen['console'] == [] and seen['failed'] == []
    assert seen['scores'] == sorted(seen['scores']) and seen['scores'][0] == '0.000' and seen['scores'][-1] == '1.000'
    assert seen['loaded'] == [True] * 4
    assert (tmp_path / 'gallery.png').stat().st_size > 10_000


def test_a_fusion_run_is_evaluated_on_its_eval_sources_with_their_names(make_config, tmp_path: Path):
    config = make_config('fusion.yaml', custom={'fusion_config': {
        'sources': [{'name': 'grounding', 'train_jsonl': str(SMOKE_DATA / 'train.jsonl'),
                     'val_jsonl': str(SMOKE_DATA / 'val.jsonl')}],
        'eval_sources': ['grounding']}})
    val = SMOKE_DATA / 'val.jsonl'
    answers = [r['messages'][-1]['content'] for r in map(json.loads, val.read_text().splitlines())]
    report = main(config, tmp_path, output=tmp_path / 'out', predictions=_write_answers(tmp_path, val, answers))
    assert list(report['per_dataset']) == ['grounding']
    assert report['overall']['f1@[.5:.95]'] == 1.0  # the references read back as the ground truth


def test_errors_name_what_to_fix(val_config, make_config, tiny_model: Path, tmp_path: Path):
    config, val = val_config
    with pytest.raises(EvalError, match='not a checkpoint; expected a folder with adapter_config.json'):
        main(config, tmp_path)
    with pytest.raises(EvalError, match='folder not found'):
        main(config, tmp_path / 'missing')
    with pytest.raises(EvalError, match=r'is a model folder, not one a training run wrote \(no trainer_state.json or '
                                        r'args.json\): pass --output DIR, so that the results are not written into '
                                        r'the model\'s own folder'):
        main(config, tmp_path, predictions=_write_answers(tmp_path, val, ANSWERS))
    assert not (tmp_path / 'eval').exists()
    (tmp_path / 'args.json').write_text('{}')  # a folder a training run wrote: results go to its eval/
    with pytest.raises(EvalError, match='--font nope.ttf: not a TrueType / OpenType font file PIL can open'):
        main(config, tmp_path, predictions=_write_answers(tmp_path, val, ANSWERS), font='nope.ttf')
    with pytest.raises(EvalError, match=r'2 answers for 4 records'):
        main(config, tmp_path, predictions=_write_answers(tmp_path, val, ANSWERS[:2]))
    shuffled = write_jsonl(tmp_path / 'shuffled.jsonl',
                           [{'where': f'{val}:{i}', 'prediction': '[]'} for i in (2, 1, 3, 4)])
    with pytest.raises(EvalError, match=r'shuffled.jsonl:1: expected the answer to .*val.jsonl:1'):
        main(config, tmp_path, predictions=shuffled)

    for name, text, expected in (('hello.jsonl', 'hello\n', r'hello.jsonl:1: not a JSON line'),
                                 ('list.jsonl', '[1, 2]\n', r'list.jsonl:1: expected an object with `where` and '
                                                           r'`prediction`, got list')):
        (tmp_path / name).write_text(text)
        with pytest.raises(EvalError, match=expected):
            main(config, tmp_path, predictions=tmp_path / name)

    no_val = make_config('summary.yaml', name='no_val')
    with pytest.raises(RecordError, match='evaluation reads `custom.val_jsonl`'):
        main(no_val, tiny_model)
    chat = write_jsonl(tmp_path / 'chat.jsonl', [image_record(str(IMAGES / '000.png'), answer='a red car')])
    with pytest.raises(RecordError, match=r'chat.jsonl:1: the assistant answer is not a dense answer'):
        main(make_config('lora.yaml', name='chat', custom={'val_jsonl': str(chat)}), tiny_model)
    flat = write_jsonl(tmp_path / 'flat.jsonl', [image_record(str(IMAGES / '000.png'),
                                                          answer='[{"desc": "car", "bbox_2d": [100, 100, 100, 500]}]')])
    with pytest.raises(RecordError, match=r"flat.jsonl:1: the reference box of 'car' has no area in the answer"):
        main(make_config('lora.yaml', name='flat', custom={'val_jsonl': str(flat)}), tiny_model)
    bad_summary = write_jsonl(tmp_path / 'summary.jsonl', [
        {'images': [str(IMAGES / '000.png')], 'width': 96, 'height': 64, 'summary': 'two cars'}])
    with pytest.raises(RecordError, match=r'summary.jsonl:1: `summary` does not follow the summary format'):
        main(make_config('summary.yaml', name='bad_summary', custom={'val_jsonl': str(bad_summary)}), tiny_model)


def test_cli_reports_errors_without_a_traceback_and_rejects_bad_numbers(val_config, tmp_path: Path, capsys):
    config, _ = val_config
    assert cli(['--config', str(config), '--checkpoint', str(tmp_path)]) == 2
    assert 'error: --checkpoint' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(['--config', str(config), '--checkpoint', str(tmp_path), '--limit', '0'])
    assert '--limit must be a positive integer' in capsys.readouterr().err


def test_summary_answers_are_scored_with_every_summary_reward(make_config, tmp_path: Path):
    config = make_config('summary.yaml', custom={'val_jsonl': str(SMOKE_DATA / 'summary.jsonl')})
    records = [json.loads(line) for line in (SMOKE_DATA / 'summary.jsonl').read_text().splitlines()]
    answers = [r['summary'] for r in records]
    answers[0] = 'not a summary'
    saved = write_jsonl(tmp_path / 'answers.jsonl', [
        {'where': f'{SMOKE_DATA / "summary.jsonl"}:{i}', 'prediction': a} for i, a in enumerate(answers, 1)])
    report = main(config, tmp_path, output=tmp_path / 'out', predictions=saved, visualize=2)
    n = len(records)
    overall = report['overall']
    assert overall['samples'] == n and overall['parse_failure_rate'] == pytest.approx(1 / n)
    assert overall['summary_content'] == pytest.approx((n - 1) / n)
    assert overall['summary_format'] == pytest.approx((n - 1) / n)
    assert report['samples'][0]['score'] == 0.0
    assert len(list((tmp_path / 'out' / 'pictures').glob('*.png'))) == 2


def test_a_record_training_would_refuse_for_its_length_or_shape_stops_before_the_model_loads(make_config, adapter,
                                                                                            tmp_path: Path):
    """A 1x300 image (aspect ratio past qwen-vl-utils' 200) and an image whose prompt outgrows `max_length` passed
    the eval check, then stopped the generation midway with the template's traceback, losing the answers so far."""
    from PIL import Image

    Image.new('RGB', (1, 300)).save(tmp_path / 'thin.png')
    Image.new('RGB', (800, 800)).save(tmp_path / 'big.png')
    good = {'images': [str(IMAGES / '000.png')], 'width': 96, 'height': 64,
            'objects': [{'desc': 'car', 'bbox_2d': [0, 0, 48, 32]}]}
    val = write_jsonl(tmp_path / 'val.jsonl', [
        good, {'images': [str(tmp_path / 'thin.png')], 'width': 1, 'height': 300,
               'objects': [{'desc': 'pole', 'bbox_2d': [0, 0, 1, 300]}]},
        {'images': [str(tmp_path / 'big.png')], 'width': 800, 'height': 800,
         'objects': [{'desc': 'car', 'bbox_2d': [0, 0, 48, 32]}]}])
    config = make_config('lora.yaml', custom={'val_jsonl': str(val)}, template={'max_pixels': 1003520})
    with pytest.raises(RecordError) as err:
        main(config, adapter, output=tmp_path / 'out')
    message = str(err.value)
    assert f'{val}:2: ' in message and f'{val}:3: ' in message and f'{val}:1: ' not in message
    assert not (tmp_path / 'out' / 'predictions.jsonl').exists()


@pytest.mark.slow
def test_answers_are_handed_over_a_few_batches_at_a_time_in_order(val_config, adapter: Path, monkeypatch):
    """The answers reach predictions.jsonl as they come, so a run stopped midway keeps all but the last chunk."""
    from src.config import load_and_validate
    from src.eval import generate as generation
    from src.eval.samples import load_samples

    config, val = val_config
    cfg = load_and_validate(config)
    samples = load_samples(cfg)
    monkeypatch.setattr(generation, 'CHUNK_BATCHES', 1)
    chunks = []
    answers = generation.generate(generation.load_engine(cfg, adapter, batch_size=3), samples, 4,
                                  keep=lambda chunk, done: chunks.append(([s.where for s in chunk], len(done))))
    assert chunks == [([f'{val}:{i}' for i in (1, 2, 3)], 3), ([f'{val}:4'], 1)] and len(answers) == 4
