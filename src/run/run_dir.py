"""One run, one output directory.

A run holds ``<output_dir>/.run.lock`` (its PID, host and start time) while it writes there: a second run into the same
folder is refused at start, before its model loads, and the first run is untouched. A lock whose process is gone
(killed, machine rebooted) is stale and taken over with a warning.

A run records what it owns in ``<output_dir>/.toolkit_run.json``: the names the folder held before the toolkit first
ran there, and what the user added between runs (``preexisting``: the user's, never touched), and the names its runs
wrote (``written``: what appeared while a run held the folder, recorded when it ends). A run killed before it could
record them still owns what it names like a run's output (checkpoints, ``logging.jsonl``, ``runs/``, ...) and was
not there before. A file added to the folder while a run writes there counts as that run's.
``training.overwrite_output_dir`` removes exactly what earlier runs own; what the user keeps there (notes, an
evaluation folder) is never deleted, nor is what the user added inside a run's checkpoint folder (``src.eval``'s
``eval/``, ``swift infer``'s ``infer_result/``): such an overwrite is refused, naming them. A folder with checkpoints
or logs that no run of the toolkit recorded (``swift sft``, an older version) is refused rather than deleted, and so
are files and folders of the user's that a run writes itself (``args.json``, ``README.md``, a non-empty ``images/`` or
``runs/``, where ms-swift's plots and the TensorBoard events would mix with theirs). An earlier run that stopped
before training began (refused by a check once its model loaded) is replaced without asking.

A folder that already holds a run is not reused silently: a new run there is refused with the ways forward (resume
it, overwrite it, or write elsewhere). Resuming from one of its checkpoints continues that run: checkpoints left
incomplete by an interrupted save are set aside, and the log rows past the resumed step (written after that
checkpoint, before the interruption) are dropped, so that ``logging.jsonl`` holds one row per step.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import ConfigError
from .checkpoints import (
    CHECKPOINT,
    INCOMPLETE_PREFIX,
    checkpoint_problem,
    checkpoint_step,
    complete_checkpoints,
    set_aside_incomplete,
)

logger = logging.getLogger(__name__)

LOCK = '.run.lock'
MANIFEST = '.toolkit_run.json'
LOG_ROWS = 'logging.jsonl'
STEP_KEY = 'train/global_step/max_steps'  # ms-swift's progress field, prefixed like every key (swift_seams.prefixed)
# What a run writes into its output_dir besides checkpoints: owned by the run when they were not there before it.
RUN_FILES = (LOG_ROWS, 'args.json', 'resolved_config.yaml', 'run.log', 'val.swift.jsonl', 'README.md')  # trl's card
RUN_DIRS = ('runs', 'images')  # TensorBoard events; ms-swift's plots of them
RUN_LINKS = ('last', 'best', 'last-checkpoint')


@dataclass
class Manifest:
    """What the toolkit's runs own in an output directory (``MANIFEST``)."""

    preexisting: list[str] = field(default_factory=list)
    """Names the folder held before the toolkit's first run there: the user's."""
    written: list[str] = field(default_factory=list)
    """Names the toolkit's runs wrote, recorded when each run ended."""
    contents: dict[str, list[str]] = field(default_factory=dict)
    """Per folder a run wrote (a checkpoint), the names it held when the run ended: anything else found in it later
    is the user's."""


def read_manifest(output_dir: Path) -> Manifest | None:
    """The folder's manifest, or None when no run of the toolkit has claimed it (or the file is unreadable)."""
    try:
        data = json.loads((output_dir / MANIFEST).read_text())
        contents = {str(k): [str(n) for n in v] for k, v in data.get('contents', {}).items()}
        return Manifest([str(n) for n in data['preexisting']], [str(n) for n in data['written']], contents)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_manifest(output_dir: Path, manifest: Manifest) -> None:
    partial = output_dir / f'{MANIFEST}.partial'
    partial.write_text(json.dumps(asdict(manifest), indent=1))
    partial.replace(output_dir / MANIFEST)


def _named_like_run_output(name: str) -> bool:
    return bool(CHECKPOINT.match(name)) or name in (*RUN_FILES, *RUN_DIRS, *RUN_LINKS) or name.startswith(
        (INCOMPLETE_PREFIX + 'checkpoint-', 'logging.after-step-'))


def _entries(output_dir: Path) -> set[str]:
    return {p.name for p in output_dir.iterdir()} - {LOCK, MANIFEST, f'{MANIFEST}.partial'}


def owned_entries(output_dir: Path, manifest: Manifest) -> list[str]:
    """The names in ``output_dir`` that the toolkit's runs wrote (recorded, or named like a run's output and not
    there before the first run), checkpoints first."""
    names = {n for n in _entries(output_dir) if n in manifest.written or _named_like_run_output(n)}
    return sorted(names - set(manifest.preexisting), key=lambda n: (not n.startswith('checkpoint-'), n))


def record_written(output_dir: Path, started_with: set[str]) -> None:
    """Add to the manifest what appeared in ``output_dir`` while this run held it (``started_with``: the names there
    when it took the folder). What the user added between runs is never the run's (``adopt_users_entries``)."""
    manifest = read_manifest(output_dir)
    if manifest is not None and output_dir.is_dir():
        new = _entries(output_dir) - started_with - set(manifest.preexisting)
        # the folders this run made, and those every run writes into (a resumed run's events go into runs/)
        into = new | ({*RUN_DIRS} & (set(manifest.written) | started_with) - set(manifest.preexisting))
        contents = {**manifest.contents, **{n: sorted(p.name for p in (output_dir / n).iterdir()) for n in into
                                            if (output_dir / n).is_dir() and not (output_dir / n).is_symlink()}}
        _write_manifest(output_dir, Manifest(manifest.preexisting, sorted(set(manifest.written) | new), contents))


def adopt_users_entries(output_dir: Path, manifest: Manifest) -> Manifest:
    """The manifest with what the user added since the last run ended counted as theirs: names no run recorded that
    are not named like a run's output (notes, an evaluation folder, ``swift export``'s ``checkpoint-N-merged/``).
    Names like a run's output that no run recorded are a killed run's, which could not record them."""
    present = _entries(output_dir)
    known = set(manifest.preexisting) | set(manifest.written)
    users = {n for n in present - known if not _named_like_run_output(n)}
    preexisting = sorted((set(manifest.preexisting) & present) | users)  # what the user moved away is no clash
    if preexisting == manifest.preexisting:
        return manifest
    manifest = Manifest(preexisting, manifest.written, manifest.contents)
    _write_manifest(output_dir, manifest)
    return manifest


def users_clash(output_dir: Path, manifest: Manifest) -> list[str]:
    """The user's files a run would replace, and the user's non-empty folders a run writes into."""
    clash = []
    for name in manifest.preexisting:
        path = output_dir / name
        if name in (*RUN_FILES, *RUN_LINKS) or (name in RUN_DIRS and path.is_dir() and any(path.iterdir())):
            clash.append(f'{name}/' if name in RUN_DIRS else name)
    return clash


def users_inside(output_dir: Path, manifest: Manifest, names: list[str]) -> list[str]:
    """What was added inside the folders among ``names`` after the run that wrote them ended: the user's."""
    return [f'{name}/{extra}' for name in names if name in manifest.contents and (output_dir / name).is_dir()
            for extra in sorted({p.name for p in (output_dir / name).iterdir()} - set(manifest.contents[name]))]


def trained_nothing(output_dir: Path, names: list[str]) -> bool:
    """Whether the earlier run among ``names`` stopped before training began: no checkpoint, no logged step, no
    TensorBoard events (a run refused by a check once its model loaded leaves its run.log and config only)."""
    if any(CHECKPOINT.match(n) or n.startswith(INCOMPLETE_PREFIX) for n in names):
        return False
    if 'runs' in names and any(p.is_file() for p in (output_dir / 'runs').rglob('events.out.tfevents.*')):
        return False  # TensorBoard starts with the training: it began, even if it never logged a step
    try:
        rows = (output_dir / LOG_ROWS).read_text().splitlines() if LOG_ROWS in names else []
    except OSError:
        return False
    return not any(STEP_KEY in row for row in rows)


@dataclass
class RunLock:
    """This process's claim on an output directory; released at exit (or by ``release``), recording what the run
    wrote there: the names that appeared after it took the folder (``started_with``)."""

    path: Path
    started_with: set[str] = field(default_factory=set)

    def release(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        if holder.get('pid') == os.getpid() and holder.get('host') == socket.gethostname():
            try:
                record_written(self.path.parent, self.started_with)
            except OSError as exc:  # a full disk must not hide the run's own error
                logger.warning(f'{self.path.parent / MANIFEST}: could not record what the run wrote ({exc})')
            self.path.unlink(missing_ok=True)


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), to tell a live holder from a reused PID."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict) -> bool:
    pid = holder.get('pid')
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get('proc_start')
    return started is None or _process_start(pid) in (None, started)


def make_output_dir(output_dir: Path) -> None:
    """Create ``output_dir``, or raise ``ConfigError`` naming `training.output_dir` and the operating system's reason
    (a file in the way, no permission, a read-only or full disk)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError([f'`training.output_dir`: {output_dir} is a file, not a folder; give the run a folder'])
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError([f'`training.output_dir`: cannot create {output_dir}: {exc.strerror or exc}']) from None


def acquire(output_dir: Path) -> RunLock:
    """Take ``output_dir``'s lock, or raise ``ConfigError`` naming the run that holds it."""
    make_output_dir(output_dir)
    path = output_dir / LOCK
    me = {'pid': os.getpid(), 'host': socket.gethostname(), 'proc_start': _process_start(os.getpid()),
          'started': time.strftime('%Y-%m-%d %H:%M:%S')}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except PermissionError as exc:
            raise ConfigError([f'`training.output_dir`: cannot write into {output_dir}: {exc.strerror}']) from None
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                holder = {}
            if holder.get('host', me['host']) != me['host']:
                raise ConfigError([f'{output_dir} is in use by a run on host {holder["host"]} (PID '
                                   f'{holder.get("pid")}, started {holder.get("started")}); give this run another '
                                   f'`training.output_dir`, or delete {path} if that run is gone']) from None
            if _alive(holder):
                raise ConfigError([f'{output_dir} is in use by a running training (PID {holder["pid"]}, started '
                                   f'{holder.get("started")}); wait for it to finish or give this run another '
                                   '`training.output_dir`']) from None
            logger.warning(f'{path}: the run that held it (PID {holder.get("pid")}) is gone; taking over its lock')
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, 'w') as f:
            json.dump(me, f)
        lock = RunLock(path, _entries(output_dir))
        atexit.register(lock.release)
        return lock
    raise ConfigError([f'{path}: could not take the lock (another run is starting there)'])


def foreign_run(output_dir: Path) -> list[str]:
    """Checkpoints and logs in a folder no run of the toolkit claimed: another tool's run, not the user's to lose."""
    return sorted(n for n in _entries(output_dir) if CHECKPOINT.match(n) or n == LOG_ROWS)


def clear_run(output_dir: Path, names: list[str]) -> None:
    """Remove ``names`` (what the toolkit's runs own) from ``output_dir``."""
    for name in names:
        path = output_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def trim_log_rows(output_dir: Path, step: int) -> int:
    """Cut ``logging.jsonl`` at its first row of a step after ``step``: that row and every later one (the rest of the
    interrupted run, its summary) were written after the checkpoint. They are kept in ``dropped_rows_path`` (a resume
    that fails later, after the model loads, must not have lost them). Returns how many rows were dropped."""
    path = output_dir / LOG_ROWS
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        try:
            progress = str(json.loads(line).get(STEP_KEY, ''))
            row_step = int(progress.split('/')[0]) if progress else None
        except (json.JSONDecodeError, ValueError, AttributeError):
            continue
        if row_step is not None and row_step > step:
            with open(dropped_rows_path(output_dir, step), 'a') as f:
                f.write(''.join(f'{row}\n' for row in lines[n:]))
            path.write_text(''.join(f'{kept}\n' for kept in lines[:n]))
            return len(lines) - n
    return 0


def dropped_rows_path(output_dir: Path, step: int) -> Path:
    """Where the rows a resume from step ``step`` dropped from ``logging.jsonl`` are kept."""
    return output_dir / f'logging.after-step-{step}.jsonl'


def claim_output_dir(output_dir: str | Path, resume_from: str | None, overwrite: bool) -> RunLock:
    """Lock ``output_dir`` for this run and make sure the run will not mix with an earlier one.

    ``resume_from`` is `training.resume_from_checkpoint`; ``overwrite`` is `training.overwrite_output_dir`.
    Raises ``ConfigError`` (before any model loads) when the folder is in use, holds another run, or the checkpoint
    to resume from is incomplete.
    """
    output_dir = Path(output_dir).resolve()
    lock = acquire(output_dir)
    try:
        _check_reuse(output_dir, Path(resume_from).resolve() if resume_from else None, overwrite)
    except BaseException:
        lock.release()
        raise
    lock.started_with = _entries(output_dir)  # after an overwrite cleared the earlier run
    return lock


def _check_reuse(output_dir: Path, resume_from: Path | None, overwrite: bool) -> None:
    manifest = read_manifest(output_dir)
    if manifest is None:
        foreign = foreign_run(output_dir)
        resuming_here = resume_from is not None and resume_from.parent == output_dir
        if foreign and not resuming_here:
            listed = ', '.join(foreign[:4]) + (', ...' if len(foreign) > 4 else '')
            raise ConfigError([f'{output_dir} holds {listed}, which no run of this toolkit recorded writing (no '
                               f'{MANIFEST}: another tool\'s run, or an older version\'s). The toolkit deletes only '
                               'what its own runs wrote, so `training.overwrite_output_dir` will not remove them: move '
                               'them away yourself, or give this run another `training.output_dir`'])
        preexisting = _entries(output_dir)
        if resuming_here:  # the run being continued owns its outputs
            preexisting = {n for n in preexisting if not _named_like_run_output(n)}
        manifest = Manifest(sorted(preexisting), [])
        _write_manifest(output_dir, manifest)
    manifest = adopt_users_entries(output_dir, manifest)
    if clash := users_clash(output_dir, manifest):
        raise ConfigError([f'{output_dir} holds your {", ".join(clash)}, which a run writes there itself and would '
                           'replace or mix with its own: move them away, or give this run another '
                           '`training.output_dir`'])
    if resume_from is not None:
        if (problem := checkpoint_problem(resume_from)) is not None:
            usable = complete_checkpoints(resume_from.parent)
            hint = f'resume from {usable[-1]} instead' if usable else 'no complete checkpoint is left beside it'
            raise ConfigError([f'`training.resume_from_checkpoint`: {problem}; {hint}'])
        if overwrite:
            raise ConfigError(['`training.overwrite_output_dir: true` with `training.resume_from_checkpoint`: '
                               'resuming continues the run in output_dir; overwriting would delete it. Keep one'])
        if resume_from.parent == output_dir:
            set_aside_incomplete(output_dir)
            step = checkpoint_step(resume_from) or 0
            dropped = trim_log_rows(output_dir, step)
            if dropped:
                logger.warning(f'{output_dir / LOG_ROWS}: dropped {dropped} rows logged after {resume_from.name} '
                               'by the interrupted run (kept in '
                               f'{dropped_rows_path(output_dir, step).name}); the resumed run logs those steps again')
            return
    found = owned_entries(output_dir, manifest)
    if not found:
        return
    stopped_early = trained_nothing(output_dir, found)
    if overwrite or stopped_early:
        if added := users_inside(output_dir, manifest, found):
            raise ConfigError([f'{output_dir}: the earlier run\'s folders hold {", ".join(added)}, which that run did '
                               'not write (an evaluation\'s or `swift infer`\'s results?), and overwriting the run '
                               'would delete them: move them out, or give this run another `training.output_dir`'])
        why = ('it stopped before its first step' if stopped_early else
               'as `training.overwrite_output_dir: true` asks')
        logger.warning(f'{output_dir}: removing the earlier run ({", ".join(found)}), {why}; nothing else in the '
                       'folder is touched')
        clear_run(output_dir, found)
        _write_manifest(output_dir, Manifest(manifest.preexisting, []))
        return
    latest = complete_checkpoints(output_dir)
    shown = ', '.join(found[:4]) + (', ...' if len(found) > 4 else '')
    resume = (f'to continue it, set `training.resume_from_checkpoint: {latest[-1]}`; ' if latest else
              'it has no complete checkpoint to continue from; ')
    raise ConfigError([f'{output_dir} already holds a run ({shown}): {resume}to replace it, set '
                       '`training.overwrite_output_dir: true`; to keep both, set `training.add_version: true` (each '
                       'run gets its own v<N>-<time> folder) or another `training.output_dir`'])


class SaveError(RuntimeError):
    """The run stopped while writing into its output directory (a full disk, a quota, a file size limit)."""


def _gib(n: float) -> str:
    return f'{n / 2**30:.1f} GiB'


WRITE_FAILURE = re.compile(r'\(os error (\d+)\)|file write failed')
"""How a write error reads when a library swallowed the OSError: safetensors' ``I/O error: ... (os error 28)``,
torch's ``PytorchStreamWriter failed writing file ...: file write failed``."""


def failed_save(output_dir: str | Path, exc: BaseException) -> str | None:
    """After a run stopped with ``exc``: set aside any checkpoint it left half-written (always), and when ``exc`` is
    the operating system refusing a write (a full disk, a quota, a file size limit), the one-line account of it.
    Any other error is not the disk's fault: None, and the caller re-raises it as it is."""
    output_dir = Path(output_dir)
    moved = set_aside_incomplete(output_dir) if output_dir.is_dir() else []
    chain = _chain(exc)
    cause = next((e for e in chain if isinstance(e, OSError) and e.errno is not None), None)
    written = next((m for e in chain if (m := WRITE_FAILURE.search(str(e)))), None)
    if cause is not None:
        reason = cause.strerror
    elif written is not None:
        reason = os.strerror(int(written[1])) if written[1] else 'the file system refused a write'
    else:
        return None
    line = f'`training.output_dir`: writing into {output_dir} failed: {reason}'
    if moved:
        line += f'; the checkpoint it was writing is set aside as {", ".join(p.name for p in moved)}'
    try:
        line += f'; {_gib(shutil.disk_usage(output_dir).free)} free there now'
    except OSError:
        pass
    latest = complete_checkpoints(output_dir)
    return line + (f'. Free space, then resume: `training.resume_from_checkpoint: {latest[-1]}`' if latest else '')


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def space_problem(output_dir: str | Path, checkpoint_bytes: int) -> str | None:
    """Why the first checkpoint cannot be written (less free space than it needs), or None."""
    try:
        free = shutil.disk_usage(output_dir).free
    except OSError:
        return None
    if free >= checkpoint_bytes:
        return None
    return (f'`training.output_dir`: a checkpoint of this run takes about {_gib(checkpoint_bytes)} (weights and '
            f'optimizer state), and {output_dir} has {_gib(free)} free; the run would stop at its first save. Free '
            'space, or give the run another `training.output_dir`')
