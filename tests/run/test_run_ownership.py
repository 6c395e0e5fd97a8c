"""The toolkit deletes only what its own runs wrote: `overwrite_output_dir` on a folder the user filled removes
nothing of theirs, a run killed before it recorded its files still owns them, and another tool's run is refused, not
deleted. Folder problems are one line naming `training.output_dir` and the operating system's reason."""
import json
from pathlib import Path

import pytest

from src.config import ConfigError
from src.run.run_dir import MANIFEST, claim_output_dir, read_manifest
from tests.run.test_checkpoints import _checkpoint


def _user_folder(folder: Path) -> Path:
    """What a user keeps in a project folder: images, their own TensorBoard runs, notes."""
    (folder / 'images').mkdir(parents=True)
    (folder / 'images' / 'cat.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    (folder / 'runs').mkdir()
    (folder / 'runs' / 'events.out.tfevents.1.host').write_bytes(b'old')
    (folder / 'notes.txt').write_text('keep me')
    return folder


def _run(folder: Path, overwrite: bool = False, steps: tuple[int, ...] = (2, )) -> None:
    """A run of the toolkit in ``folder``: claim, write what ms-swift writes, release."""
    lock = claim_output_dir(folder, None, overwrite)
    for step in steps:
        _checkpoint(folder, step)
    (folder / 'logging.jsonl').write_text('{"train/loss": 1.0}\n')
    (folder / 'args.json').write_text('{}')
    (folder / 'images').mkdir(exist_ok=True)
    (folder / 'images' / 'train_loss.png').write_bytes(b'png')  # ms-swift's plots at the end of training
    lock.release()


def test_a_folder_with_images_and_runs_is_the_users_not_an_earlier_run(tmp_path: Path):
    folder = _user_folder(tmp_path / 'project')
    _run(folder)  # not refused: nothing there was written by a run
    assert read_manifest(folder).preexisting == ['images', 'notes.txt', 'runs']


def test_overwrite_on_a_folder_the_user_filled_removes_nothing_of_theirs(tmp_path: Path):
    folder = _user_folder(tmp_path / 'project')
    _run(folder)
    _run(folder, overwrite=True)
    assert (folder / 'images' / 'cat.jpg').read_bytes() == b'\xff\xd8 not really a jpeg'
    assert (folder / 'runs' / 'events.out.tfevents.1.host').read_bytes() == b'old'
    assert (folder / 'notes.txt').read_text() == 'keep me'
    assert (folder / 'checkpoint-2').is_dir(), 'the new run wrote its own'


def test_overwrite_removes_what_the_earlier_run_wrote_even_unrecorded(tmp_path: Path):
    folder = tmp_path / 'run'
    claim_output_dir(folder, None, False)  # killed: the lock is never released, so `written` is never recorded
    _checkpoint(folder, 4)
    (folder / 'logging.jsonl').write_text('{}\n')
    (folder / 'runs').mkdir()
    (folder / '.run.lock').unlink()  # what a stale lock comes to
    with pytest.raises(ConfigError, match=r'already holds a run \(checkpoint-4, logging.jsonl, runs\)'):
        claim_output_dir(folder, None, False)
    claim_output_dir(folder, None, True).release()
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST]


def test_what_a_run_wrote_is_recorded_when_it_ends(tmp_path: Path):
    folder = tmp_path / 'run'
    lock = claim_output_dir(folder, None, False)
    (folder / 'eval_plot.svg').write_text('a file ms-swift may add one day, named like nothing we know')
    lock.release()
    assert 'eval_plot.svg' in json.loads((folder / MANIFEST).read_text())['written']
    claim_output_dir(folder, None, True).release()
    assert not (folder / 'eval_plot.svg').exists()


def test_another_tools_run_is_refused_and_overwrite_does_not_delete_it(tmp_path: Path):
    folder = tmp_path / 'swift_run'
    _checkpoint(folder, 10)
    (folder / 'logging.jsonl').write_text('{}\n')
    for overwrite in (False, True):
        with pytest.raises(ConfigError) as err:
            claim_output_dir(folder, None, overwrite)
        assert (f'{folder} holds checkpoint-10, logging.jsonl, which no run of this toolkit recorded writing'
                in str(err.value))
        assert '`training.overwrite_output_dir` will not remove them' in str(err.value)
    assert (folder / 'checkpoint-10').is_dir() and not (folder / MANIFEST).exists()


def test_another_tools_checkpoint_can_still_be_resumed_in_place(tmp_path: Path):
    folder = tmp_path / 'swift_run'
    ckpt = _checkpoint(folder, 10)
    claim_output_dir(folder, str(ckpt), False).release()
    assert read_manifest(folder).preexisting == []


def test_a_run_without_a_complete_checkpoint_gets_a_whole_sentence(tmp_path: Path):
    folder = tmp_path / 'cut'
    claim_output_dir(folder, None, False).release()
    (folder / 'logging.jsonl').write_text('{}\n')
    with pytest.raises(ConfigError) as err:
        claim_output_dir(folder, None, False)
    assert (f'{folder} already holds a run (logging.jsonl): it has no complete checkpoint to continue from; to '
            'replace it, set `training.overwrite_output_dir: true`') in str(err.value)


def test_an_output_dir_that_is_a_file_is_one_line_naming_the_setting(tmp_path: Path):
    (tmp_path / 'out').write_text('a file')
    with pytest.raises(ConfigError) as err:
        claim_output_dir(tmp_path / 'out', None, False)
    assert err.value.problems == [f'`training.output_dir`: {tmp_path / "out"} is a file, not a folder; give the run '
                                  'a folder']
    with pytest.raises(ConfigError) as err:
        claim_output_dir(tmp_path / 'out' / 'inside', None, False)
    assert err.value.problems == [f'`training.output_dir`: cannot create {tmp_path / "out" / "inside"}: Not a '
                                  'directory']


def test_what_the_user_adds_between_runs_stays_theirs_through_a_refused_run_and_an_overwrite(tmp_path: Path):
    folder = tmp_path / 'run'
    _run(folder)
    (folder / 'NOTES.md').write_text('what I saw')
    (folder / 'my_eval').mkdir()
    (folder / 'my_eval' / 'r.json').write_text('{}')
    (folder / 'checkpoint-2-merged').mkdir()  # `swift export --merge_lora` writes beside the checkpoint
    with pytest.raises(ConfigError, match='already holds a run'):
        claim_output_dir(folder, None, False)  # refused: the rerun records nothing as written
    assert not {'NOTES.md', 'my_eval', 'checkpoint-2-merged'} & set(read_manifest(folder).written)
    _run(folder, overwrite=True, steps=(3, ))
    assert (folder / 'NOTES.md').read_text() == 'what I saw' and (folder / 'my_eval' / 'r.json').is_file()
    assert (folder / 'checkpoint-2-merged').is_dir() and not (folder / 'checkpoint-2').exists()
    assert {'NOTES.md', 'my_eval', 'checkpoint-2-merged'} <= set(read_manifest(folder).preexisting)
    _run(folder, overwrite=True, steps=(4, ))
    assert (folder / 'NOTES.md').is_file() and not (folder / 'checkpoint-3').exists()


@pytest.mark.parametrize('name', ['args.json', 'run.log', 'README.md'])
def test_a_file_of_yours_that_a_run_would_replace_is_refused_not_overwritten(tmp_path: Path, name: str):
    folder = _user_folder(tmp_path / 'project')
    (folder / name).write_text('mine')
    with pytest.raises(ConfigError) as err:
        claim_output_dir(folder, None, False)
    assert err.value.problems == [f'{folder} holds your {name}, which a run writes there itself and would replace: '
                                  'move them away, or give this run another `training.output_dir`']
    assert (folder / name).read_text() == 'mine'
