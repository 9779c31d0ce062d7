"""Small database helpers the ORM has no single-statement form for."""

import functools
from collections.abc import Sequence
from decimal import Decimal
from typing import TypeVar

from django.db import connections, router
from django.db.models import Model
from django.db.models.expressions import Col

from portal.errors import NotFound

M = TypeVar("M", bound=Model)


def column_converters(column: Col, connection) -> list:
    """The functions the ORM applies to a raw database value of `column` (SQLite, for
    one, returns decimals and datetimes raw): call each as f(value, column, connection)."""
    return connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def row_add(instance: Model, **deltas: Decimal) -> None:
    """Add `deltas` to numeric columns of `instance`'s row in one UPDATE … RETURNING.

    The instance gets the new values as the database computed them (also
    correct when another writer changed the row first). The caller holds the
    row lock where the new values feed a check.
    """
    model = type(instance)
    using = router.db_for_write(model, instance=instance)
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in deltas]
    sets = ", ".join(f"{quote(f.column)} = {quote(f.column)} + %s" for f in fields)
    returning = ", ".join(quote(f.column) for f in fields)
    params = [
        f.get_db_prep_save(delta, connection)
        for f, delta in zip(fields, deltas.values(), strict=True)
    ]
    # Table and column names come from the model's meta; values are parameters.
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {sets} "  # noqa: S608
        f"WHERE {quote(model._meta.pk.column)} = %s RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, instance.pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"{model.__name__} {instance.pk} does not exist.")
    for field, value in zip(fields, row, strict=True):
        column = field.get_col(model._meta.db_table)
        for converter in column_converters(column, connection):
            value = converter(value, column, connection)
        setattr(instance, field.attname, value)


_Converters = list[tuple[int, list, Col]]


@functools.cache
def _pk_select(model: type[Model], using: str) -> tuple[str, list[str], _Converters]:
    connection = connections[using]
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields
    table = model._meta.db_table
    sql = (
        f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(table)} "  # noqa: S608 - names from the model
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(table)
        functions = column_converters(column, connection)
        if functions:
            converters.append((index, functions, column))
    return sql, [f.attname for f in fields], converters


def pk_get(model: type[M], pk: int) -> M:
    """`model.objects.get(pk=pk)` as one fixed statement, without the ORM's per-call
    query compilation (a hot path's largest cost: the API reads the key's account on
    every request). Raises model.DoesNotExist."""
    using = router.db_for_read(model)
    sql, attnames, converters = _pk_select(model, using)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        raise model.DoesNotExist(f"{model.__name__} {pk} does not exist.")
    if converters:
        values = list(row)
        for index, functions, column in converters:
            for convert in functions:
                values[index] = convert(values[index], column, connection)
        row = values
    return model.from_db(using, attnames, row)


def owned_get(model: type[M], *, account_ids: Sequence[int], public_id: str, what: str) -> M:
    """The `model` row (with its account) named `public_id` among `account_ids`' own.

    Raises NotFound, naming `what`, for an unknown id and for another customer's
    alike (one answer for both: an id says nothing about who holds it).
    """
    row = (
        model.objects.select_related("account")
        .filter(public_id=public_id, account_id__in=account_ids)
        .first()
    )
    if row is None:
        raise NotFound(f"No {what} {public_id!r}.")
    return row
