"""Names and values for the few statements written as SQL on hot paths.

Taken from the models, so a renamed table or column cannot leave a statement
behind, and quoted and converted the way the current database wants.
"""

from django.db import connection


def table(model) -> str:
    """The model's quoted table name."""
    return connection.ops.quote_name(model._meta.db_table)


def column(model, field: str) -> str:
    """The quoted column name of a model field."""
    return connection.ops.quote_name(model._meta.get_field(field).column)


def db_value(model, field: str, value):
    """A Python value as the database stores it in that field."""
    return model._meta.get_field(field).get_db_prep_value(value, connection)


def python_value(model, field: str, value):
    """A value read by a statement, converted as the ORM would (SQLite returns
    naive datetimes and integer booleans, for instance)."""
    model_field = model._meta.get_field(field)
    col = model_field.get_col(model._meta.db_table)
    converters = connection.ops.get_db_converters(col)
    converters += model_field.get_db_converters(connection)
    for convert in converters:
        value = convert(value, col, connection)
    return value
