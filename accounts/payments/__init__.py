"""Payment providers behind deposits and withdrawals.

`payment_provider()` returns the configured one (settings.PAYMENT_PROVIDER);
the embedded default is `simulated.SimulatedPaymentProvider`.
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from accounts.payments.base import PaymentProvider


def payment_provider() -> PaymentProvider:
    """The configured payment provider (a dotted class path in settings)."""
    provider_class = import_string(settings.PAYMENT_PROVIDER)
    if not (isinstance(provider_class, type) and issubclass(provider_class, PaymentProvider)):
        raise ImproperlyConfigured(
            f"PAYMENT_PROVIDER {settings.PAYMENT_PROVIDER!r} is not a PaymentProvider."
        )
    return provider_class()
