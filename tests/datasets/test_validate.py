"""The validator finds every seeded fault, on the right line, and exits non-zero."""
from pathlib import Path

from src.datasets.validate import main
from tests.conftest import image_record, write_jsonl


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
    for line_no, text in [(2, 'invalid JSON'), (3, 'image file not found'), (4, 'does not decode as an image'),
                          (5, 'leaves the 64x64 image'), (6, 'x1 < x2'), (7, 'even number of coordinates'),
                          (8, 'needs exactly one geometry'), (9, 'desc: must be a non-empty string'),
                          (10, 'must be positive integers'), (11, '2 <image> placeholder(s)'),
                          (12, 'exceeds max_length 256'), (14, 'must be a JSON object')]:
        assert f'{data}:{line_no}: ' in out and text in out.split(f'{data}:{line_no}: ')[1].splitlines()[0], text
    assert out.strip().endswith('14 records, 12 with problems, 12 problems in all')


def test_clean_file_exits_zero(image_dir: Path, capsys):
    data = write_jsonl(image_dir.parent / 'ok.jsonl', [_geo(), image_record('images/b.png')])
    assert main([str(data)]) == 0
    assert '2 records, 0 with problems' in capsys.readouterr().out
