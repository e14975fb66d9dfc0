"""The freestyle division file (pure, spec §10): one JSON object, JSON::XS `pretty canonical`.

The Perl reports and the PHP division editor read these files, so they are
written byte for byte as upstream writes them: sorted keys, 3-space indent,
`"key" : value`, `/` unescaped, numbers as a Perl NV prints (15 significant
digits, integral values without `.0`), a final newline. Reading accepts any
JSON object; what a reader may rely on is restored by `Division`.
"""

from __future__ import annotations

from typing import Any

from freescore.freestyle.scoring import perl_numbers
from freescore.wireformat import MAX_DEPTH, json_text, loads_strict


class DivisionFormatError(ValueError):
    """A division file that is not a JSON object."""


def parse_division(text: str) -> dict[str, Any]:
    """The object in a division file (any formatting, CRLF included)."""
    try:
        obj = loads_strict(text, max_depth=MAX_DEPTH)  # as the pages read what it holds: no NaN, 1e999
    except ValueError as e:
        raise DivisionFormatError(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise DivisionFormatError("not a JSON object")
    return obj


def format_division(obj: dict[str, Any]) -> str:
    """The file text of a division object."""
    body = json_text(perl_numbers(obj), indent=3, separators=(",", " : "), sort_keys=True)
    return body + "\n"
