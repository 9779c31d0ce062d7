"""The ledger refuses TRUNCATE, and postings added to a journal another transaction made.

PostgreSQL: statement triggers refuse TRUNCATE of postings and journals (a
superuser can still empty them deliberately: `SET session_replication_role =
replica` switches triggers off, as the test suite's flush does); every journal
records the transaction that created it (`txid_current()`, the top-level id
also inside savepoints), and a posting is accepted only for a journal of the
inserting transaction, so a committed journal can never gain postings, even
balanced ones. SQLite (`make run`'s embedded default) has no transaction ids
or TRUNCATE: its immutability triggers stay as they are.
"""

from django.db import migrations

POSTGRES_FORWARD = [
    """
    CREATE TRIGGER accounts_posting_no_truncate
        BEFORE TRUNCATE ON accounts_posting
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
    """,
    """
    CREATE TRIGGER accounts_journal_no_truncate
        BEFORE TRUNCATE ON accounts_journal
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
    """,
    "ALTER TABLE accounts_journal ADD COLUMN created_txid bigint NOT NULL DEFAULT txid_current();",
    """
    CREATE OR REPLACE FUNCTION ledger_posting_in_journal_transaction() RETURNS trigger AS $$
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM accounts_journal
            WHERE id = NEW.journal_id AND created_txid = txid_current()
        ) THEN
            RAISE EXCEPTION 'journal % is sealed: postings are added only in the transaction '
                'that creates their journal', NEW.journal_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER accounts_posting_in_journal_transaction
        BEFORE INSERT ON accounts_posting
        FOR EACH ROW EXECUTE FUNCTION ledger_posting_in_journal_transaction();
    """,
]

POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS accounts_posting_in_journal_transaction ON accounts_posting;",
    "DROP FUNCTION IF EXISTS ledger_posting_in_journal_transaction();",
    "ALTER TABLE accounts_journal DROP COLUMN IF EXISTS created_txid;",
    "DROP TRIGGER IF EXISTS accounts_journal_no_truncate ON accounts_journal;",
    "DROP TRIGGER IF EXISTS accounts_posting_no_truncate ON accounts_posting;",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_withdrawals_held")]

    operations = [migrations.RunPython(_run(POSTGRES_FORWARD), _run(POSTGRES_BACKWARD))]
