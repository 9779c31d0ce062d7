"""The one JSON reader of the API and the partner stream.

Bodies (and stream messages) are parsed by orjson, then refused if they nest
objects and arrays deeper than JSON_MAX_DEPTH (no request needs more than a
few levels; a body nested 10,000 deep used to exhaust Python's recursion
limit) or if the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (read at most one
byte past it). Errors are `invalid_params` (400) and `payload_too_large` (413).
"""

from typing import Any

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from portal.errors import DomainError, ErrorCode, InvalidParams

JSON_MAX_DEPTH = 32


def _deeper_than(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_loads(data: bytes | str) -> Any:
    """`data` parsed. Raises InvalidParams if it is not JSON or nests deeper than
    JSON_MAX_DEPTH levels of objects and arrays."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" not in str(exc):
            raise InvalidParams(f"Not valid JSON: {exc}.") from None
        value = None
        deep = True
    else:
        raw = data.encode() if isinstance(data, str) else data
        # Cheap first: fewer brackets than the limit cannot nest deeper than it.
        deep = (
            isinstance(value, dict | list)
            and raw.count(b"{") + raw.count(b"[") > JSON_MAX_DEPTH
            and _deeper_than(value, JSON_MAX_DEPTH)
        )
    if deep:
        raise InvalidParams(
            f"JSON nested too deeply: at most {JSON_MAX_DEPTH} levels of objects and arrays."
        )
    return value


def payload_too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than the limit of {limit:,} bytes."


class JsonParser(BaseParser):
    """application/json bodies through `json_loads`, at most DATA_UPLOAD_MAX_MEMORY_SIZE."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise DomainError(payload_too_large_message(), code=ErrorCode.PAYLOAD_TOO_LARGE)
        return json_loads(data)
