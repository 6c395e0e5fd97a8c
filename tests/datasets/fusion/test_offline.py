"""The offline mixture: byte-identical across runs and worker counts, exact shares, and equal to online epoch 0."""
from __future__ import annotations

import collections
import json
import subprocess
import sys

import pytest

from src.config import ConfigError
from src.config.augmentation import parse_augmentation
from src.config.fusion import load_fusion_config
from src.datasets import BuildSettings, DenseCaptionDataset
from src.datasets.augmentation import augmenter_for
from src.datasets.fusion import FusionDataset
from src.datasets.fusion.offline import write_mixture
from tests.conftest import REPO, write_jsonl, write_yaml

SMOKE_MIX = REPO / 'configs' / 'dataset_mix' / 'smoke.yaml'


def test_same_config_same_bytes_for_1_and_2_workers(tmp_path, monkeypatch):
    monkeypatch.setattr('src.datasets.fusion.offline.CHUNK_SAMPLES', 7)  # several chunks per worker
    fusion = load_fusion_config(SMOKE_MIX, REPO)
    write_mixture(fusion, tmp_path / 'one.jsonl', workers=1, progress=False)
    write_mixture(fusion, tmp_path / 'again.jsonl', workers=1, progress=False)
    write_mixture(fusion, tmp_path / 'two.jsonl', workers=2, progress=False)
    one = (tmp_path / 'one.jsonl').read_bytes()
    assert one == (tmp_path / 'again.jsonl').read_bytes() == (tmp_path / 'two.jsonl').read_bytes()


def test_ratios_within_one_percent_on_100k_records(tmp_path):
    sizes = {'a': 60_000, 'b': 30_000, 'c': 10_000}
    sources = []
    for name, size in sizes.items():
        path = tmp_path / f'{name}.jsonl'
        path.write_text(''.join(f'{{"messages": [], "i": {i}}}\n' for i in range(size)))
        sources.append({'name': name, 'train_jsonl': str(path)})
    sources[0]['ratio'], sources[1]['ratio'], sources[2]['count'] = 0.25, 1.5, 12_345
    fusion = load_fusion_config(write_yaml(tmp_path / 'mix.yaml', {'seed': 11, 'sources': sources}), tmp_path)
    write_mixture(fusion, tmp_path / 'mix.jsonl', progress=False)
    observed = collections.Counter(json.loads(line)['_fusion_source'] for line in open(tmp_path / 'mix.jsonl'))
    requested = {'a': 15_000, 'b': 45_000, 'c': 12_345}
    for name, count in requested.items():
        assert abs(observed[name] - count) <= 0.01 * count, (name, observed[name], count)


def test_online_epoch_0_is_the_offline_file(tmp_path):
    fusion = load_fusion_config(SMOKE_MIX, REPO)
    mix = tmp_path / 'out' / 'mix.jsonl'
    write_mixture(fusion, mix, progress=False)
    # The offline file carries `_fusion_source`; the coco source's own prompt comes back through dataset_prompts.
    prompts = {'coco': fusion.sources[1].prompts}
    online = FusionDataset(fusion, None, BuildSettings())
    offline = DenseCaptionDataset(mix, None, settings=BuildSettings(dataset_prompts=prompts))
    assert len(online) == len(offline) == 56
    for i in range(len(online)):
        assert online.inputs(i) == offline.inputs(i), online.where(i)


def test_online_and_offline_encode_the_same_augmented_samples(tmp_path, template, image_dir):
    records = [{'images': [f'../images/{name}.png'], 'width': w, 'height': 64, 'dataset': 'shapes',
                'objects': [{'desc': 'box', 'bbox_2d': [4, 4, 40, 40]}]} for name, w in (('a', 64), ('b', 96))]
    write_jsonl(tmp_path / 'src' / 'shapes.jsonl', records * 3)
    fusion = load_fusion_config(write_yaml(tmp_path / 'mix.yaml', {'seed': 4, 'sources': [
        {'name': 'shapes', 'train_jsonl': 'src/shapes.jsonl', 'ratio': 2.0}]}), tmp_path)
    augmentation, _ = parse_augmentation(
        {'ops': [{'name': 'hflip', 'prob': 0.5}, {'name': 'rotate', 'prob': 1.0, 'max_deg': 15}]})
    write_mixture(fusion, tmp_path / 'mix.jsonl', progress=False)
    online = FusionDataset(fusion, template, BuildSettings(), augmentation)
    offline = DenseCaptionDataset(tmp_path / 'mix.jsonl', template, augmenter=augmenter_for(augmentation),
                                  seed=fusion.seed)
    for i in range(len(online)):
        a, b = online[i], offline[i]
        assert a['input_ids'] == b['input_ids'] and a['labels'] == b['labels']
        assert (a['pixel_values'] == b['pixel_values']).all()
    assert online[0]['_dataset_label'] == 'shapes'
    online.epoch = 1
    assert any(online[i]['input_ids'] != offline[i]['input_ids'] for i in range(len(online)))


def test_cli_prints_counts_and_reports_errors(tmp_path):
    out = tmp_path / 'mix.jsonl'
    done = subprocess.run([sys.executable, 'scripts/fuse_datasets.py', '--config', str(SMOKE_MIX), '--out', str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'wrote 56 records' in done.stdout and 'grounding  32' in done.stdout and 'chat       8' in done.stdout
    assert len(out.read_text().splitlines()) == 56
    bad = write_yaml(tmp_path / 'bad.yaml', {'sources': [{'name': 'a', 'train_jsonl': 'gone.jsonl', 'ratio': -1}]})
    done = subprocess.run([sys.executable, 'scripts/fuse_datasets.py', '--config', str(bad), '--out', str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and '`ratio` (samples per epoch / records): must be >= 0, got -1' in done.stderr


def test_a_line_that_is_not_utf8_is_an_error_with_its_line_not_a_traceback(tmp_path):
    source = tmp_path / 'latin1.jsonl'
    source.write_bytes(b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}\n'
                       + '{"messages": [{"role": "user", "content": "café"}]}\n'.encode('latin-1'))
    mix = write_yaml(tmp_path / 'mix.yaml', {'sources': [{'name': 'a', 'train_jsonl': str(source)}]})
    done = subprocess.run([sys.executable, 'scripts/fuse_datasets.py', '--config', str(mix), '--out',
                           str(tmp_path / 'out.jsonl')], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert f'{source}:2: not UTF-8 (byte 0xe9 at column' in done.stderr


def test_the_mixture_never_replaces_one_of_its_sources(tmp_path):
    source = write_jsonl(tmp_path / 'a.jsonl', [{'messages': [{'role': 'user', 'content': 'hi'},
                                                              {'role': 'assistant', 'content': 'ok'}]}])
    before = source.read_bytes()
    fusion = load_fusion_config(write_yaml(tmp_path / 'mix.yaml', {'sources': [{'name': 'a', 'train_jsonl':
                                                                                str(source)}]}), tmp_path)
    for out, reason in ((source, 'it is a source of the mixture; write the mixture somewhere else'),
                        (tmp_path / 'mix.yaml', 'the mixture is JSON Lines; name it *.jsonl')):
        with pytest.raises(ConfigError) as exc:
            write_mixture(fusion, out, progress=False)
        assert exc.value.problems == [f'--out {out}: {reason} (nothing was written)']
    assert source.read_bytes() == before and 'sources' in (tmp_path / 'mix.yaml').read_text()


def test_every_media_form_still_names_its_own_file_from_the_mixtures_folder(tmp_path, image_dir):
    """Relative media paths are rewritten for the output's folder in every form a record can hold them: `images`,
    `image` items, and OpenAI `image_url` items (an object with `url`, with or without `file://`, or a bare string).
    An `image_url` kept as it was resolved against the output's folder: a missing file, or there another image of
    the same name, trained without a word."""
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'images').symlink_to(image_dir)

    def chat(item):
        return {'messages': [{'role': 'user', 'content': [item, {'type': 'text', 'text': 'What?'}]},
                             {'role': 'assistant', 'content': 'A square.'}]}

    source = write_jsonl(tmp_path / 'src' / 'chat.jsonl', [
        chat({'type': 'image', 'image': 'images/a.png'}),
        chat({'type': 'image_url', 'image_url': {'url': 'images/a.png'}}),
        chat({'type': 'image_url', 'image_url': {'url': 'file://images/a.png'}}),
        chat({'type': 'image_url', 'image_url': 'images/a.png'}),
        {'messages': [{'role': 'user', 'content': '<image>What?'}, {'role': 'assistant', 'content': 'A square.'}],
         'images': ['images/a.png']}])
    decoy = tmp_path / 'out' / 'images'
    decoy.mkdir(parents=True)
    (decoy / 'a.png').write_bytes((image_dir / 'b.png').read_bytes())  # another picture of the same name
    fusion = load_fusion_config(write_yaml(tmp_path / 'mix.yaml', {'sources': [{'name': 'a', 'train_jsonl':
                                                                                str(source)}]}), tmp_path)
    out = tmp_path / 'out' / 'mix.jsonl'
    write_mixture(fusion, out, progress=False)
    dataset = DenseCaptionDataset(out, None)
    for idx in range(len(dataset)):
        inputs = dataset.inputs(idx)
        paths = inputs.get('images') or [i['image'] for i in inputs['messages'][0]['content'] if i['type'] == 'image']
        assert paths == [str(tmp_path / 'src' / 'images' / 'a.png')], (idx, paths)


def _chat_file(path, n):
    return write_jsonl(path, [{'messages': [{'role': 'user', 'content': f'hi {i}'},
                                            {'role': 'assistant', 'content': 'ok'}]} for i in range(n)])


def _fuse(tmp_path, sources, out=None):
    config = write_yaml(tmp_path / 'mix.yaml', {'sources': sources})
    return subprocess.run([sys.executable, 'scripts/fuse_datasets.py', '--config', str(config), '--out',
                           str(out or tmp_path / 'out' / 'mix.jsonl')], cwd=REPO, capture_output=True, text=True)


def test_a_source_whose_ratio_rounds_to_no_sample_is_refused_and_repeats_are_said(tmp_path):
    """A ratio of 0.01 of 3 records rounds to 0: the source was left out without a word (all of them: an empty
    file, exit 0, and online a run of 0 steps); a source drawn 333 times over said nothing either."""
    a, small = _chat_file(tmp_path / 'a.jsonl', 3), _chat_file(tmp_path / 'small.jsonl', 3)
    done = _fuse(tmp_path, [{'name': 'a', 'train_jsonl': str(a), 'ratio': 0.01},
                            {'name': 's', 'train_jsonl': str(small), 'ratio': 0.1}])
    assert done.returncode == 2 and not (tmp_path / 'out' / 'mix.jsonl').exists()
    assert ('source `a`: its ratio of 3 record(s) rounds to 0 samples per epoch, so it would not be in the mixture; '
            'raise the ratio (above 0.167; with `custom.sample_limit`, of the records it keeps), give a `count`, or '
            'remove the source') in done.stderr
    done = _fuse(tmp_path, [{'name': 'a', 'train_jsonl': str(a), 'ratio': 0},
                            {'name': 's', 'train_jsonl': str(small), 'count': 1000}])
    assert done.returncode == 0, done.stderr
    assert 'fusion: source `s`: 1,000 samples per epoch from 3 record(s), each about 333 times' in done.stderr


def test_source_names_that_would_overwrite_the_gkd_monitor_terms_are_refused(tmp_path):
    a = _chat_file(tmp_path / 'a.jsonl', 2)
    done = _fuse(tmp_path, [{'name': 'llm_kd', 'train_jsonl': str(a)}])
    assert done.returncode == 2
    assert "name `llm_kd` is reserved (its metrics would overwrite ms-swift's or the GKD monitor's `llm_kd_*`)" in (
        done.stderr)


def test_an_out_that_cannot_be_written_is_one_line(tmp_path):
    a = _chat_file(tmp_path / 'a.jsonl', 2)
    (tmp_path / 'afile').write_text('')
    done = _fuse(tmp_path, [{'name': 'a', 'train_jsonl': str(a)}], out=tmp_path / 'afile' / 'mix.jsonl')
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert f'error: --out {tmp_path / "afile" / "mix.jsonl"}: cannot write the mixture' in done.stderr
