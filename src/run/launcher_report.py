"""Why a process of a torchrun launch stopped, in the summary torchrun prints last.

torchrun tells each process where to write its failure (``TORCHELASTIC_ERROR_FILE``, torch.distributed.elastic's
documented error-file protocol, which its ``@record`` decorator uses) and prints that file's text under the process
in its closing "Root Cause" summary. A process that leaves that file unwritten is summarised as "traceback : To enable
traceback see: https://pytorch.org/docs/stable/elastic/errors.html", the last thing a user reads, while the one-line
error that says what to change scrolled away above torchrun's own traceback.
"""
from __future__ import annotations

import json
import os
import sys
import time


def report_failure(text: str) -> None:
    """Print ``text`` (a one-line ``error: ...`` or a traceback) on standard error and, under torchrun, write it into
    the error file torchrun shows last; nothing more without torchrun."""
    print(text.rstrip('\n'), file=sys.stderr)
    path = os.environ.get('TORCHELASTIC_ERROR_FILE')
    if not path:
        return
    lines = text.strip().splitlines() or ['']
    record = {'message': {'message': lines[-1] if lines[0].startswith('Traceback') else lines[0],
                          'extraInfo': {'py_callstack': text.rstrip('\n'), 'timestamp': str(int(time.time()))}}}
    try:
        with open(path, 'w', encoding='utf-8') as f:
            json.dump(record, f)
    except OSError as exc:  # the message is on standard error already; torchrun then shows its own placeholder
        print(f'note: could not write the failure for torchrun to {path}: {exc}', file=sys.stderr)
