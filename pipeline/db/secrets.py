"""Encryption of company CSV passwords at rest (Fernet: AES-128-CBC with an HMAC-SHA256 tag), with rotation.

Keys: ``SECRET_KEY`` is the newest, ``SECRET_KEY_FALLBACKS`` the older ones, newest first. From each the
Fernet key is derived with HKDF-SHA256 (no salt, info :data:`KEY_INFO`, 32 bytes: the signing and the
encryption key of Fernet). Values stored before rotation existed were encrypted under the first derivation,
``SHA-256(b"livedash-csv-password:" + key)``; it is still accepted for decryption, so existing data survives,
and ``livedash secrets rotate`` re-encrypts them under HKDF of the newest key.

New values are always encrypted under the newest key; a value is read with whichever key (and derivation)
made it (:class:`~cryptography.fernet.MultiFernet`). The plain password exists only in memory, for the HTTP
request that needs it; it is never logged or printed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.errors import PermanentError
from pipeline.settings import Settings

__all__ = ["KEY_INFO", "PasswordBox", "SecretKeyMissing", "WrongSecretKey", "derive_key", "legacy_key"]

#: HKDF's ``info``: binds the derived key to this one use (changing it would make every value unreadable).
KEY_INFO = b"livedash csv-password fernet-key v2"
#: The prefix of the first derivation (a single SHA-256), read but no longer written.
LEGACY_PREFIX = b"livedash-csv-password:"


class SecretKeyMissing(PermanentError, RuntimeError):
    """A password must be encrypted or decrypted but ``SECRET_KEY`` is empty."""

    def __init__(self) -> None:
        super().__init__("SECRET_KEY is not set: it is needed to store or read company CSV passwords")


class WrongSecretKey(PermanentError, RuntimeError):
    """The stored password was encrypted with a key that is neither ``SECRET_KEY`` nor a fallback."""

    def __init__(self) -> None:
        super().__init__(
            "a stored CSV password cannot be decrypted: it was encrypted under a key that is neither "
            "SECRET_KEY nor one of SECRET_KEY_FALLBACKS"
        )


def derive_key(secret_key: str) -> bytes:
    """The Fernet key of ``secret_key``: HKDF-SHA256, no salt, info :data:`KEY_INFO`, 32 bytes."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def legacy_key(secret_key: str) -> bytes:
    """The Fernet key of the first derivation (values stored before key rotation existed)."""
    return base64.urlsafe_b64encode(hashlib.sha256(LEGACY_PREFIX + secret_key.encode()).digest())


class PasswordBox:
    """Encrypts under the newest key; decrypts under any of the keys, in either derivation."""

    def __init__(self, secret_key: str, fallbacks: Sequence[str] = ()) -> None:
        if not secret_key:
            raise SecretKeyMissing()
        self._newest = Fernet(derive_key(secret_key))
        readers = [self._newest, Fernet(legacy_key(secret_key))]
        for key in fallbacks:
            readers += [Fernet(derive_key(key)), Fernet(legacy_key(key))]
        self._fernet = MultiFernet(readers)

    @classmethod
    def from_settings(cls, settings: Settings) -> PasswordBox:
        """The box of ``SECRET_KEY`` with ``SECRET_KEY_FALLBACKS``."""
        fallbacks = [key.get_secret_value() for key in settings.secret_key_fallbacks]
        return cls(settings.secret_key.get_secret_value(), fallbacks)

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken:
            raise WrongSecretKey() from None

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is encrypted under the newest key (in the current derivation)."""
        try:
            self._newest.decrypt(token.encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the newest key (its timestamp kept)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise WrongSecretKey() from None

    def __repr__(self) -> str:
        return "PasswordBox(<keys hidden>)"
