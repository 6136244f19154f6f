"""A fixed-size filter of the session ids a file has shown so far: "certainly new" or "maybe seen".

The CSV store asks the database for a line's earlier occurrence only when this filter says "maybe seen":
in a file without repeats that is almost never, and the per-line lookup goes away. It is a Bloom filter
of ``SEEN_FILTER_BITS`` bits (2 MiB), three positions per id taken from the id's hash, so its memory is the
same for ten lines or ten million; it never says "new" of an id it was given, and says "maybe seen" of a new
id with a probability that grows with the file (about 0.4 % after a million ids), which costs that line
only the lookup it would have had anyway.
"""

from __future__ import annotations

__all__ = ["SEEN_FILTER_BITS", "SeenFilter"]

#: Bits of the filter: 2**24 (2 MiB).
SEEN_FILTER_BITS = 1 << 24
_MASK = SEEN_FILTER_BITS - 1


class SeenFilter:
    """The ids given so far, as a Bloom filter: :meth:`add` says whether an id may have been given before."""

    def __init__(self) -> None:
        self._bits = bytearray(SEEN_FILTER_BITS // 8)

    def add(self, key: str) -> bool:
        """Remember ``key``; ``False`` if it was certainly not given before, ``True`` if it may have been."""
        bits = self._bits
        # Three 24-bit positions from the one 64-bit hash: str hashing is the costly part.
        code = hash(key)
        seen = True
        for position in (code & _MASK, (code >> 20) & _MASK, (code >> 40) & _MASK):
            byte, bit = position >> 3, 1 << (position & 7)
            if not bits[byte] & bit:
                seen = False
                bits[byte] |= bit
        return seen
