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
    """A request or response body. Fields a newer API adds are kept in `extra`.

    Read from JSON lazily: `from_json` keeps the decoded object, and each field is
    converted (Decimal, datetime, enum, nested model) the first time it is read, then
    kept. A long list costs what its fields that are read cost.
    """

    _types: ClassVar[dict[str, tuple[str, Any]]] = {}

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        """The model of a decoded JSON object; a field the document lists but the answer
        leaves out reads as None. (The dataclass's __init__ is not run: a frozen one sets
        every field through object.__setattr__, the slow part of reading a long list.)"""
        if "_lazy" not in cls.__dict__:
            _lazy_fields(cls)
        model = object.__new__(cls)
        model.__dict__["_json"] = data
        return model

    def __getattr__(self, name: str) -> Any:
        # Reached only for `extra` not read yet (fields have their _Field descriptors).
        data = self.__dict__.get("_json")
        if data is None or name != "extra":
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        unknown = data.keys() - type(self)._types.keys()
        value = {key: data[key] for key in unknown} if unknown else {}
        self.__dict__["extra"] = value
        return value

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


class _Field:
    """A model field read from its JSON on first access, then kept in the instance
    (a non-data descriptor: the instance's value, once there, wins)."""

    __slots__ = ("attr", "convert", "json_name")

    def __init__(self, attr: str, json_name: str, convert: Converter | None):
        self.attr, self.json_name, self.convert = attr, json_name, convert

    def __get__(self, model: Any, owner: type | None = None) -> Any:
        if model is None:
            return self
        raw = model.__dict__["_json"].get(self.json_name)
        value = raw if raw is None or self.convert is None else self.convert(raw)
        model.__dict__[self.attr] = value
        return value


def _lazy_fields(cls: type[Model]) -> None:
    """Once per class: each field becomes a `_Field` descriptor (the dataclass's class
    defaults of optional fields give way to it; `__init__` keeps them)."""
    for json_name, (attr, convert) in cls._types.items():
        setattr(cls, attr, _Field(attr, json_name, None if convert in IDENTITY else convert))
    cls._lazy = True


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
