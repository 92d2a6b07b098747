"""Column compression for samples on disk.

Three columns: series id, timestamp (ms) and value. Ids and timestamps are delta-encoded
(timestamps twice: regular scrapes make the second difference almost always zero); values are
XORed with their predecessor, as in Facebook's Gorilla, and their bytes transposed so that the
unchanged high bytes of neighbouring samples line up into long runs of zeros. zstd then does
the entropy coding. Everything is vectorised, so encoding and decoding run at memory speed.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt
import zstandard

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_HEADER = struct.Struct("<Q")


class CodecError(ValueError):
    """Bytes that do not decode to columns."""


def empty_columns() -> tuple[I32, I64, F64]:
    """Three empty columns."""
    return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.float64)


def encode_columns(sids: I32, ts: I64, values: F64, level: int = 3) -> bytes:
    """Compress three equally long columns into one zstd frame (higher level: smaller, slower)."""
    n = len(sids)
    if not (len(ts) == len(values) == n):
        raise ValueError("columns must have the same length")
    sid_delta = np.diff(sids.astype(np.int64), prepend=np.int64(0)).astype(np.int32)
    ts_delta = np.diff(ts, prepend=np.int64(0))
    ts_dod = np.diff(ts_delta, prepend=np.int64(0))
    bits = values.view(np.uint64)
    xored = bits ^ np.concatenate((np.zeros(1, np.uint64), bits[:-1])) if n else bits
    # One buffer filled by numpy, which lets other threads run while it copies: bytes
    # joined from ``tobytes()`` copies hold the interpreter lock for tens of milliseconds
    # at a large head's size.
    body = np.empty(_HEADER.size + 20 * n, np.uint8)
    body[: _HEADER.size] = np.frombuffer(_HEADER.pack(n), np.uint8)
    at = _HEADER.size
    body[at : at + 4 * n] = sid_delta.view(np.uint8)
    at += 4 * n
    body[at : at + 8 * n] = ts_dod.view(np.uint8)
    at += 8 * n
    body[at:].reshape(8, n)[:] = xored.view(np.uint8).reshape(n, 8).T
    return zstandard.ZstdCompressor(level=level).compress(body.data)


def decode_columns(data: bytes) -> tuple[I32, I64, F64]:
    """Inverse of :func:`encode_columns`; raises :class:`CodecError` on damaged input."""
    try:
        body = zstandard.ZstdDecompressor().decompress(data)
    except zstandard.ZstdError as e:
        raise CodecError(f"cannot decompress: {e}") from e
    if len(body) < _HEADER.size:
        raise CodecError("column data too short")
    (n,) = _HEADER.unpack_from(body)
    if len(body) != _HEADER.size + n * 20:
        raise CodecError(f"column data has {len(body)} bytes, expected {_HEADER.size + n * 20}")
    at = _HEADER.size
    sid_delta = np.frombuffer(body, np.int32, n, at)
    at += 4 * n
    ts_dod = np.frombuffer(body, np.int64, n, at)
    at += 8 * n
    shuffled = np.frombuffer(body, np.uint8, 8 * n, at).reshape(8, n)
    sids = np.cumsum(sid_delta, dtype=np.int64).astype(np.int32)
    ts = np.cumsum(np.cumsum(ts_dod))
    xored = np.ascontiguousarray(shuffled.T).view(np.uint64).reshape(n)
    if not n:
        return empty_columns()
    return sids, ts, np.bitwise_xor.accumulate(xored).view(np.float64)
