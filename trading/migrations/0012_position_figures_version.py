"""A position written, added or removed raises its account's figures_version in the same
transaction (the function is accounts' migration 0014_account_figures_version's)."""

from django.db import migrations

POSTGRES_FORWARD = [
    """
    CREATE TRIGGER trading_position_figures_version
        AFTER INSERT OR UPDATE OR DELETE ON trading_position
        FOR EACH ROW EXECUTE FUNCTION account_figures_version_bump();
    """
]
POSTGRES_BACKWARD = ["DROP TRIGGER IF EXISTS trading_position_figures_version ON trading_position;"]

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER trading_position_figures_version_{op}
        AFTER {op.upper()} ON trading_position FOR EACH ROW
        BEGIN
            UPDATE accounts_account SET figures_version = figures_version + 1
                WHERE id = {"OLD" if op == "delete" else "NEW"}.account_id;
        END;
    """  # noqa: S608 - fixed names only
    for op in ("insert", "update", "delete")
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS trading_position_figures_version_{op};"
    for op in ("insert", "update", "delete")
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_account_figures_version"),
        ("trading", "0011_health_alerts"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
