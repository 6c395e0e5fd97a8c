"""Shared fixtures: the tiny offline Qwen3-VL, its ms-swift template, and configs written into a temp dir."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from src.datasets.check_cache import CACHE_ENV
from src.testing.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
SMOKE_CONFIGS = REPO / 'configs' / 'smoke'
SMOKE_DATA = REPO / 'public_data' / 'smoke'
# What a run, a documented command or a benchmark leaves in a checkout, and the environment; never copied or watched.
LOCAL_STATE = ('.git', '.venv', '.cache', 'output', '__pycache__', '.pytest_cache', '*_vis', '*.egg-info',
               '.toolkit_check')


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under ``root`` outside ``.git``, ``.venv`` and byte-code caches."""
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ('.git', '.venv', '__pycache__', '.pytest_cache')]
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            state[os.path.relpath(os.path.join(folder, name), root)] = (stat.st_size, stat.st_mtime_ns)
    return state


def pytest_sessionstart(session: pytest.Session) -> None:
    if not _is_worker(session.config):
        session.config.stash[_TREE_BEFORE] = _tree_state(REPO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests write only under pytest's temporary directories: a file they add or change in the checkout fails the
    run."""
    before = session.config.stash.get(_TREE_BEFORE, None)
    if before is None:  # a worker: the controlling process checks once, after every worker
        return
    after = _tree_state(REPO)
    changed = sorted(path for path, state in after.items() if before.get(path) != state)
    if changed:
        reporter = session.config.pluginmanager.get_plugin('terminalreporter')
        reporter.write_line(f'ERROR: the tests wrote into the working tree ({len(changed)} files), e.g.: '
                            + ', '.join(changed[:5]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_TREE_BEFORE = pytest.StashKey[dict]()


@pytest.fixture(scope='session', autouse=True)
def _check_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The record check's verdicts go to a temporary folder, not beside the checkout's own data (``public_data``)."""
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp('check_cache'))


@pytest.fixture(scope='session')
def _checkout(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The checkout's files, without local state, plus the tiny model where the smoke configs look for it."""
    copy = tmp_path_factory.mktemp('checkout') / REPO.name
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(*LOCAL_STATE), symlinks=True)
    shutil.copytree(tiny_model, copy / '.cache' / 'tiny-qwen3-vl')
    return copy


@pytest.fixture
def repo_copy(_checkout: Path, tmp_path: Path) -> Path:
    """A fresh copy of the checkout, `.venv` linked in: documented commands and benchmarks run there exactly as
    written (relative paths, `output/`, `.cache/`) without writing into the checkout."""
    copy = tmp_path / REPO.name
    shutil.copytree(_checkout, copy, symlinks=True)
    if (REPO / '.venv').exists():
        (copy / '.venv').symlink_to(REPO / '.venv')
    return copy


def _say(config: pytest.Config, line: str) -> None:
    """Write a line to the terminal now, past pytest's output capture."""
    reporter = config.pluginmanager.get_plugin('terminalreporter')
    capture = config.pluginmanager.get_plugin('capturemanager')
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(line)


def _is_worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker: its terminal is not the user's, the controlling process reports for it."""
    return hasattr(config, 'workerinput')


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """In one process (`-n 0`), name each slow test on the screen as it starts, so a long run shows where it is."""
    if item.get_closest_marker('slow') is not None and not _is_worker(item.config) \
            and item.config.pluginmanager.get_plugin('dsession') is None:
        _say(item.config, f'[slow] {item.nodeid} ...')


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each slow test names itself with its time when it ends, whichever worker ran it."""
    if report.when == 'call' and 'slow' in report.keywords and _CONFIG and not _is_worker(_CONFIG[0]):
        worker = getattr(report, 'node', None)
        where = f' on {worker.gateway.id}' if worker is not None else ''
        _say(_CONFIG[0], f'[slow] {report.nodeid} done in {report.duration:.0f} s{where}')


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (the default, pyproject.toml): one worker per core, at most 4, and one per 6 GiB of memory (a worker's
    two-process engine run holds about 4.5 GiB)."""
    memory_gib = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return max(1, min(len(os.sched_getaffinity(0)), 4, int(memory_gib // 6)))


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + '\n' for r in records))
    return path


def image_record(image: str, answer: str = '[{"desc": "car", "bbox_2d": [1, 2, 3, 4]}]') -> dict[str, Any]:
    """A dense-caption record with one image item and the assistant answer."""
    return {
        'messages': [
            {'role': 'user', 'content': [{'type': 'image', 'image': image}, {'type': 'text', 'text': 'Describe.'}]},
            {'role': 'assistant', 'content': answer},
        ]
    }


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A folder with a.png (64x64) and b.png (96x64)."""
    folder = tmp_path / 'images'
    folder.mkdir()
    Image.new('RGB', (64, 64), (200, 30, 30)).save(folder / 'a.png')
    Image.new('RGB', (96, 64), (30, 200, 30)).save(folder / 'b.png')
    return folder


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp('models') / 'tiny-qwen3-vl')


@pytest.fixture(scope='session')
def template(tiny_model: Path):
    """ms-swift's qwen3_vl template for the tiny model, in training mode, max_length 512, set up as SwiftSft does."""
    import torch
    from swift.model import get_model_processor
    from swift.template import get_template

    model, processor = get_model_processor(str(tiny_model), model_type='qwen3_vl', torch_dtype=torch.float32)
    template = get_template(processor, max_length=512, truncation_strategy='raise')
    template.set_mode('train')
    template.model = model  # the collator computes Qwen3-VL's 3D rope positions with the model
    return template


@pytest.fixture
def make_config(tmp_path: Path, tiny_model: Path):
    """Write a config that extends a smoke config, on the tiny model, with output under tmp_path."""

    def make(parent: str | None, name: str = 'run', **sections: dict[str, Any]) -> Path:
        data: dict[str, Any] = {'extends': str(SMOKE_CONFIGS / parent)} if parent else {}
        data['model'] = {'model': str(tiny_model), **sections.pop('model', {})}
        data['training'] = {'output_dir': str(tmp_path / name), **sections.pop('training', {})}
        data.update(sections)
        return write_yaml(tmp_path / f'{name}.yaml', data)

    return make


def write_video(path: Path, frames: int = 16, fps: int = 8, size: int = 64) -> Path:
    """A short mp4 of a white square moving left to right."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('mpeg4', rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = 'yuv420p'
        for i in range(frames):
            frame = np.zeros((size, size, 3), np.uint8)
            frame[size // 3:size // 3 + 16, 2 + 3 * i:18 + 3 * i] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')))
        container.mux(stream.encode())
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: over several workers (`-n auto`) the long end-to-end runs start at once and the short tests
    fill in around them, instead of one long run finishing alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker('slow') is None)
