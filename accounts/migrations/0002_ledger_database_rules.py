"""The database, not only Python, guards the ledger.

PostgreSQL: a deferred constraint trigger checks at commit that every journal
touched sums to zero and has at least two postings; row triggers refuse any
UPDATE or DELETE of postings and journals. SQLite (make run's embedded
default) gets the immutability triggers; its balance check is the ledger
service's (SQLite has no deferred triggers).
"""

from django.db import migrations

POSTGRES_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_journal_balanced() RETURNS trigger AS $$
    DECLARE
        jid bigint;
        total numeric;
        n integer;
    BEGIN
        IF TG_TABLE_NAME = 'accounts_journal' THEN
            jid := NEW.id;
        ELSE
            jid := NEW.journal_id;
        END IF;
        SELECT COALESCE(SUM(amount), 0), COUNT(*) INTO total, n
            FROM accounts_posting WHERE journal_id = jid;
        IF n < 2 THEN
            RAISE EXCEPTION 'journal % has % posting(s); a journal needs at least two', jid, n
                USING ERRCODE = 'check_violation';
        END IF;
        IF total <> 0 THEN
            RAISE EXCEPTION 'journal % does not balance: its postings sum to %', jid, total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER accounts_posting_append_only
        BEFORE UPDATE OR DELETE ON accounts_posting
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
    """,
    """
    CREATE TRIGGER accounts_journal_append_only
        BEFORE UPDATE OR DELETE ON accounts_journal
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
    """,
    """
    CREATE CONSTRAINT TRIGGER accounts_posting_balanced
        AFTER INSERT ON accounts_posting
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_journal_balanced();
    """,
    """
    CREATE CONSTRAINT TRIGGER accounts_journal_balanced
        AFTER INSERT ON accounts_journal
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_journal_balanced();
    """,
]

POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS accounts_journal_balanced ON accounts_journal;",
    "DROP TRIGGER IF EXISTS accounts_posting_balanced ON accounts_posting;",
    "DROP TRIGGER IF EXISTS accounts_journal_append_only ON accounts_journal;",
    "DROP TRIGGER IF EXISTS accounts_posting_append_only ON accounts_posting;",
    "DROP FUNCTION IF EXISTS ledger_journal_balanced();",
    "DROP FUNCTION IF EXISTS ledger_refuse_change();",
]

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER accounts_{table}_no_{op}
        BEFORE {op.upper()} ON accounts_{table}
        BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only: {op.upper()} on accounts_{table} refused'); END;
    """
    for table in ("posting", "journal")
    for op in ("update", "delete")
]

SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS accounts_{table}_no_{op};"
    for table in ("posting", "journal")
    for op in ("update", "delete")
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
