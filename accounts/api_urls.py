"""The accounts app's /v1/intelligence/ endpoints (mounted by portal.api.urls)."""

from django.urls import path

from accounts import api

urlpatterns = [
    path("account", api.AccountApi.as_view(), name="api-account"),
    path("balances", api.BalancesApi.as_view(), name="api-balances"),
    path("account/balances", api.BalancesApi.as_view(), name="api-account-balances"),
    path("deposits", api.DepositsApi.as_view(), name="api-deposits"),
    path("deposits/<str:deposit_id>", api.DepositDetailApi.as_view(), name="api-deposit"),
    path("withdrawals", api.WithdrawalsApi.as_view(), name="api-withdrawals"),
    path(
        "withdrawals/<str:withdrawal_id>",
        api.WithdrawalDetailApi.as_view(),
        name="api-withdrawal",
    ),
    path(
        "withdrawals/<str:withdrawal_id>/cancel",
        api.WithdrawalCancelApi.as_view(),
        name="api-withdrawal-cancel",
    ),
    path("transactions", api.TransactionListApi.as_view(), name="api-transactions"),
]
