"""files/names.py: bytes names on the wire (reversible for every byte string) and the rules
of a request's path (relative to the root, normalised, never above it, no NUL)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_sm_debug.errors import SMDebugError
from jupyter_sm_debug.files.names import (
    basename,
    from_wire,
    join,
    parent,
    request_path,
    safe_name,
    to_wire,
    wire_path,
)


@given(st.binary(max_size=64))
def test_every_byte_string_comes_back_from_the_wire(name):
    wire = to_wire(name)
    assert from_wire(wire) == name
    wire.encode("utf-8")  # always valid text for JSON and URLs: no lone surrogate


@given(st.text(max_size=32))
def test_text_without_the_escape_range_is_itself(text):
    text = "".join(
        c for c in text if not ("\uf780" <= c <= "\uf7ff") and not "\ud800" <= c <= "\udfff"
    )
    assert to_wire(text.encode()) == text
    assert from_wire(text) == text.encode()


def test_each_byte_of_an_invalid_sequence_is_one_private_character():
    assert to_wire(b"a\xffb") == "a\uf7ffb"
    assert to_wire(b"\xc3") == "\uf7c3"  # a truncated sequence
    assert to_wire(b"\xc3\xa9") == "\u00e9"  # a whole one is itself
    assert to_wire(b"\xed\xa0\x80") == "\uf7ed\uf7a0\uf780"  # an encoded surrogate is no UTF-8
    assert to_wire("caf\u00e9 \u2603".encode()) == "caf\u00e9 \u2603"


def test_a_real_character_of_the_escape_range_is_escaped_byte_by_byte():
    real = "\uf780".encode()  # EF 9E 80
    assert to_wire(real) == "\uf7ef\uf79e\uf780"
    assert from_wire(to_wire(real)) == real
    # ... and a client may name the bytes of any name with the escapes.
    assert from_wire("\uf7ff") == b"\xff"


def test_every_single_and_double_byte_comes_back():
    for a in range(256):
        assert from_wire(to_wire(bytes([a]))) == bytes([a])
        for b in range(128, 256):
            assert from_wire(to_wire(bytes([a, b]))) == bytes([a, b])


@pytest.mark.parametrize(
    "text, path",
    [
        ("", b"/"),
        ("/", b"/"),
        ("opt/ml/output/failure", b"/opt/ml/output/failure"),
        ("/opt//ml/./x/", b"/opt/ml/x"),
        ("opt/ml/../ml2", b"/opt/ml2"),
        ("a/..", b"/"),
        ("-rf", b"/-rf"),
        ("a\nb/\uf7ff", b"/a\nb/\xff"),
        ("...", b"/..."),
    ],
)
def test_a_request_path_is_normalised_under_the_root(text, path):
    assert request_path(text) == path


@pytest.mark.parametrize("text", ["..", "../etc", "a/../..", "/../x", "a\0b", "x/\ud800"])
def test_a_path_above_the_root_with_nul_or_a_lone_surrogate_is_a_400(text):
    with pytest.raises(SMDebugError) as caught:
        request_path(text)
    assert caught.value.status == 400 and caught.value.code == "invalid_path"
    assert caught.value.hint


def test_a_path_longer_than_path_max_is_a_400():
    with pytest.raises(SMDebugError):
        request_path("a/" * 2100)


@given(st.lists(st.sampled_from(["a", "..", ".", "", "b\n", "\uf7ff", "-x"]), max_size=12))
def test_no_path_ever_leaves_the_root(segments):
    try:
        path = request_path("/".join(segments))
    except SMDebugError:
        return
    assert path.startswith(b"/")
    assert b"/../" not in path + b"/" and b"/./" not in path + b"/"
    assert b"//" not in path


def test_wire_paths_and_parts():
    assert wire_path(b"/") == ""
    assert wire_path(b"/opt/\xff") == "opt/\uf7ff"
    assert join(b"/", b"a") == b"/a" and join(b"/a", b"b") == b"/a/b"
    assert parent(b"/a/b") == b"/a" and parent(b"/a") == b"/" and parent(b"/") == b"/"
    assert basename(b"/a/b") == b"b"
    assert safe_name(b"x\ny") and safe_name(b"-rf") and safe_name(b"...")
    assert not any(safe_name(n) for n in (b"", b".", b"..", b"a/b", b"a\0"))
