"""Account.figures_version: goes up in the transaction that changes what the account's
priced figures rest on, so figures stored by the margin engine are served only while
they are current (trading.services.figures_store; read-your-writes after a trade or a
deposit).

Set by triggers, whatever writes the row (the ledger, reservations, holds, ops, a
full `save()` of a stale instance): on accounts_account, a change of cash_balance,
withdrawals_held, orders_reserved, margin_enabled or kind, or an explicit increase
(the position and linked-credential triggers' `figures_version + 1`), raises it by
one; any other write keeps it (a stale instance cannot lower it). On
accounts_linkedcredential, a write of cash_balance (a non-custodial account's cash)
raises its account's. The positions' trigger is trading's migration
0012_position_figures_version.
"""

from django.db import migrations, models

TRACKED = ("cash_balance", "withdrawals_held", "orders_reserved", "margin_enabled", "kind")

POSTGRES_FORWARD = [
    f"""
    CREATE OR REPLACE FUNCTION account_figures_version_keep() RETURNS trigger AS $$
    BEGIN
        IF NEW.figures_version > OLD.figures_version
           OR ({", ".join(f"NEW.{c}" for c in TRACKED)})
              IS DISTINCT FROM ({", ".join(f"OLD.{c}" for c in TRACKED)}) THEN
            NEW.figures_version := OLD.figures_version + 1;
        ELSE
            NEW.figures_version := OLD.figures_version;
        END IF;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER accounts_account_figures_version
        BEFORE UPDATE ON accounts_account
        FOR EACH ROW EXECUTE FUNCTION account_figures_version_keep();
    """,
    """
    CREATE OR REPLACE FUNCTION account_figures_version_bump() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            UPDATE accounts_account SET figures_version = figures_version + 1
                WHERE id = OLD.account_id;
            RETURN OLD;
        END IF;
        UPDATE accounts_account SET figures_version = figures_version + 1
            WHERE id = NEW.account_id;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER accounts_linkedcredential_figures_version
        AFTER INSERT OR DELETE OR UPDATE OF cash_balance ON accounts_linkedcredential
        FOR EACH ROW EXECUTE FUNCTION account_figures_version_bump();
    """,
]

POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS accounts_linkedcredential_figures_version "
    "ON accounts_linkedcredential;",
    "DROP TRIGGER IF EXISTS accounts_account_figures_version ON accounts_account;",
    "DROP FUNCTION IF EXISTS account_figures_version_bump();",
    "DROP FUNCTION IF EXISTS account_figures_version_keep();",
]

# Fixed names only in the f-strings below (no input): S608 does not apply.
SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER accounts_account_figures_version
        AFTER UPDATE ON accounts_account FOR EACH ROW
        WHEN {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in TRACKED)}
            OR NEW.figures_version < OLD.figures_version
        BEGIN
            UPDATE accounts_account SET figures_version = OLD.figures_version + 1
                WHERE id = NEW.id;
        END;
    """,  # noqa: S608
    *(
        f"""
        CREATE TRIGGER accounts_linkedcredential_figures_version_{op}
            AFTER {op.upper()}{" OF cash_balance" if op == "update" else ""}
            ON accounts_linkedcredential FOR EACH ROW
            BEGIN
                UPDATE accounts_account SET figures_version = figures_version + 1
                    WHERE id = {"OLD" if op == "delete" else "NEW"}.account_id;
            END;
        """  # noqa: S608
        for op in ("insert", "update", "delete")
    ),
]

SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS accounts_account_figures_version;",
    *(
        f"DROP TRIGGER IF EXISTS accounts_linkedcredential_figures_version_{op};"
        for op in ("insert", "update", "delete")
    ),
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0013_outbox_request_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="figures_version",
            field=models.PositiveBigIntegerField(
                default=0,
                editable=False,
                help_text="Goes up by one in the transaction that changes what the account's "
                "priced figures rest on (its cash, holds, reservations, margin flag, linked "
                "cash or positions): set by database triggers, whatever wrote the row. Figures "
                "stored by the margin engine (trading.services.figures_store) are served only "
                "while it matches.",
            ),
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        ),
    ]
