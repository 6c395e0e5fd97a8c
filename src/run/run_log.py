"""Quiet screen, complete log file.

ms-swift logs every argument, the model's module tree and its parameter counts at INFO level: hundreds of lines
before the first step. A run prints warnings, progress bars and the metrics of each log step on the screen; everything
ms-swift, ModelScope and the project log at INFO goes to ``<output_dir>/run.log``. Until the output directory is known
(ms-swift decides it while building its arguments) the records wait in memory. ``LOG_LEVEL=INFO`` (ms-swift's own
variable) puts the INFO lines back on the screen.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

LOGGERS = ('swift', 'modelscope', 'src')
RUN_LOG = 'run.log'
FORMAT = logging.Formatter('%(asctime)s [%(levelname)s:%(name)s] %(message)s', '%Y-%m-%d %H:%M:%S')


def _screen_level() -> int:
    level = logging.getLevelName(os.environ.get('LOG_LEVEL', '').strip().upper())
    return level if isinstance(level, int) else logging.WARNING


class RunLog:
    """The log routing of one run: created before ms-swift is imported (its import logs at INFO), ``start`` before it
    builds anything, ``to_file`` once the folder is known. Ranks other than 0 keep ms-swift's own setting (errors
    only)."""

    def __init__(self):
        self._screen = _screen_level()
        self._active = int(os.environ.get('RANK', '0')) == 0
        self._set_env = self._active and 'LOG_LEVEL' not in os.environ
        if self._set_env:
            os.environ['LOG_LEVEL'] = logging.getLevelName(self._screen)
        self._buffer = logging.handlers.MemoryHandler(capacity=1 << 30, flushLevel=logging.CRITICAL + 1)
        self._buffer.setLevel(logging.INFO)
        self._file: logging.Handler | None = None
        self._src_screen: logging.Handler | None = None
        self._saved: list[tuple[logging.Logger, int, list[tuple[logging.Handler, int]]]] = []
        if self._active:  # Python warnings (deprecations in dependencies, from their import on) go to the log file
            logging.captureWarnings(True)
            py_warnings = logging.getLogger('py.warnings')
            py_warnings.propagate = False
            py_warnings.addHandler(self._buffer)

    def start(self) -> 'RunLog':
        """Screen handlers show warnings only; INFO and up is kept for the log file."""
        if not self._active:
            return self
        screen = self._screen
        import swift.utils  # noqa: F401 - sets up ms-swift's and ModelScope's loggers, whose handlers are lowered here

        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, [(h, h.level) for h in logger.handlers]))
            if name == 'src':  # the project's own messages: same rule, their own screen handler
                self._src_screen = logging.StreamHandler()
                logger.addHandler(self._src_screen)
                logger.propagate = False
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                    handler.setLevel(max(handler.level, screen))
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self._buffer)
        return self

    def to_file(self, output_dir: str | os.PathLike) -> Path:
        """Append everything logged so far, and from now on, to ``<output_dir>/run.log``."""
        path = Path(output_dir) / RUN_LOG
        if not self._active:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.FileHandler(path, encoding='utf-8')
        self._file.setLevel(logging.INFO)
        self._file.setFormatter(FORMAT)
        self._buffer.setTarget(self._file)
        self._buffer.flush()
        for name in (*LOGGERS, 'py.warnings'):
            logger = logging.getLogger(name)
            logger.removeHandler(self._buffer)
            logger.addHandler(self._file)
        return path

    def close(self) -> None:
        """Restore the loggers as they were (a second run in the same process starts clean)."""
        if self._set_env:
            os.environ.pop('LOG_LEVEL', None)
        if not self._active:
            return
        logging.captureWarnings(False)
        py_warnings = logging.getLogger('py.warnings')
        py_warnings.propagate = True
        py_warnings.removeHandler(self._buffer)
        if self._file is not None:
            py_warnings.removeHandler(self._file)
        src = logging.getLogger('src')
        src.propagate = True
        for logger, level, handlers in self._saved:
            logger.setLevel(level)
            for handler in (self._buffer, self._file, self._src_screen):
                if handler is not None:
                    logger.removeHandler(handler)
            for handler, handler_level in handlers:
                handler.setLevel(handler_level)
        self._buffer.close()
        if self._file is not None:
            self._file.close()
