"""The admin's names for third-party apps: "Sign-in lockouts", not AXES; "Backup codes",
not OTP_STATIC. Each subclasses the package's own AppConfig (its ready() and checks
run unchanged) and only renames it; INSTALLED_APPS lists these instead of the
packages' dotted names. The app labels ("axes", "otp_static", "otp_totp") stay, so
migrations, permissions and admin URLs are the same."""

from axes.apps import AppConfig as AxesAppConfig
from django_otp.plugins.otp_static.apps import DefaultConfig as StaticConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TotpConfig


class SignInLockoutsConfig(AxesAppConfig):
    verbose_name = "Sign-in lockouts"


class BackupCodesConfig(StaticConfig):
    verbose_name = "Backup codes"


class AuthenticatorAppsConfig(TotpConfig):
    verbose_name = "Authenticator apps (two-factor sign-in)"
