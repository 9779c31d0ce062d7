"""`make run`'s embedded database: every migration applies to a fresh SQLite file (and
accounts 0015 unapplies and applies again), the figures_version triggers are there and
work, and so does the notifications' INSERT … ON CONFLICT (the suite itself runs on
PostgreSQL)."""

import json
import os
import textwrap

from tests.live_server import python_run

TRIGGERS = {
    "accounts_account_figures_version",
    *(f"accounts_linkedcredential_figures_version_{op}" for op in ("insert", "update", "delete")),
    *(f"trading_position_figures_version_{op}" for op in ("insert", "update", "delete")),
}


def test_a_fresh_sqlite_database_migrates_with_its_figures_version_triggers(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    }
    out = python_run(
        textwrap.dedent(
            """
            import json
            import django
            django.setup()
            from django.core.management import call_command
            from django.db import connection
            call_command("migrate", verbosity=0, interactive=False)
            # accounts 0015 drops and restores the triggers around its table rebuild,
            # both ways: back before it and forward again keeps all of them.
            call_command("migrate", "accounts", "0014", verbosity=0, interactive=False)
            call_command("migrate", verbosity=0, interactive=False)
            with connection.cursor() as cursor:
                cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                print(json.dumps([name for (name,) in cursor.fetchall() if "figures" in name]))
            from decimal import Decimal
            from accounts.models import Account
            from tests.factories import open_account
            account = open_account()
            before = Account.objects.get(pk=account.pk).figures_version
            Account.objects.filter(pk=account.pk).update(cash_balance=Decimal("5"))
            Account.objects.filter(pk=account.pk).update(withdrawals_held=Decimal("0"))
            print(Account.objects.get(pk=account.pk).figures_version - before)
            from accounts.models import Notification
            from accounts.services.notifications import notification_create
            made = [
                notification_create(
                    user_id=account.owner_id, kind="system", title=t, body=t, dedupe_key="k"
                )
                for t in ("first", "second")
            ]
            print(json.dumps([created for _, created in made] + [made[1][0].title]))
            """
        ),
        env,
        timeout=300,
    )
    triggers, raised, notified = out.strip().splitlines()[-3:]
    assert set(json.loads(triggers)) == TRIGGERS
    assert raised == "1"  # the cash moved: up by one; an unchanged hold: not
    # A deduplicated notification's INSERT … ON CONFLICT DO NOTHING … RETURNING works on SQLite.
    assert json.loads(notified) == [True, False, "first"]
