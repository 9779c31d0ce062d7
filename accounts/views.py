"""HTTP endpoints of the accounts app."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def payment_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    raise NotImplementedError  # filled in with the payments service
