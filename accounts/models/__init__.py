from .api_keys import ApiKey
from .approvals import Approval
from .audit import AuditLog
from .ledger import HouseAccount, Journal, LedgerAccount, Posting
from .linked import LinkedCredential
from .notifications import Notification
from .outbox import OutboxItem
from .payments import Deposit, PaymentWebhookEvent, WithdrawalRequest
from .users import Account, User

__all__ = [
    "Account",
    "ApiKey",
    "Approval",
    "AuditLog",
    "Deposit",
    "HouseAccount",
    "Journal",
    "LedgerAccount",
    "LinkedCredential",
    "Notification",
    "OutboxItem",
    "PaymentWebhookEvent",
    "Posting",
    "User",
    "WithdrawalRequest",
]
