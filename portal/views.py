"""Project-level views that belong to no app."""

from django.db import connection
from django.http import JsonResponse


def health(request):
    """Liveness/readiness probe: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
