"""A company's egress for one fetch: its credentials in clear, scoped to its origins (both fetch stages)."""

from __future__ import annotations

from functools import lru_cache

from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox
from pipeline.settings import Settings
from pipeline.sources.credentials import Credentials

__all__ = ["company_credentials"]


def company_credentials(settings: Settings, company: Company) -> Credentials | None:
    """The company's credentials, scoped to its CSV origin and listed origins; ``None`` if it has none.

    The password is decrypted just for the fetch at hand. The company's private-network rule is
    ``company.allow_private_networks`` (``None``: CSV_ALLOW_PRIVATE_NETWORKS), given to the fetch beside.

    Raises:
      RuntimeError: When the password cannot be decrypted (no or another SECRET_KEY).
      ValueError: When its CSV URL or one of its origins does not parse.
    """
    encrypted = company.csv_password_encrypted
    password = _password_box(settings).decrypt(encrypted) if encrypted else None
    return Credentials.scoped(
        company.csv_url,
        company.csv_username,
        password,
        extra_origins=company.transcript_origins,
        allow_http=company.allow_http,
    )


def _password_box(settings: Settings) -> PasswordBox:
    fallbacks = tuple(key.get_secret_value() for key in settings.secret_key_fallbacks)
    return _cached_box(settings.secret_key.get_secret_value(), fallbacks)


@lru_cache(maxsize=4)
def _cached_box(secret: str, fallbacks: tuple[str, ...]) -> PasswordBox:
    """One box per set of keys, made once rather than for every row of a chunk."""
    return PasswordBox(secret, fallbacks)
