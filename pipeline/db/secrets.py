"""Encryption of company CSV passwords at rest (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The key is derived from ``SECRET_KEY``. The plain password exists only in memory, for the HTTP request
that needs it; it is never logged or printed.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from pipeline.errors import PermanentError

__all__ = ["PasswordBox", "SecretKeyMissing", "WrongSecretKey"]


class SecretKeyMissing(PermanentError, RuntimeError):
    """A password must be encrypted or decrypted but ``SECRET_KEY`` is empty."""

    def __init__(self) -> None:
        super().__init__("SECRET_KEY is not set: it is needed to store or read company CSV passwords")


class WrongSecretKey(PermanentError, RuntimeError):
    """The stored password was encrypted with another ``SECRET_KEY``."""

    def __init__(self) -> None:
        super().__init__(
            "a stored CSV password cannot be decrypted: SECRET_KEY differs from the one used to store it"
        )


class PasswordBox:
    """Encrypts and decrypts passwords with a key derived from the application secret."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise SecretKeyMissing()
        digest = hashlib.sha256(b"livedash-csv-password:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise WrongSecretKey() from None

    def __repr__(self) -> str:
        return "PasswordBox(<key hidden>)"
