"""The raw export converter and its shell wrapper."""
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _export(tmp_path: Path) -> Path:
    export = {'images': [
        {'file': 'a.png', 'objects': [{'label': 'car', 'shape': 'box', 'points': [[30, 40], [2, 4]]},
                                      {'label': 'lane', 'shape': 'polyline', 'points': [[0, 0], [10, 10], [20, 5]]},
                                      {'label': '屋顶', 'shape': 'polygon', 'points': [[1, 1], [9, 1], [9, 9]]}]},
        {'file': 'b.png', 'objects': [{'label': 'car', 'shape': 'box', 'points': [[0, 0], [500, 10]]}]},
        {'file': 'b.png', 'objects': [{'label': 'car', 'shape': 'circle', 'points': [[0, 0]]}]},
        {'file': 'gone.png', 'objects': []},
    ]}
    path = tmp_path / 'export.json'
    path.write_text(json.dumps(export, ensure_ascii=False))
    return path


def test_convert_dataset_script_converts_and_validates(image_dir: Path, tmp_path: Path):
    out = tmp_path / 'train.jsonl'
    result = subprocess.run([str(REPO / 'data_conversion' / 'convert_dataset.sh'), str(_export(tmp_path)),
                             str(image_dir), str(out), 'roads'], capture_output=True, text=True,
                            env={**os.environ, 'PYTHON': sys.executable})
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{
        'images': ['images/a.png'], 'width': 64, 'height': 64, 'dataset': 'roads',
        'objects': [{'desc': 'car', 'bbox_2d': [2.0, 4.0, 30.0, 40.0]},
                    {'desc': 'lane', 'line': [0.0, 0.0, 10.0, 10.0, 20.0, 5.0]},
                    {'desc': '屋顶', 'poly': [1.0, 1.0, 9.0, 1.0, 9.0, 9.0]}]}]
    assert 'skipped image b.png: objects[0]: `bbox_2d` [0.0, 0.0, 500.0, 10.0] leaves the 96x64 image' in result.stderr
    assert "skipped image b.png: objects[0]: unknown shape 'circle'" in result.stderr
    assert 'skipped image gone.png: image file not found' in result.stderr
    assert 'wrote 1 records, skipped 3' in result.stderr
    assert '1 records, 0 with problems' in result.stdout
