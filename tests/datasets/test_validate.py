"""The validator finds every seeded fault, on the right line, and exits non-zero."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.datasets.validate import main
from tests.conftest import REPO, SMOKE_DATA, image_record, write_jsonl


def _geo(image='images/a.png', **overrides):
    record = {'images': [image], 'width': 64, 'height': 64, 'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 30, 40]}]}
    record.update(overrides)
    return record


def test_every_kind_of_bad_record_is_reported_on_its_line(image_dir: Path, make_config, tmp_path: Path, capsys):
    (image_dir / 'broken.png').write_bytes(b'not a png')
    lines = [
        _geo(),                                                                    # 1 ok
        '{"images": [',                                                            # 2 invalid JSON
        _geo(image='images/missing.png'),                                          # 3 missing image
        _geo(image='images/broken.png'),                                           # 4 does not decode
        _geo(objects=[{'desc': 'car', 'bbox_2d': [1, 2, 30, 400]}]),               # 5 outside the image
        _geo(objects=[{'desc': 'car', 'bbox_2d': [30, 2, 1, 40]}]),                # 6 x1 > x2
        _geo(objects=[{'desc': 'roof', 'poly': [1, 2, 3, 4, 5]}]),                 # 7 odd coordinates
        _geo(objects=[{'desc': 'car'}]),                                           # 8 no geometry
        _geo(objects=[{'desc': ' ', 'line': [1, 2, 3, 4]}]),                       # 9 empty desc
        _geo(width='64'),                                                          # 10 bad size
        {'messages': [{'role': 'user', 'content': '<image><image>Hi'},             # 11 placeholder mismatch
                      {'role': 'assistant', 'content': 'x'}], 'images': ['images/a.png']},
        image_record('images/a.png', 'car ' * 400),                                # 12 over max_length
        '',                                                                        # (blank: skipped)
        [1, 2],                                                                    # 14 not an object
        image_record('images/b.png'),                                              # 15 ok
    ]
    data = write_jsonl(image_dir.parent / 'data.jsonl', lines)
    config = make_config('lora.yaml', name='validate', global_max_length=256)
    assert main([str(data), '--config', str(config)]) == 1
    out = capsys.readouterr().out
    bad_lines = sorted({int(line.split(':')[1]) for line in out.splitlines() if line.startswith(str(data) + ':')
                        and line.split(':')[1].isdigit()})
    assert bad_lines == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14]
    for line_no, text in [(2, 'invalid JSON'), (3, 'image file not found'), (4, 'does not open as an image'),
                          (5, 'leaves the 64x64 image'), (6, 'x1 < x2'), (7, 'even number of coordinates'),
                          (8, 'needs exactly one geometry'), (9, 'desc: must be a non-empty string'),
                          (10, 'must be positive integers'), (11, '2 <image> placeholder(s)'),
                          (12, 'exceeds max_length 256'), (14, 'must be a JSON object')]:
        assert f'{data}:{line_no}: ' in out and text in out.split(f'{data}:{line_no}: ')[1].splitlines()[0], text
    assert out.strip().endswith('14 records, 12 with problems, 12 problems in all')


def test_clean_file_exits_zero(image_dir: Path, capsys):
    data = write_jsonl(image_dir.parent / 'ok.jsonl', [_geo(), image_record('images/b.png')])
    assert main([str(data)]) == 0
    out, err = capsys.readouterr()
    assert '2 records, 0 with problems' in out
    assert 'rec/s' in err, 'the progress bar shows records per second'


def test_deep_decodes_what_the_end_marker_cannot_show(image_dir: Path, capsys):
    """A PNG damaged inside (its image data) but complete to its end marker passes the default check, which reads
    headers and end markers; `--deep` decodes it and reports it. A file cut short is caught either way."""
    from PIL import Image

    Image.effect_noise((64, 64), 50).convert('RGB').save(image_dir / 'damaged.png')
    data = bytearray((image_dir / 'damaged.png').read_bytes())
    start = data.index(b'IDAT') + 40
    data[start:start + 64] = bytes(64)
    (image_dir / 'damaged.png').write_bytes(bytes(data))
    Image.effect_noise((64, 64), 50).convert('RGB').save(image_dir / 'whole.png')
    (image_dir / 'cut.png').write_bytes((image_dir / 'whole.png').read_bytes()[:6000])
    path = write_jsonl(image_dir.parent / 'damaged.jsonl', [_geo('images/damaged.png'), _geo('images/cut.png')])
    assert main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f'{path}:2: images[0]' in out and f'{path}:1:' not in out
    assert main([str(path), '--deep']) == 1
    out = capsys.readouterr().out
    assert f'{path}:1: images[0]: ' in out and 'does not decode as an image' in out and f'{path}:2: ' in out


def _problems_of(path: Path, capsys) -> tuple[int, str]:
    code = main([str(path)])
    return code, capsys.readouterr().out


def test_encodings_sizes_urls_and_coordinates_are_reported_like_training_reports_them(image_dir: Path, capsys):
    """Each of these fails the same way in training (DenseCaptionDataset); the validator names file:line and goes on."""
    import base64
    import io

    from PIL import Image

    from src.datasets import DenseCaptionDataset, RecordError

    buffer = io.BytesIO()
    Image.new('RGB', (64, 64)).save(buffer, format='PNG')
    good_url = 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode()
    path = image_dir.parent / 'mixed.jsonl'
    lines = [
        json.dumps(_geo()).encode(),                                                          # 1 ok
        json.dumps(_geo(objects=[{'desc': 'café', 'bbox_2d': [1, 2, 30, 40]}]),
                   ensure_ascii=False).encode('latin-1'),                                     # 2 Latin-1
        json.dumps(_geo(width=96)).encode(),                                                  # 3 wrong size
        json.dumps(_geo(image='https://example.com/a.png')).encode(),                         # 4 remote
        json.dumps(_geo(image='data:image/png;base64,@@@')).encode(),                         # 5 bad data URL
        json.dumps(_geo(image=good_url)).encode(),                                            # 6 ok
        json.dumps(_geo(objects=[{'desc': 'car', 'bbox_2d': [0.1, 0.2, 0.5, 0.6]}])).encode(),  # 7 0-1 coords
        json.dumps(_geo(objects=[{'desc': 'car', 'bbox_2d': [100, 200, 500, 600]}])).encode(),  # 8 norm-1000
        json.dumps({'messages': [{'role': 'user', 'content': [
            {'type': 'image', 'image': 'https://example.com/a.png'}]},
            {'role': 'assistant', 'content': 'x'}]}).encode(),                                 # 9 remote (chat)
    ]
    path.write_bytes(b'\n'.join(lines) + b'\n')
    code, out = _problems_of(path, capsys)
    assert code == 1 and out.strip().endswith('9 records, 7 with problems, 7 problems in all')
    expected = {
        2: 'not UTF-8 (byte 0xe9 at column', 3: '`width` x `height` 96x64 disagree with the image file, which is 64x64',
        4: 'is a remote URL; training reads local files only', 5: "the data URL's base64 does not decode",
        7: 'every coordinate is within [0, 1]', 8: 'the coordinates look normalised to 0-1000',
        9: 'is a remote URL; training reads local files only',
    }
    for line_no, text in expected.items():
        assert text in out.split(f'{path}:{line_no}: ')[1].splitlines()[0], line_no
    dataset = DenseCaptionDataset(path, None)
    for line_no, text in expected.items():  # training stops on the same records, with the same words
        with pytest.raises(RecordError, match=re.escape(f'{path}:{line_no}: ')) as exc:
            dataset.inputs(line_no - 1)
        assert text in str(exc.value), line_no
    assert good_url in json.dumps(dataset.inputs(5))  # an inline image that decodes trains


def test_utf16_and_empty_files(image_dir: Path, capsys):
    utf16 = image_dir.parent / 'utf16.jsonl'
    utf16.write_text(json.dumps(_geo()) + '\n', encoding='utf-16')
    code, out = _problems_of(utf16, capsys)
    assert code == 1 and 'the file is UTF-16; JSON Lines are UTF-8' in out
    empty = image_dir.parent / 'empty.jsonl'
    empty.write_text('\n\n')
    assert main([str(empty)]) == 1
    assert f'{empty}: no records' in capsys.readouterr().err


def test_exif_rotated_image_whose_record_gives_the_rotated_size(image_dir: Path, capsys):
    from PIL import Image

    image = Image.new('RGB', (96, 64))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed: viewers show 64x96
    image.save(image_dir / 'rotated.jpg', exif=exif)
    path = write_jsonl(image_dir.parent / 'exif.jsonl', [_geo(image='images/rotated.jpg', width=64, height=96)])
    code, out = _problems_of(path, capsys)
    assert code == 1 and 'the file carries EXIF orientation 6' in out and 'which is 96x64' in out


def test_video_records_are_checked_with_the_configs_video_sampling(make_config, tmp_path: Path):
    """With custom.video (at most 4 frames of 4096 pixels) the smoke videos encode to ~100 tokens, with ms-swift's
    default sampling to ~380: at a limit of 200 they pass, as they do in training. Run in a fresh process: the video
    settings are read once per process."""
    config = make_config('video.yaml', global_max_length=200)
    done = subprocess.run([sys.executable, '-m', 'src.datasets.validate', str(SMOKE_DATA / 'video.jsonl'),
                           '--config', str(config)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert '2 records, 0 with problems' in done.stdout
