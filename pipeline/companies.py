"""Managing companies (tenants): callable from the CLI, the admin API and tests alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.db.enums import CompanyStatus
from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox
from pipeline.sources.credentials import normalize_origin
from pipeline.sources.private_networks import PRIVATE_NETWORK_RULES, PrivateNetworks
from pipeline.sources.urls import validate_url_syntax

__all__ = [
    "CompanyInputError",
    "UnknownCompany",
    "add_company",
    "get_company",
    "list_companies",
    "set_status",
    "update_company",
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
    transcript_origins: Iterable[str] = (),
    allow_http: bool = False,
    private_networks: PrivateNetworks = "default",
) -> Company:
    """Create an ACTIVE company. The password is stored encrypted, so a ``password_box`` is needed with it."""
    if not name.strip():
        raise CompanyInputError("--name: must not be empty")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CompanyInputError(f"--timezone: unknown time zone {timezone!r}") from None
    company = Company(
        name=name.strip(),
        csv_url=_checked_csv_url(csv_url),
        csv_username=username or None,
        csv_password_encrypted=_encrypted(password, password_box),
        region=region or None,
        timezone=timezone,
        status=CompanyStatus.ACTIVE,
        transcript_origins=_checked_origins(transcript_origins),
        allow_http=allow_http,
        allow_private_networks=PRIVATE_NETWORK_RULES[private_networks],
    )
    _check_plain_http(company)
    db.add(company)
    db.flush()
    return company


def update_company(
    db: Session,
    company_id: str,
    *,
    csv_url: str | None = None,
    username: str | None = None,
    password: str | None = None,
    password_box: PasswordBox | None = None,
    transcript_origins: Iterable[str] | None = None,
    allow_http: bool | None = None,
    private_networks: PrivateNetworks | None = None,
) -> Company:
    """Change what is given (``None`` keeps the current value); ``transcript_origins`` replaces the list."""
    company = get_company(db, company_id)
    if csv_url is not None:
        company.csv_url = _checked_csv_url(csv_url)
    if username is not None:
        company.csv_username = username or None
    if password is not None:
        company.csv_password_encrypted = _encrypted(password, password_box)
    if transcript_origins is not None:
        company.transcript_origins = _checked_origins(transcript_origins)
    if allow_http is not None:
        company.allow_http = allow_http
    if private_networks is not None:
        company.allow_private_networks = PRIVATE_NETWORK_RULES[private_networks]
    _check_plain_http(company)
    db.flush()
    return company


def _checked_csv_url(csv_url: str) -> str:
    try:
        url = validate_url_syntax(csv_url)
    except ValueError as exc:
        raise CompanyInputError(f"--csv-url: {exc}") from None
    if httpx.URL(url).userinfo:
        # Stored and listed in clear otherwise; the message leaves the URL out, as it holds the password.
        raise CompanyInputError(
            "--csv-url: a URL with user info (user:password@host) is refused: give the user with --username "
            "and the password with --password-prompt, --password-stdin or LIVEDASH_CSV_PASSWORD"
        )
    return url


def _checked_origins(origins: Iterable[str]) -> list[str]:
    try:
        return sorted({normalize_origin(origin) for origin in origins})
    except ValueError as exc:
        raise CompanyInputError(f"--transcript-origin: {exc}") from None


def _encrypted(password: str | None, password_box: PasswordBox | None) -> str | None:
    if not password:
        return None
    if password_box is None:
        raise CompanyInputError("--password: a password needs SECRET_KEY to be stored encrypted")
    return password_box.encrypt(password)


def _check_plain_http(company: Company) -> None:
    """Refuse credentials that would travel over plain http, unless the company allows it."""
    if company.allow_http or not (company.csv_username and company.csv_password_encrypted):
        return
    if company.csv_url.lower().startswith("http://"):
        raise CompanyInputError(
            "--csv-url: the credentials would travel over plain http: use an https URL, or --allow-http"
        )
    insecure = [origin for origin in company.transcript_origins if origin.startswith("http://")]
    if insecure:
        raise CompanyInputError(
            f"--transcript-origin: the credentials would travel over plain http to {insecure[0]}: "
            "use https, or --allow-http"
        )


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
