"""The one JSONL reader: line numbers, bad lines reported without stopping, runaway lines bounded."""

from __future__ import annotations

import io

import pytest

from tripwire.jsonl import JsonlError, read_jsonl, strict


def test_values_and_errors_carry_their_line_numbers():
    stream = io.StringIO('{"a": 1}\n\n  \n[2]\n{not json\n"text"\n')
    got = list(read_jsonl(stream))
    assert [(n, v) for n, v in got if not isinstance(v, JsonlError)] == [(1, {"a": 1}), (4, [2]), (6, "text")]
    (n, error), = [(n, v) for n, v in got if isinstance(v, JsonlError)]
    assert n == error.line == 5 and str(error).startswith("invalid JSON:") and "column" in str(error)


def test_an_overlong_line_is_skipped_without_losing_the_next():
    stream = io.StringIO('{"a": 1}\n' + '"' + "x" * 100 + '"\n{"b": 2}\n' + "y" * 250)
    got = list(read_jsonl(stream, max_line=40))
    assert got[0] == (1, {"a": 1}) and got[2] == (3, {"b": 2})
    assert isinstance(got[1][1], JsonlError) and got[1][0] == 2 and "longer than 40" in str(got[1][1])
    assert isinstance(got[3][1], JsonlError) and got[3][0] == 4
    assert len(got) == 4


def test_strict_stops_at_the_first_bad_line():
    with pytest.raises(JsonlError) as info:
        list(strict(read_jsonl(io.StringIO('{"a": 1}\n{"b": \n{"c": 3}\n'))))
    assert info.value.line == 2
