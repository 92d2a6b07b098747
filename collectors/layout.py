"""The fingerprint of a response's layout: its text with the sample values cut out.

A kubelet writes the same lines in the same order every scrape; only values and timestamps
change. A collector that learned where each kept value sits (by reading a response line by
line) reads the next response by position when its layout has the same fingerprint.
"""

from __future__ import annotations

from zlib_ng import zlib_ng

__all__ = ["layout_fingerprint"]


def layout_fingerprint(between: bytes, values: int) -> int:
    """A fingerprint of the text ``between`` the values of a response (the parts that are
    not values, joined) and of how many ``values`` were cut out of it: the length, the count,
    CRC-32 and Adler-32.

    Two checksums of zlib-ng's over one joined copy: a megabyte in 0.1 ms, where hashing the
    parts themselves (SipHash, and an object each) took 1 ms. The count matters: a line that
    lost its value leaves the joined text as it was. Where the values were cut is then fixed
    as well, as long as every line is well formed and only sample lines were cut when the
    layout was learned.
    """
    return (
        len(between) << 128 | values << 64 | zlib_ng.crc32(between) << 32 | zlib_ng.adler32(between)
    )
