"""HTTP endpoints of the accounts app."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.payments.signing import SIGNATURE_HEADER
from accounts.services.deposits import payment_webhook_handle
from portal.api.errors import api_error_response
from portal.errors import DomainError, ErrorCode


@csrf_exempt
def payment_webhook(request: HttpRequest, provider: str) -> JsonResponse:
    """The payment provider's webhook: `POST /payments/webhooks/<provider>/`.

    Authenticated by the signature over the raw body, not by a session (hence
    csrf-exempt). 200 once an event is handled or recognised as a replay;
    errors as `{"code", "message"}`: 400 for a bad signature or body, 404 for
    an unknown provider or payment, 405 for anything but POST.
    """
    if request.method != "POST":
        response = api_error_response(
            ErrorCode.METHOD_NOT_ALLOWED, "Webhooks are delivered with POST."
        )
        response["Allow"] = "POST"
        return response
    try:
        result = payment_webhook_handle(
            provider=provider,
            body=request.body,
            signature_header=request.headers.get(SIGNATURE_HEADER, ""),
        )
    except DomainError as exc:
        return JsonResponse(exc.as_dict(), status=exc.status)
    return JsonResponse({"received": True, "event_id": result.event_id, "outcome": result.outcome})
