"""Label names and values as small integers, so label sets can be handled as numpy columns."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Objects = npt.NDArray[np.object_]


class StringTable:
    """Strings to dense codes and back; code 0 is the empty string (an absent label).

    Append-only: a code keeps its string for the table's lifetime, so readers may hold
    codes (and the arrays :meth:`values` returns) while writers add strings.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {"": 0}
        self._values: Objects = np.empty(1024, dtype=object)
        self._values[0] = ""
        self._size = 1

    def __len__(self) -> int:
        return self._size

    def code(self, value: str) -> int:
        """The code of ``value``, given on first use."""
        code = self._codes.get(value)
        if code is not None:
            return code
        code = self._size
        if code == len(self._values):
            # A new array rather than a resize: arrays handed out earlier stay valid.
            grown: Objects = np.empty(2 * code, dtype=object)
            grown[:code] = self._values
            self._values = grown
        self._values[code] = value
        self._codes[value] = code
        self._size = code + 1
        return code

    def codes(self, values: list[str]) -> npt.NDArray[np.int32]:
        """:meth:`code` of each value."""
        found = list(map(self._codes.get, values))
        if None in found:
            # New strings get their codes in order of first use; known ones are found.
            code = self.code
            for i in [i for i, c in enumerate(found) if c is None]:
                found[i] = code(values[i])
        return np.array(found, dtype=np.int32)

    def find(self, value: str) -> int | None:
        """The code of ``value`` if it has one."""
        return self._codes.get(value)

    def value(self, code: int) -> str:
        """The string of a code."""
        if not 0 <= code < self._size:
            raise KeyError(code)
        text: str = self._values[code]
        return text

    def values(self) -> Objects:
        """Every string by code, as an object array to index with code arrays."""
        return self._values[: self._size]
