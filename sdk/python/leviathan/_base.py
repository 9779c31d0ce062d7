"""What every model shares: reading JSON into typed fields, and back.

A converter turns one JSON value into its Python value: decimal strings into
`Decimal` (never a float), date-times into aware `datetime`, enums into the
SDK's Enum or, for a value the SDK does not know yet, the plain string.
"""

from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, TypeVar

Converter = Callable[[Any], Any]
M = TypeVar("M", bound="Model")


def RAW(value: Any) -> Any:
    return value


def STR(value: Any) -> str:
    return str(value)


def INT(value: Any) -> int:
    return int(value)


def BOOL(value: Any) -> bool:
    return bool(value)


def DECIMAL(value: Any) -> Decimal:
    if value.__class__ is str:
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)  # a JSON number read as float: its shortest exact text
    return Decimal(str(value))


def DATETIME(value: Any) -> datetime:
    return datetime.fromisoformat(value)  # "Z" included (Python 3.11+)


def DATE(value: Any) -> date:
    return date.fromisoformat(str(value))


def nullable(convert: Converter) -> Converter:
    return lambda value: None if value is None else convert(value)


def array(convert: Converter) -> Converter:
    return lambda value: [convert(item) for item in value]


def mapping(convert: Converter) -> Converter:
    return lambda value: {key: convert(item) for key, item in value.items()}


def enum(kind: type[Enum]) -> Converter:
    """The enum member, or the value itself when this SDK does not know it yet."""
    members = kind._value2member_map_
    return lambda value: members.get(value, value)


def ref(kind: Callable[[], type["Model"]]) -> Converter:
    return lambda value: kind().from_json(value)


IDENTITY = frozenset({RAW, STR, INT, BOOL})  # JSON gives these types as they are


class Model:
    """A request or response body. Fields a newer API adds are kept in `extra`."""

    _types: ClassVar[dict[str, tuple[str, Any]]] = {}
    _plan: ClassVar[tuple[tuple[str, str, Any], ...] | None] = None

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        """The model from a decoded JSON object; a field the document lists but the
        answer leaves out is None. (Built without the dataclass's __init__: a frozen
        one sets every field through object.__setattr__, the slow part of reading a
        long list.)"""
        plan = cls.__dict__.get("_plan")
        if plan is None:  # once per class: JSON's own strings, ints and bools need no work
            plan = tuple(
                (json_name, attr, None if convert in IDENTITY else convert)
                for json_name, (attr, convert) in cls._types.items()
            )
            cls._plan = plan
        model = object.__new__(cls)
        values = model.__dict__
        for json_name, attr, convert in plan:
            raw = data.get(json_name)
            values[attr] = raw if raw is None or convert is None else convert(raw)
        types = cls._types
        values["extra"] = {k: v for k, v in data.items() if k not in types}
        return model

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this model: decimals as strings, enums as their values,
        unset optional fields left out."""
        attrs = {attr: json_name for json_name, (attr, _) in self._types.items()}
        out: dict[str, Any] = {}
        for spec in fields(self):  # type: ignore[arg-type]
            if spec.name == "extra":
                continue
            value = getattr(self, spec.name)
            if value is not None:
                out[attrs.get(spec.name, spec.name)] = to_json(value)
        out.update(getattr(self, "extra", {}) or {})
        return out


def to_json(value: Any) -> Any:
    """A Python value as JSON: Decimal → its string, Enum → its value, date → ISO."""
    if isinstance(value, Model):
        return value.to_json()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value
