"""The staff area's URLs (mounted at /ops/ by portal.urls).

Every view here is guarded by accounts.staff (staff_page / staff_json): active
staff with a 2FA-verified session. Each part adds its routes below.
"""

from django.urls import path

from accounts import ops_views as ops_approvals
from trading.ops import accounts as ops_accounts
from trading.ops import desk
from trading.ops import policy as ops_policy

urlpatterns = [
    path("", desk.desk_page, name="ops_desk"),
    path("desk.json", desk.desk_json, name="ops_desk_json"),
    path("accounts/<str:public_id>/", ops_accounts.account_page, name="ops_account"),
    path(
        "accounts/<str:public_id>/actions/<slug:action>/",
        ops_accounts.account_action,
        name="ops_account_action",
    ),
    path("risk-policy/", ops_policy.risk_policy_page, name="ops_risk_policy"),
    path(
        "risk-policy/preview/<str:token>/",
        ops_policy.risk_policy_preview_status,
        name="ops_risk_policy_preview",
    ),
    # KYB and withdrawal review, the approvals queue (accounts' data: accounts.ops_views).
    path("kyb/<int:user_id>/", ops_approvals.kyb_review_page, name="ops_kyb_review"),
    path(
        "withdrawals/<str:withdrawal_id>/",
        ops_approvals.withdrawal_review_page,
        name="ops_withdrawal_review",
    ),
    path("approvals/", ops_approvals.approvals_page, name="ops_approvals"),
    path("approvals/<str:approval_id>/", ops_approvals.approval_page, name="ops_approval"),
    path(
        "approvals/<str:approval_id>/decide/",
        ops_approvals.approval_decide,
        name="ops_approval_decide",
    ),
]
