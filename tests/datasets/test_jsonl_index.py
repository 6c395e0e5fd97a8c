"""JsonlIndex: offsets of non-blank lines, 1-based line numbers for messages, arrays instead of per-line objects."""
from __future__ import annotations

import pytest

from src.datasets.jsonl_index import JsonlIndex


@pytest.mark.parametrize('content, records, lines', [
    (b'', [], []),
    (b'\n\n', [], []),
    (b'{"a": 1}', [b'{"a": 1}'], [1]),
    (b'{"a": 1}\n', [b'{"a": 1}'], [1]),
    (b'{"a": 1}\r\n\r\n   \n{"b": 2}', [b'{"a": 1}', b'{"b": 2}'], [1, 4]),
    (b'\n{"c": "\xc3\xa9"}\n\n', [b'{"c": "\xc3\xa9"}'], [2]),
])
def test_index_finds_records_and_their_line_numbers(tmp_path, content, records, lines):
    path = tmp_path / 'data.jsonl'
    path.write_bytes(content)
    index = JsonlIndex(path)
    assert [index.read(i) for i in range(len(index))] == records
    assert [index.line_number(i) for i in range(len(index))] == lines


def test_limit_and_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr('src.datasets.jsonl_index.CHUNK', 7)  # line breaks fall on every chunk position
    path = tmp_path / 'data.jsonl'
    path.write_text(''.join(f'{{"i": {i}}}\n' for i in range(100)))
    index = JsonlIndex(path)
    assert len(index) == 100 and index.read(57) == b'{"i": 57}' and index.line_number(57) == 58
    assert len(JsonlIndex(path, limit=10)) == 10
    assert index.offsets.nbytes + index.lengths.nbytes + index.line_numbers.nbytes == 100 * 24
