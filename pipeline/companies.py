"""Managing companies (tenants): callable from the CLI, the admin API and tests alike."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.enums import CompanyStatus
from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox
from pipeline.sources.urls import validate_url_syntax

__all__ = [
    "CompanyInputError",
    "UnknownCompany",
    "add_company",
    "get_company",
    "list_companies",
    "set_status",
]


class CompanyInputError(ValueError):
    """A company attribute given by an operator is not acceptable; the message says which and why."""


class UnknownCompany(LookupError):
    def __init__(self, company_id: str) -> None:
        super().__init__(f"no company with id {company_id!r}")


def _parse_id(company_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(company_id)
    except ValueError:
        raise UnknownCompany(company_id) from None


def add_company(
    db: Session,
    *,
    name: str,
    csv_url: str,
    username: str | None = None,
    password: str | None = None,
    password_box: PasswordBox | None = None,
    region: str | None = None,
    timezone: str = "UTC",
) -> Company:
    """Create an ACTIVE company. The password is stored encrypted, so a ``password_box`` is needed with it."""
    if not name.strip():
        raise CompanyInputError("--name: must not be empty")
    try:
        validate_url_syntax(csv_url)
    except ValueError as exc:
        raise CompanyInputError(f"--csv-url: {exc}") from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CompanyInputError(f"--timezone: unknown time zone {timezone!r}") from None
    encrypted = None
    if password:
        if password_box is None:
            raise CompanyInputError("--password: a password needs SECRET_KEY to be stored encrypted")
        encrypted = password_box.encrypt(password)
    company = Company(
        name=name.strip(),
        csv_url=csv_url,
        csv_username=username or None,
        csv_password_encrypted=encrypted,
        region=region or None,
        timezone=timezone,
        status=CompanyStatus.ACTIVE,
    )
    db.add(company)
    db.flush()
    return company


def get_company(db: Session, company_id: str) -> Company:
    company = db.get(Company, _parse_id(company_id))
    if company is None:
        raise UnknownCompany(company_id)
    return company


def list_companies(db: Session) -> Sequence[Company]:
    return db.scalars(select(Company).order_by(Company.created_at, Company.id)).all()


def set_status(db: Session, company_id: str, status: CompanyStatus) -> Company:
    company = get_company(db, company_id)
    company.status = status
    db.flush()
    return company
