"""The toolkit deletes only what its own runs wrote: `overwrite_output_dir` on a folder the user filled removes
nothing of theirs, a run killed before it recorded its files still owns them, and another tool's run is refused, not
deleted. Folder problems are one line naming `training.output_dir` and the operating system's reason."""
import json
import shutil
from pathlib import Path

import pytest

from src.config import ConfigError
from src.run.run_dir import MANIFEST, claim_output_dir, read_manifest
from tests.run.test_checkpoints import _checkpoint


def _user_folder(folder: Path) -> Path:
    """What a user keeps in a project folder: data, their own TensorBoard logs, notes."""
    (folder / 'data').mkdir(parents=True)
    (folder / 'data' / 'cat.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    (folder / 'tb_old').mkdir()
    (folder / 'tb_old' / 'events.out.tfevents.1.host').write_bytes(b'old')
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


def test_a_folder_the_user_filled_is_theirs_not_an_earlier_run(tmp_path: Path):
    folder = _user_folder(tmp_path / 'project')
    _run(folder)  # not refused: nothing there was written by a run
    assert read_manifest(folder).preexisting == ['data', 'notes.txt', 'tb_old']


def test_overwrite_on_a_folder_the_user_filled_removes_nothing_of_theirs(tmp_path: Path):
    folder = _user_folder(tmp_path / 'project')
    _run(folder)
    _run(folder, overwrite=True)
    assert (folder / 'data' / 'cat.jpg').read_bytes() == b'\xff\xd8 not really a jpeg'
    assert (folder / 'tb_old' / 'events.out.tfevents.1.host').read_bytes() == b'old'
    assert (folder / 'notes.txt').read_text() == 'keep me'
    assert (folder / 'checkpoint-2').is_dir(), 'the new run wrote its own'


@pytest.mark.parametrize('name', ['images', 'runs'])
def test_a_users_folder_that_a_run_writes_into_is_refused_unless_empty(tmp_path: Path, name: str):
    """ms-swift writes its plots into images/ (a user's train_loss.png was replaced) and TensorBoard its events into
    runs/ (an overwrite could not tell the runs' events from the user's, and TensorBoard showed them mixed)."""
    folder = _user_folder(tmp_path / 'project')
    (folder / name).mkdir()
    claim_output_dir(folder, None, False).release()  # empty: nothing to lose or mix
    fresh = _user_folder(tmp_path / 'fresh')
    (fresh / name).mkdir()
    (fresh / name / 'train_loss.png').write_bytes(b'USER')
    with pytest.raises(ConfigError) as err:
        claim_output_dir(fresh, None, False)
    assert err.value.problems == [f'{fresh} holds your {name}/, which a run writes there itself and would replace or '
                                  'mix with its own: move them away, or give this run another `training.output_dir`']
    assert (fresh / name / 'train_loss.png').read_bytes() == b'USER'


def test_results_added_inside_a_runs_checkpoint_stop_an_overwrite(tmp_path: Path):
    """`src.eval` writes into <checkpoint>/eval and `swift infer` into <checkpoint>/infer_result: an overwrite deleted
    them with the checkpoint."""
    folder = tmp_path / 'run'
    _run(folder)
    (folder / 'checkpoint-2' / 'eval').mkdir()
    (folder / 'checkpoint-2' / 'eval' / 'eval_report.json').write_text('{}')
    (folder / 'checkpoint-2' / 'infer_result').mkdir()
    with pytest.raises(ConfigError) as err:
        claim_output_dir(folder, None, True)
    assert err.value.problems == [f'{folder}: the earlier run\'s folders hold checkpoint-2/eval, '
                                  'checkpoint-2/infer_result, which that run did not write (an evaluation\'s or `swift '
                                  'infer`\'s results?), and overwriting the run would delete them: move them out, or '
                                  'give this run another `training.output_dir`']
    assert (folder / 'checkpoint-2' / 'eval' / 'eval_report.json').is_file()
    for extra in ('eval', 'infer_result'):
        shutil.move(folder / 'checkpoint-2' / extra, tmp_path / extra)
    _run(folder, overwrite=True, steps=(3, ))
    assert not (folder / 'checkpoint-2').exists()


def test_a_file_the_user_moved_away_no_longer_blocks_the_run(tmp_path: Path):
    """The refused first attempt recorded README.md as the user's; once moved away, the run goes ahead."""
    folder = _user_folder(tmp_path / 'project')
    (folder / 'README.md').write_text('mine')
    with pytest.raises(ConfigError, match='holds your README.md'):
        claim_output_dir(folder, None, False)
    (folder / 'README.md').unlink()
    claim_output_dir(folder, None, False).release()
    assert 'README.md' not in read_manifest(folder).preexisting


def test_an_earlier_run_that_stopped_before_its_first_step_is_replaced_without_asking(tmp_path: Path, caplog):
    """A run refused once its model loaded (an over-long record) left run.log and resolved_config.yaml; the rerun its
    message asked for was refused as a folder that already held a run."""
    folder = tmp_path / 'run'
    lock = claim_output_dir(folder, None, False)
    for name in ('run.log', 'resolved_config.yaml', 'args.json'):
        (folder / name).write_text('x')
    lock.release()
    claim_output_dir(folder, None, False).release()
    assert 'removing the earlier run (args.json, resolved_config.yaml, run.log), it stopped before its first step' \
        in caplog.text
    assert not (folder / 'run.log').exists()


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
    (folder / 'logging.jsonl').write_text('{"train/global_step/max_steps": "1/4"}\n')
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
    assert err.value.problems == [f'{folder} holds your {name}, which a run writes there itself and would replace or '
                                  'mix with its own: move them away, or give this run another `training.output_dir`']
    assert (folder / name).read_text() == 'mine'


def test_a_resumed_runs_new_events_are_its_own_for_a_later_overwrite(tmp_path: Path):
    """A resumed run writes a second events file into runs/; a later overwrite took it for the user's and refused."""
    folder = tmp_path / 'run'
    lock = claim_output_dir(folder, None, False)
    (folder / 'runs').mkdir()
    (folder / 'runs' / 'events.out.tfevents.1.host').write_bytes(b'a')
    first = _checkpoint(folder, 2)
    (folder / 'logging.jsonl').write_text('{"train/global_step/max_steps": "2/4"}\n')
    lock.release()
    lock = claim_output_dir(folder, str(first), False)
    (folder / 'runs' / 'events.out.tfevents.2.host').write_bytes(b'b')
    _checkpoint(folder, 4)
    lock.release()
    claim_output_dir(folder, None, True).release()
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST]


def test_a_run_that_began_training_without_logging_a_step_is_not_replaced_silently(tmp_path: Path):
    """Its TensorBoard events show it trained (logging_steps past the step it crashed at): its run.log holds the
    reason, so a rerun must ask, as for any run."""
    folder = tmp_path / 'run'
    lock = claim_output_dir(folder, None, False)
    (folder / 'run.log').write_text('Traceback ...')
    (folder / 'runs').mkdir()
    (folder / 'runs' / 'events.out.tfevents.1.host').write_bytes(b'a')
    lock.release()
    with pytest.raises(ConfigError, match='already holds a run'):
        claim_output_dir(folder, None, False)
