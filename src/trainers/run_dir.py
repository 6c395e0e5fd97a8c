"""One run, one output directory.

A run holds ``<output_dir>/.run.lock`` (its PID, host and start time) while it writes there: a second run into the same
folder is refused at start, before its model loads, and the first run is untouched. A lock whose process is gone
(killed, machine rebooted) is stale and taken over with a warning.

A folder that already holds a run (checkpoints, ``logging.jsonl``, TensorBoard events) is not reused silently: a new
run there is refused with the three ways forward (resume it, overwrite it, or write elsewhere). Resuming from one of
its checkpoints continues that run: checkpoints left incomplete by an interrupted save are set aside, and the log
rows past the resumed step (written after that checkpoint, before the interruption) are dropped, so that
``logging.jsonl`` holds one row per step.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from .checkpoints import CHECKPOINT, checkpoint_problem, checkpoint_step, complete_checkpoints, set_aside_incomplete

logger = logging.getLogger(__name__)

LOCK = '.run.lock'
LOG_ROWS = 'logging.jsonl'
STEP_KEY = 'train/global_step/max_steps'  # ms-swift's progress field, prefixed like every key (swift_seams.prefixed)
# What a run writes into its output_dir (checkpoints aside); overwrite removes exactly these, never other files.
RUN_FILES = (LOG_ROWS, 'args.json', 'resolved_config.yaml', 'run.log', 'val.swift.jsonl')
RUN_DIRS = ('runs', 'images')  # TensorBoard events; ms-swift's plots of them
RUN_LINKS = ('last', 'best', 'last-checkpoint')


@dataclass
class RunLock:
    """This process's claim on an output directory; released at exit (or by ``release``)."""

    path: Path

    def release(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        if holder.get('pid') == os.getpid() and holder.get('host') == socket.gethostname():
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


def acquire(output_dir: Path) -> RunLock:
    """Take ``output_dir``'s lock, or raise ``ConfigError`` naming the run that holds it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / LOCK
    me = {'pid': os.getpid(), 'host': socket.gethostname(), 'proc_start': _process_start(os.getpid()),
          'started': time.strftime('%Y-%m-%d %H:%M:%S')}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
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
        lock = RunLock(path)
        atexit.register(lock.release)
        return lock
    raise ConfigError([f'{path}: could not take the lock (another run is starting there)'])


def previous_run(output_dir: Path) -> list[str]:
    """What an earlier run left in ``output_dir`` (checkpoints, logs, events), as sorted names."""
    if not output_dir.is_dir():
        return []
    names = [p.name for p in output_dir.iterdir()
             if CHECKPOINT.match(p.name) or p.name in (LOG_ROWS, *RUN_DIRS) or p.name.startswith('incomplete-check')]
    return sorted(names, key=lambda n: (not n.startswith('checkpoint-'), n))


def clear_run(output_dir: Path) -> None:
    """Remove what a run writes (checkpoints, logs, events, links), leaving any other file in ``output_dir``."""
    for path in output_dir.iterdir():
        if path.name in RUN_LINKS and path.is_symlink() or path.name in RUN_FILES:
            path.unlink()
        elif path.is_dir() and (path.name in RUN_DIRS or CHECKPOINT.match(path.name)
                                or path.name.startswith('incomplete-checkpoint-')):
            shutil.rmtree(path)


def trim_log_rows(output_dir: Path, step: int) -> int:
    """Cut ``logging.jsonl`` at its first row of a step after ``step``: that row and every later one (the rest of the
    interrupted run, its summary) were written after the checkpoint. Returns how many rows were dropped."""
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
            path.write_text(''.join(f'{kept}\n' for kept in lines[:n]))
            return len(lines) - n
    return 0


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
    return lock


def _check_reuse(output_dir: Path, resume_from: Path | None, overwrite: bool) -> None:
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
            dropped = trim_log_rows(output_dir, checkpoint_step(resume_from) or 0)
            if dropped:
                logger.warning(f'{output_dir / LOG_ROWS}: dropped {dropped} rows logged after {resume_from.name} '
                               'by the interrupted run; the resumed run logs those steps again')
            return
    found = previous_run(output_dir)
    if not found:
        return
    if overwrite:
        logger.warning(f'{output_dir}: removing the earlier run ({", ".join(found)}), as '
                       '`training.overwrite_output_dir: true` asks')
        clear_run(output_dir)
        return
    latest = complete_checkpoints(output_dir)
    resume = f'`training.resume_from_checkpoint: {latest[-1]}`' if latest else '(no complete checkpoint to resume)'
    raise ConfigError([f'{output_dir} already holds a run ({", ".join(found[:4])}{", ..." if len(found) > 4 else ""})'
                       f'. To continue it, set {resume}; to replace it, set `training.overwrite_output_dir: true`; '
                       'to keep both, set `training.add_version: true` (each run gets its own v<N>-<time> folder) '
                       'or another `training.output_dir`'])
