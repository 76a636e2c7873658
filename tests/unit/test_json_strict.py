"""orchestrator/json_strict.py: RFC 8259 JSON, the same with or without whitespace around."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.json_strict import NotJson, loads_strict


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a":[1,2.5,"x",null,true]}', {"a": [1, 2.5, "x", None, True]}),
        (' \n{"a":1}\t ', {"a": 1}),
        ("[]", []),
        ('"s"', "s"),
        ("0", 0),
    ],
)
def test_json_values_are_read_whatever_surrounds_them(text: str, expected: Any) -> None:
    assert loads_strict(text) == expected


@pytest.mark.parametrize("text", ['{"a":NaN}', "[Infinity]", " -Infinity ", "1e400", "[1e999]"])
def test_what_python_takes_but_json_does_not_is_refused(text: str) -> None:
    with pytest.raises(NotJson):
        loads_strict(text)


@pytest.mark.parametrize("text", ['{"a":1} x', "", " ", '{"a":', "[1,]", "{'a':1}"])
def test_invalid_text_gives_the_decoders_own_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as ours:
        loads_strict(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)
