"""`manage.py install_schedules`: create the default periodic tasks if missing."""

from django.core.management.base import BaseCommand

from portal.schedules import schedules_install


class Command(BaseCommand):
    help = "Install default Celery beat schedules without touching ones ops edited."

    def handle(self, *args, **options):
        created = schedules_install()
        if created:
            self.stdout.write("Installed schedules: " + ", ".join(created))
