"""Parsing with promql-parser, its errors mapped into ours.

Known gaps of promql-parser (0.12) that the evaluator works around or documents:

* AST nodes carry no source positions, so annotation positions are found by searching
  the original text, and parse errors carry promql-parser's message (which names a
  position only for some errors).
* ``str()``/``prettify()`` do not round-trip string escaping: callers keep the original
  expression text and never re-serialise an AST to evaluate it.
* Reading a negative ``@`` timestamp from the AST aborts inside the library; the engine
  takes it from the original text instead.
"""

from __future__ import annotations

import functools
from typing import Any

import promql_parser

from promql.errors import ParseError
from promql.forecast import register_forecast


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Any:
    """The AST of ``text``; :class:`ParseError` quotes the query and the parser's message."""
    register_forecast()
    try:
        return promql_parser.parse(text)
    except ValueError as e:
        raise ParseError(f"parse error in {text!r}: {e}") from e
    except BaseException as e:  # the library can panic on odd input
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise ParseError(f"parse error in {text!r}: {e}") from None
