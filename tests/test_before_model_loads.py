"""Every record problem that needs no model stops the run before the model loads, for SFT, GKD, GRPO and
evaluation alike: the process ends with the record's file:line and has not even imported ms-swift."""
import base64
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SMOKE_DATA, write_jsonl

pytestmark = pytest.mark.slow

PROBE = '''
import sys
from {module} import cli
code = cli({argv!r})
loaded = sorted(m for m in sys.modules if m == 'swift' or m.startswith('swift.') or '.modeling_' in m)
print('imported:', loaded[:3])
sys.exit(code)
'''


def _run(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', PROBE.format(module=module, argv=argv)], cwd=REPO, text=True,
                          capture_output=True, timeout=300)


def _bad_records(folder: Path, mode: str) -> Path:
    good = {'images': [str(SMOKE_DATA / 'images' / '000.png')], 'width': 96, 'height': 64,
            'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 30, 40]}], 'summary': 'x'}
    (folder / 'pdf.bin').write_bytes(b'%PDF-1.4')
    return write_jsonl(folder / 'bad.jsonl', [
        good,
        {**good, 'images': [str(folder / 'gone.png')]},                                      # 2 missing file
        {**good, 'images': [str(folder / 'pdf.bin')]},                                       # 3 not an image
        {**good, 'images': [{'bytes': base64.b64encode(b'GIF89a?').decode()}]},              # 4 bytes no image
        {**good, 'objects': [{'desc': 'car', 'bbox_2d': [30, 2, 1, 40]}]},                   # 5 contract
    ] if mode == 'dense' else [good, {**good, 'summary': ''}, {**good, 'images': [str(folder / 'gone.png')]}])


def _assert_refused_before_loading(done: subprocess.CompletedProcess, data: Path, lines: list[int]):
    assert done.returncode == 2, done.stderr[-3000:]
    assert 'imported: []' in done.stdout, 'ms-swift (and the model code) must not even be imported'
    for line in lines:
        assert f'{data}:{line}: ' in done.stderr, (line, done.stderr[-3000:])


@pytest.mark.parametrize('parent', ['lora.yaml', 'gkd.yaml'])
def test_training_and_gkd(make_config, tiny_model: Path, tmp_path: Path, parent: str):
    data = _bad_records(tmp_path, 'dense')
    rlhf = {'rlhf': {'teacher_model': str(tiny_model)}} if parent == 'gkd.yaml' else {}
    config = make_config(parent, custom={'train_jsonl': str(data)}, **rlhf)
    done = _run('src.sft', ['--config', str(config)])
    _assert_refused_before_loading(done, data, [2, 3, 4, 5])
    assert '4 of 13 records cannot train (checked before loading the model' in done.stderr


def test_grpo(make_config, tmp_path: Path):
    data = _bad_records(tmp_path, 'summary')
    config = make_config('summary_grpo.yaml', custom={'train_jsonl': str(data)})
    _assert_refused_before_loading(_run('src.sft', ['--config', str(config)]), data, [2, 3])


def test_evaluation(make_config, tiny_model: Path, tmp_path: Path):
    data = _bad_records(tmp_path, 'dense')
    config = make_config('lora.yaml', custom={'val_jsonl': str(data)})
    done = _run('src.eval.run', ['--config', str(config), '--checkpoint', str(tiny_model)])
    assert done.returncode == 2 and 'imported: []' in done.stdout, done.stderr[-3000:]
    assert f'{data}:2: ' in done.stderr


def test_settings_for_geometry_records_with_only_chat_records_are_refused(make_config, tmp_path: Path):
    """`custom.mode`, prompts and augmentation shape geometry records; chat records train as written, so a config
    that sets them for chat records only would have them do nothing."""
    chat = write_jsonl(tmp_path / 'chat.jsonl', [{'messages': [
        {'role': 'user', 'content': [{'type': 'image', 'image': str(SMOKE_DATA / 'images' / '000.png')},
                                     {'type': 'text', 'text': 'What is there?'}]},
        {'role': 'assistant', 'content': 'A car.'}]}] * 2)
    config = make_config('dense_augment.yaml', custom={'train_jsonl': str(chat), 'val_jsonl': None,
                                                       'mode': 'summary', 'prompts': {'summary': 'Sum it up.'}})
    done = _run('src.sft', ['--config', str(config)])
    assert done.returncode == 2 and 'imported: []' in done.stdout, done.stderr[-3000:]
    assert (f'{config}: `custom.mode`, `custom.prompts`, `custom.augmentation`: shape(s) how geometry records (images '
            f'with `objects` or a `summary`) become conversations, and all 2 training records are chat records '
            f'(`messages`, the first at {chat}:1), which train as written') in done.stderr
