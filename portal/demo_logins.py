"""The demo logins, importable without Django (the launcher prints them)."""

from decimal import Decimal

DEMO_PASSWORD = "prime-demo-2026"  # noqa: S105 - published demo credential
DEMO_OPS_EMAIL = "ops@prime.local"
# A fixed TOTP key so `make otp` and an authenticator app agree across restarts.
DEMO_OPS_TOTP_KEY = "3132333435363738393031323334353637383930"
DEMO_DEPOSIT = Decimal("250000")
DEMO_LINKED_EMAIL = "bob@prime.local"
DEMO_TRADERS = [
    ("alice@prime.local", "trader, custodial, $250,000 deposited, margin enabled"),
    (DEMO_LINKED_EMAIL, "non-custodial: a linked Kalshi key and Polymarket wallet (fake venues)"),
    ("carol@prime.local", "applicant, KYB pending (approve her in the admin)"),
]
