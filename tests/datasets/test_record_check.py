"""The record check counts encoded lengths without decoding pixels, and gives the template's real encode's figure.

Records of every kind the toolkit reads (geometry and summary records, augmented or not; chat records single- and
multi-turn, several images, ms-swift's ``<image>`` rows and grounding objects, OpenAI's image_url items, videos),
images of many sizes and modes, both model families, with and without ``template.max_pixels``: the check's length
must equal ``template.encode``'s for every one. Then what the check promises around it: truncated images caught
without a full decode, the same report from forked workers, the cache hit and every input that invalidates it.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.config.augmentation import parse_augmentation
from src.datasets import BuildSettings, DenseCaptionDataset
from src.datasets.augmentation import augmenter_for
from src.datasets.check_cache import CACHE_ENV
from src.datasets.record_check import check_datasets, check_file, record_verdict
from src.swift_seams import template_limits
from src.testing.tiny_model import build_tiny_model
from tests.conftest import write_jsonl, write_video

SIZES = [(64, 64), (96, 64), (33, 517), (517, 33), (640, 480), (480, 640), (1023, 767), (200, 1200), (31, 31),
         (1500, 1000), (257, 129), (800, 64)]
MODES = ['RGB', 'L', 'RGBA', 'P', 'CMYK']
AUGMENTATION = {'ops': [{'name': 'hflip', 'prob': 0.5}, {'name': 'rotate', 'prob': 0.5, 'max_deg': 15},
                        {'name': 'crop', 'prob': 0.7, 'min_scale': 0.5}, {'name': 'scale', 'prob': 0.5,
                                                                          'min_factor': 0.6, 'max_factor': 1.4}]}


def _images(folder: Path) -> list[tuple[str, int, int]]:
    """Images of every size in SIZES, in turn in every mode (JPEG for CMYK, PNG otherwise)."""
    folder.mkdir(exist_ok=True)
    out = []
    for i, (w, h) in enumerate(SIZES):
        mode = MODES[i % len(MODES)]
        name = f'{i:02d}.{"jpg" if mode == "CMYK" else "png"}'
        Image.new(mode, (w, h)).save(folder / name)
        out.append((f'images/{name}', w, h))
    return out


def _geometry(rng: random.Random, image: tuple[str, int, int]) -> dict:
    path, w, h = image
    objects = []
    for k in range(rng.randint(1, 12)):
        x1, y1 = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
        x2, y2 = rng.uniform(x1 + 1, w), rng.uniform(y1 + 1, h)
        kind = k % 3
        if kind == 0:
            desc = rng.choice(['car', '汽车', 'person', 'a dog on the left'])
            objects.append({'desc': desc, 'bbox_2d': [x1, y1, x2, y2]})
        elif kind == 1:
            objects.append({'desc': 'part', 'poly': [x1, y1, x2, y1, x2, y2, x1, y2]})
        else:
            objects.append({'desc': 'lane', 'line': [x1, y1, x2, y2]})
    summary = f'dataset: test\nobjects: {len(objects)}\n{json.dumps({"car": len(objects)})}'
    return {'images': [path], 'width': w, 'height': h, 'objects': objects, 'summary': summary}


def _chat(rng: random.Random, images: list[tuple[str, int, int]], video: str) -> dict:
    kind = rng.randrange(6)
    pick = [rng.choice(images)[0] for _ in range(3)]
    if kind == 0:  # two turns, an image in each user turn
        return {'messages': [
            {'role': 'user', 'content': [{'type': 'image', 'image': pick[0]}, {'type': 'text', 'text': 'What is it?'}]},
            {'role': 'assistant', 'content': 'A square.' * rng.randint(1, 20)},
            {'role': 'user', 'content': [{'type': 'image', 'image': pick[1]}, {'type': 'text', 'text': 'And this?'}]},
            {'role': 'assistant', 'content': 'Another one, 二.'}]}
    if kind == 1:  # ms-swift's own row: placeholders and `images`
        return {'messages': [{'role': 'system', 'content': 'You count.'},
                             {'role': 'user', 'content': '<image><image>How many images?'},
                             {'role': 'assistant', 'content': 'two' * rng.randint(1, 30)}], 'images': pick[:2]}
    if kind == 2:  # ms-swift grounding row
        path = pick[0]
        return {'messages': [{'role': 'user', 'content': '<image>Where is the <ref-object>?'},
                             {'role': 'assistant', 'content': '<bbox>'}],
                'images': [path], 'objects': {'ref': ['car'], 'bbox': [[1, 2, 20, 30]], 'bbox_type': 'real'}}
    if kind == 3:  # OpenAI's image_url item
        return {'messages': [{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': pick[0]}},
                                                          {'type': 'text', 'text': 'Describe.'}]},
                             {'role': 'assistant', 'content': 'It is dark.' * rng.randint(1, 10)}]}
    if kind == 4:  # a video
        return {'messages': [{'role': 'user', 'content': [{'type': 'video', 'video': video},
                                                          {'type': 'text', 'text': 'What moves?'}]},
                             {'role': 'assistant', 'content': 'A white square, left to right.'}]}
    return {'messages': [{'role': 'user', 'content': 'No image here, just text.'},  # text only
                         {'role': 'assistant', 'content': 'Fine.' * rng.randint(1, 40)}]}


def _records(folder: Path, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    images = _images(folder / 'images')
    write_video(folder / 'clip.mp4')
    records = [_chat(rng, images, 'clip.mp4') if i % 4 == 3 else _geometry(rng, images[i % len(images)])
               for i in range(count)]
    return write_jsonl(folder / 'records.jsonl', records)


def _template(model_dir: Path, family: str, max_pixels: int | None):
    from swift.model import get_processor
    from swift.template import get_template

    processor = get_processor(str(model_dir), model_type=family)
    processor.image_processor.size = {'longest_edge': 1 << 24, 'shortest_edge': 4096}  # the real models' limits
    template = get_template(processor, max_length=None, truncation_strategy='raise', max_pixels=max_pixels,
                            template_type=family)
    template.set_mode('train')
    return template


@pytest.fixture(scope='module')
def qwen2_5_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp('models') / 'tiny-qwen2.5-vl', arch='qwen2_5_vl')


@pytest.mark.parametrize('family,mode,augment,max_pixels', [
    ('qwen3_vl', 'dense', False, None),
    ('qwen3_vl', 'summary', True, 65536),
    ('qwen3_vl', 'dense', True, None),
    pytest.param('qwen2_5_vl', 'dense', False, 100352, marks=pytest.mark.slow),
    pytest.param('qwen2_5_vl', 'summary', True, None, marks=pytest.mark.slow),
])
def test_counted_lengths_equal_the_templates_encode(tmp_path: Path, tiny_model: Path, request: pytest.FixtureRequest,
                                                    family: str, mode: str, augment: bool, max_pixels: int | None):
    model = tiny_model if family == 'qwen3_vl' else request.getfixturevalue('qwen2_5_vl')
    template = _template(model, family, max_pixels)
    path = _records(tmp_path, 64, seed=len(mode) + augment)
    augmenter = augmenter_for(parse_augmentation(AUGMENTATION)[0]) if augment else None
    dataset = DenseCaptionDataset(path, template, settings=BuildSettings(mode=mode), augmenter=augmenter, seed=3)
    from src.datasets.record_check import LengthCounter

    counter = LengthCounter.for_template(template)
    for idx in range(len(dataset)):
        verdict = record_verdict(dataset, idx, counter, deep=False)
        assert verdict.problems == [], (dataset.where(idx), verdict.problems)
        with template_limits(template, max_length=None):
            real = dataset.encode(idx, draw=idx)['length']
        assert verdict.length == real, f'{dataset.where(idx)}: counted {verdict.length}, encoded {real}'


def test_over_length_records_get_the_encoded_length_in_the_message(image_dir: Path, template):
    path = write_jsonl(image_dir.parent / 'train.jsonl', [
        {'images': ['images/a.png'], 'width': 64, 'height': 64,
         'objects': [{'desc': f'car {i}', 'bbox_2d': [1, 2, 30, 40]} for i in range(n)]} for n in (1, 40, 2, 60)])
    dataset = DenseCaptionDataset(path, template)
    lengths = []
    for idx in (1, 3):
        with template_limits(template, max_length=None):
            lengths.append(dataset.encode(idx, draw=idx)['length'])
    with pytest.raises(Exception) as err:
        check_datasets([dataset])
    message = str(err.value)
    assert message.startswith('2 problems in 4 records')
    for line, length in zip((2, 4), lengths):
        assert f'{path}:{line}: encoded length {length} tokens exceeds max_length 512' in message


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def test_cut_images_are_found_without_decoding_every_image(tmp_path: Path):
    folder = tmp_path / 'images'
    folder.mkdir()
    noise = Image.effect_noise((128, 96), 60).convert('RGB')
    for name in ('whole.jpg', 'cut.jpg', 'padded.jpg', 'whole.png', 'cut.png'):
        noise.save(folder / name)
    _truncate(folder / 'cut.jpg', 0.6)
    _truncate(folder / 'cut.png', 0.6)
    with open(folder / 'padded.jpg', 'ab') as f:  # bytes after the end marker, as some cameras write: still complete
        f.write(b'\0' * 4096)
    records = [{'images': [f'images/{n}'], 'width': 128, 'height': 96,
                'objects': [{'desc': 'x', 'bbox_2d': [1, 1, 9, 9]}]}
               for n in ('whole.jpg', 'cut.jpg', 'padded.jpg', 'whole.png', 'cut.png')]
    report = check_file(DenseCaptionDataset(write_jsonl(tmp_path / 'r.jsonl', records), None), workers=0)
    lines = report.lines()
    assert [line.split(':')[1] for line in lines] == ['2', '5'], lines
    assert all('does not decode as an image' in line for line in lines)


def test_workers_give_the_same_report(tmp_path: Path, template, monkeypatch):
    records = [{'images': ['images/a.png'], 'width': 64, 'height': 64,
                'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 30, 40]}] * (1 + i % 5)} for i in range(700)]
    records[10]['width'] = 65
    records[650]['objects'] = [{'desc': 'car', 'bbox_2d': [1, 2, 30, 40]}] * 200
    folder = tmp_path / 'images'
    folder.mkdir()
    Image.new('RGB', (64, 64)).save(folder / 'a.png')
    dataset = DenseCaptionDataset(write_jsonl(tmp_path / 'r.jsonl', records), template)
    monkeypatch.setenv(CACHE_ENV, 'off')  # both reports computed
    before = torch.random.get_rng_state()
    serial = check_file(dataset, workers=0)
    parallel = check_file(dataset, workers=2)
    # The check runs before the adapter's weights are drawn: it must not move the global generator.
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not parallel.cached
    assert (parallel.problems, parallel.longest) == (serial.problems, serial.longest)
    assert [idx for idx, _ in serial.problems] == [10, 650]


def test_a_rerun_reads_the_cached_verdict_and_every_input_invalidates_it(tmp_path: Path, template, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'cache'))
    folder = tmp_path / 'images'
    folder.mkdir()
    Image.new('RGB', (64, 64)).save(folder / 'a.png')
    record = {'images': ['images/a.png'], 'width': 64, 'height': 64,
              'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 3, 4]}]}
    path = write_jsonl(tmp_path / 'r.jsonl', [record] * 3)

    def check(**kwargs):
        return check_file(DenseCaptionDataset(path, template, **kwargs), workers=0)

    first = check()
    assert not first.cached and first.problems == []
    again = check()
    assert again.cached and again.longest == first.longest
    assert not check(settings=BuildSettings(prompts={'dense': 'Another prompt.'})).cached
    with template_limits(template, max_length=600):
        assert not check().cached
    assert not check_file(DenseCaptionDataset(path, template), deep=True, workers=0).cached
    assert check().cached
    Image.new('RGB', (64, 48)).save(folder / 'a.png')  # an image replaced: its size no longer matches the records
    changed = check()
    assert not changed.cached and len(changed.problems) == 3
    path.write_text(path.read_text().replace('"car"', '"bus"'))
    Image.new('RGB', (64, 64)).save(folder / 'a.png')
    assert not check().cached


def test_the_records_with_a_video_an_image_and_the_chat_ones_are_counted_and_cached(tmp_path: Path, template,
                                                                                       monkeypatch):
    """Which records have a video and which an image decides whether a run with sharded weights can take them (see
    ``engines.mixed_modalities_problem``): the report lists them, and the cached verdict keeps the lists."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'cache'))
    Image.new('RGB', (64, 64)).save(tmp_path / 'a.png')
    video = {'messages': [{'role': 'user', 'content': [
        {'type': 'video', 'video': str(write_video(tmp_path / 'clip.mp4'))}, {'type': 'text', 'text': 'What moves?'}]},
        {'role': 'assistant', 'content': 'A square.'}]}
    image = {'images': ['a.png'], 'width': 64, 'height': 64, 'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 3, 4]}]}
    both = {'messages': [{'role': 'user', 'content': [
        {'type': 'image', 'image': str(tmp_path / 'a.png')}, *video['messages'][0]['content']]},
        video['messages'][1]]}
    path = write_jsonl(tmp_path / 'r.jsonl', [image, video, image, both])
    first = check_file(DenseCaptionDataset(path, template), workers=0)
    again = check_file(DenseCaptionDataset(path, template), workers=0)
    assert (first.videos, first.images, first.chat, first.cached) == ([1, 3], [0, 2, 3], [1, 3], False)
    assert (again.videos, again.images, again.chat, again.cached) == ([1, 3], [0, 2, 3], [1, 3], True)
    assert first.problems == [] and first.text_only == []


def test_the_cache_sits_beside_the_data_or_is_skipped_with_a_note(tmp_path: Path, template, monkeypatch, caplog):
    monkeypatch.delenv(CACHE_ENV)
    folder = tmp_path / 'data'
    (folder / 'images').mkdir(parents=True)
    Image.new('RGB', (64, 64)).save(folder / 'images' / 'a.png')
    path = write_jsonl(folder / 'r.jsonl', [{'images': ['images/a.png'], 'width': 64, 'height': 64,
                                             'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 3, 4]}]}])
    assert not check_file(DenseCaptionDataset(path, template), workers=0).cached
    assert check_file(DenseCaptionDataset(path, template), workers=0).cached, 'kept in .toolkit_check beside the data'
    assert (folder / '.toolkit_check').is_dir()
    blocked = tmp_path / 'a_file'
    blocked.write_text('')
    monkeypatch.setenv(CACHE_ENV, str(blocked / 'cache'))  # a folder that cannot be created
    with caplog.at_level('WARNING'):
        report = check_file(DenseCaptionDataset(path, template), workers=0)
    assert report.problems == [] and not report.cached
    assert f'set {CACHE_ENV} to a writable folder' in caplog.text


def _rank(rank: int, path: str, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=2)
    try:
        report = check_file(DenseCaptionDataset(path, None), workers=0)
        Path(out, f'{rank}.json').write_text(json.dumps([report.lines(), report.text_only, report.videos,
                                                         report.images, report.cached]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_share_the_records_and_stop_with_the_same_report(tmp_path: Path, monkeypatch):
    import torch.multiprocessing as mp

    monkeypatch.setenv(CACHE_ENV, 'off')
    folder = tmp_path / 'images'
    folder.mkdir()
    Image.new('RGB', (64, 64)).save(folder / 'a.png')
    good = {'images': ['images/a.png'], 'width': 64, 'height': 64,
            'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 3, 4]}]}
    records = [good] * 9 + [{**good, 'width': 70}, good, {**good, 'images': ['images/missing.png']}]
    records[4] = {'messages': [{'role': 'user', 'content': 'text only'}, {'role': 'assistant', 'content': 'yes'}]}
    records[7] = {'messages': [{'role': 'user', 'content': [
        {'type': 'video', 'video': str(write_video(tmp_path / 'clip.mp4'))}, {'type': 'text', 'text': 'What moves?'}]},
        {'role': 'assistant', 'content': 'A square.'}]}
    path = write_jsonl(tmp_path / 'r.jsonl', records)  # the bad records sit at indices 9 (rank 1) and 11 (rank 1)
    mp.spawn(_rank, args=(str(path), f'file://{tmp_path / "rendezvous"}', str(tmp_path)), nprocs=2)
    reports = [json.loads((tmp_path / f'{rank}.json').read_text()) for rank in (0, 1)]
    assert reports[0] == reports[1]
    lines, text_only, videos, images, cached = reports[0]
    assert [line.split(':')[1] for line in lines] == ['10', '12']
    assert text_only == [4] and videos == [7] and images == [0, 1, 2, 3, 5, 6, 8, 10] and not cached


def test_a_media_item_without_its_value_key_is_a_record_problem_not_a_crash(tmp_path: Path):
    """The playbook's "common mistake", ``{"type": "image", "url": ...}``, and items whose value is missing or not a
    path stopped the check with a TypeError; each is now that record's problem, with the key to write."""
    Image.new('RGB', (8, 8)).save(tmp_path / 'a.png')
    answer = {'role': 'assistant', 'content': 'x'}

    def chat(item: dict) -> dict:
        return {'messages': [{'role': 'user', 'content': [item, {'type': 'text', 'text': 'Describe.'}]}, answer]}

    records = [chat({'type': 'image', 'url': 'a.png'}), chat({'type': 'image', 'image': None}),
               chat({'type': 'image'}), chat({'type': 'video', 'video': 7}),
               {'images': [None], 'messages': [{'role': 'user', 'content': '<image>Describe.'}, answer]}]
    report = check_file(DenseCaptionDataset(write_jsonl(tmp_path / 'r.jsonl', records), None), workers=0)
    assert [line.split(': ', 1)[1] for line in report.lines()] == [
        'messages[0].content[0]: an "image" item: unknown key(s) `url`; valid: type, image',
        'messages[0].content[0].image: an image must be a path string, got None',
        'messages[0].content[0].image: an image must be a path string, got None',
        'messages[0].content[0].video: a video must be a path string, got 7',
        'images[0]: an image must be a path string, got None']


def test_an_image_url_item_without_a_url_is_the_records_problem_not_a_traceback(tmp_path):
    from src.datasets import DenseCaptionDataset
    from src.datasets.record_check import check_uncached
    from tests.conftest import write_jsonl

    data = write_jsonl(tmp_path / 'a.jsonl', [{'messages': [
        {'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'detail': 'low'}},
                                     {'type': 'text', 'text': 'hi'}]}, {'role': 'assistant', 'content': 'x'}]}])
    report = check_uncached(DenseCaptionDataset(data, None), workers=0)
    assert report.lines() == [f'{data}:1: messages[0].content[0].image_url: an image must be a path string, got None']
