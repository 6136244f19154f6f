"""Re-encrypting every stored company password under the newest key (``livedash secrets rotate``).

Resumable: companies are walked in id order in bounded batches, each batch committed on its own, and a
password already under the newest key is left alone, so a run that stops half-way (a crash, a deploy) is
finished by running it again. A password no key can read is reported by company id and left as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox, WrongSecretKey

__all__ = ["DEFAULT_BATCH_SIZE", "RotationProgress", "rotate_passwords"]

DEFAULT_BATCH_SIZE = 100


@dataclass
class RotationProgress:
    """What a run did so far: passwords examined, re-encrypted, already current, unreadable."""

    examined: int = 0
    rotated: int = 0
    current: int = 0
    batches: int = 0
    unreadable: list[uuid.UUID] = field(default_factory=list)


def _rotate_batch(
    db: Session, box: PasswordBox, after: uuid.UUID | None, batch_size: int, progress: RotationProgress
) -> uuid.UUID | None:
    """Rotate the next ``batch_size`` passwords after company ``after``; the last id seen, None at the end."""
    query = select(Company.id, Company.csv_password_encrypted).where(
        Company.csv_password_encrypted.is_not(None)
    )
    if after is not None:
        query = query.where(Company.id > after)
    # Locked for the batch: a concurrent `companies add` or delete waits instead of being overwritten.
    rows = db.execute(query.order_by(Company.id).limit(batch_size).with_for_update()).all()
    for company_id, token in rows:
        assert token is not None  # selected for having one
        progress.examined += 1
        if box.is_current(token):
            progress.current += 1
            continue
        try:
            rotated = box.rotate(token)
        except WrongSecretKey:
            progress.unreadable.append(company_id)
            continue
        db.execute(update(Company).where(Company.id == company_id).values(csv_password_encrypted=rotated))
        progress.rotated += 1
    return rows[-1][0] if rows else None


def rotate_passwords(
    engine: Engine,
    box: PasswordBox,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[RotationProgress], None] | None = None,
) -> RotationProgress:
    """Re-encrypt every stored password under ``box``'s newest key, one committed batch at a time;
    ``on_batch`` is called after each commit."""
    progress = RotationProgress()
    after: uuid.UUID | None = None
    while True:
        with Session(engine) as db, db.begin():
            after = _rotate_batch(db, box, after, batch_size, progress)
        if after is None:
            return progress
        progress.batches += 1
        if on_batch is not None:
            on_batch(progress)
