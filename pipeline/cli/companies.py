"""``livedash companies``: add, update, list, suspend, activate and delete tenants."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.errors import exit_not_found, exit_with_usage_error
from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.db.enums import CompanyStatus
from pipeline.sources.private_networks import PrivateNetworks

if TYPE_CHECKING:
    from decimal import Decimal

    from pipeline.db.models import Company
    from pipeline.db.secrets import PasswordBox

app = typer.Typer(help="Companies (tenants) whose CSV exports are imported.", no_args_is_help=True)


def _describe(company: Company) -> dict[str, Any]:
    """What may be shown of a company: everything but the password itself (nor one left in its URL)."""
    from pipeline.sources.urls import redact_url

    return {
        "id": str(company.id),
        "name": company.name,
        "status": company.status.value,
        "csv_url": redact_url(company.csv_url),
        "csv_username": company.csv_username,
        "has_password": company.csv_password_encrypted is not None,
        "transcript_origins": list(company.transcript_origins),
        "allow_http": company.allow_http,
        "allow_private_networks": company.allow_private_networks,
        "region": company.region,
        "timezone": company.timezone,
        "created_at": company.created_at.isoformat(),
    }


#: Where a password may come from besides --password, whose value other local users see in `ps`.
PASSWORD_ENVVAR = "LIVEDASH_CSV_PASSWORD"  # noqa: S105  the name of a variable, not a password

_PASSWORD_HELP = (
    "HTTP Basic password (stored encrypted). On the command line it is visible to other local users (ps) and "
    f"kept in shell history: prefer --password-prompt, --password-stdin or {PASSWORD_ENVVAR}."
)
_ORIGIN_HELP = (
    "Another origin (https://host[:port]) that receives the credentials, for transcripts served there; "
    "repeatable. The CSV URL's origin always does."
)
_PRIVATE_HELP = (
    "Whether the company's URLs may reach private networks: allow, deny, or default "
    "(CSV_ALLOW_PRIVATE_NETWORKS). Link-local and cloud metadata addresses are refused whatever this says."
)


def _read_password(password: str | None, from_stdin: bool, prompt: bool) -> str | None:
    """The password from exactly one of --password (or its variable), standard input or a prompt."""
    if sum((password is not None, from_stdin, prompt)) > 1:
        exit_with_usage_error(
            f"--password ({PASSWORD_ENVVAR}), --password-stdin and --password-prompt exclude each other"
        )
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if prompt:
        entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return entered
    return password


def _password_box() -> PasswordBox | None:
    from pipeline.db.secrets import PasswordBox
    from pipeline.settings import get_settings

    secret = get_settings().secret_key.get_secret_value()
    return PasswordBox(secret) if secret else None


@app.command()
def add(
    name: str = typer.Option(..., "--name", help="Display name."),
    csv_url: str = typer.Option(..., "--csv-url", help="http(s) URL of the company's session CSV."),
    username: str | None = typer.Option(
        None, "--username", help="HTTP Basic user for the CSV and transcripts."
    ),
    password: str | None = typer.Option(None, "--password", envvar=PASSWORD_ENVVAR, help=_PASSWORD_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    password_prompt: bool = typer.Option(False, "--password-prompt", help="Ask for the password."),
    region: str | None = typer.Option(None, "--region", help="Deployment region that imports this company."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA zone of the company's CSV timestamps."),
    transcript_origins: Annotated[
        list[str] | None, typer.Option("--transcript-origin", help=_ORIGIN_HELP)
    ] = None,
    allow_http: bool = typer.Option(
        False, "--allow-http", help="Let the credentials travel over plain http (unencrypted)."
    ),
    private_networks: Annotated[
        PrivateNetworks, typer.Option("--private-networks", help=_PRIVATE_HELP)
    ] = "default",
) -> None:
    """Add an ACTIVE company and print its id."""
    from pipeline import companies as company_service
    from pipeline.db.engine import get_session_factory

    secret = _read_password(password, password_stdin, password_prompt)
    with get_session_factory().begin() as db:
        try:
            company = company_service.add_company(
                db,
                name=name,
                csv_url=csv_url,
                username=username,
                password=secret,
                password_box=_password_box(),
                region=region,
                timezone=timezone,
                transcript_origins=transcript_origins or (),
                allow_http=allow_http,
                private_networks=private_networks,
            )
        except company_service.CompanyInputError as exc:
            exit_with_usage_error(str(exc))
        company_id = str(company.id)
    typer.echo(company_id)


@app.command()
def update(
    company_id: str = typer.Argument(..., metavar="ID"),
    csv_url: str | None = typer.Option(None, "--csv-url", help="New URL of the company's session CSV."),
    username: str | None = typer.Option(None, "--username", help="New HTTP Basic user."),
    password: str | None = typer.Option(None, "--password", envvar=PASSWORD_ENVVAR, help=_PASSWORD_HELP),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    password_prompt: bool = typer.Option(False, "--password-prompt", help="Ask for the password."),
    transcript_origins: Annotated[
        list[str] | None, typer.Option("--transcript-origin", help=_ORIGIN_HELP + " Replaces the list.")
    ] = None,
    no_transcript_origins: bool = typer.Option(
        False, "--no-transcript-origins", help="Send the credentials to the CSV URL's origin only."
    ),
    allow_http: bool | None = typer.Option(
        None, "--allow-http/--no-allow-http", help="Whether the credentials may travel over plain http."
    ),
    private_networks: Annotated[
        PrivateNetworks | None, typer.Option("--private-networks", help=_PRIVATE_HELP)
    ] = None,
) -> None:
    """Change a company's CSV URL, credentials or egress settings; what is not given stays."""
    from pipeline import companies as company_service
    from pipeline.db.engine import get_session_factory

    secret = _read_password(password, password_stdin, password_prompt)
    origins = [] if no_transcript_origins else transcript_origins or None
    with get_session_factory().begin() as db:
        try:
            company = company_service.update_company(
                db,
                company_id,
                csv_url=csv_url,
                username=username,
                password=secret,
                password_box=_password_box(),
                transcript_origins=origins,
                allow_http=allow_http,
                private_networks=private_networks,
            )
        except company_service.UnknownCompany as exc:
            exit_not_found(str(exc))
        except company_service.CompanyInputError as exc:
            exit_with_usage_error(str(exc))
        typer.echo(f"{company.id} updated")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List every company."""
    from pipeline import companies as company_service
    from pipeline.db.engine import get_session_factory

    with get_session_factory()() as db:
        rows = [_describe(company) for company in company_service.list_companies(db)]
    if as_json:
        print_json([camel_case(row) for row in rows])
        return
    table = new_table("id", "name", "status", "region", "timezone", "csv_url")
    for row in rows:
        table.add_row(
            row["id"], row["name"], row["status"], row["region"] or "", row["timezone"], row["csv_url"]
        )
    print_tables(table)


def _set_status(company_id: str, status: CompanyStatus) -> None:
    from pipeline import companies as company_service
    from pipeline.db.engine import get_session_factory

    with get_session_factory().begin() as db:
        try:
            company = company_service.set_status(db, company_id, status)
        except company_service.UnknownCompany as exc:
            exit_not_found(str(exc))
        typer.echo(f"{company.id} {company.status.value}")


@app.command()
def suspend(company_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Stop processing a company at every stage."""
    _set_status(company_id, CompanyStatus.SUSPENDED)


@app.command()
def activate(company_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Resume processing a company."""
    _set_status(company_id, CompanyStatus.ACTIVE)


@app.command()
def delete(
    company_id: str = typer.Argument(..., metavar="ID"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a company with all its sessions, messages, analyses, imports, batches and fetch history."""
    from pipeline import companies as company_service
    from pipeline.company_deletion import delete_company
    from pipeline.db.engine import get_engine, get_session_factory

    with get_session_factory()() as db:
        try:
            company = company_service.get_company(db, company_id)
        except company_service.UnknownCompany as exc:
            exit_not_found(str(exc))
        name, key = company.name, company.id
    if not yes:
        typer.confirm(
            f"Delete company {name!r} ({key}) and every row it owns? This cannot be undone.", abort=True
        )
    deleted = delete_company(get_engine(), key)
    if deleted is None:
        exit_not_found(f"no company with id {company_id!r}")
    typer.echo(
        f"deleted {key}: {deleted.sessions} sessions, {deleted.imports} imports, {deleted.batches} batches, "
        f"{deleted.fetches} fetches, {deleted.row_errors} row errors"
    )


def _euros(text: str) -> Decimal:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(text)
    except InvalidOperation:
        exit_with_usage_error(f"--monthly {text!r} is not an amount in EUR (e.g. 25.00)")
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        exit_with_usage_error(f"--monthly {text!r} must be a non-negative amount in EUR, in cents at most")
    return amount


@app.command()
def budget(
    company_id: str = typer.Argument(..., metavar="ID"),
    monthly: str | None = typer.Option(None, "--monthly", help="Monthly AI budget in EUR, e.g. 25.00."),
    unlimited: bool = typer.Option(False, "--none", help="No budget: unlimited."),
) -> None:
    """Show or set a company's monthly AI budget; what waits with "budget reached" goes on after a raise."""
    if monthly is not None and unlimited:
        exit_with_usage_error("give either --monthly or --none, not both")
    from datetime import UTC, datetime

    from pipeline import companies as company_service
    from pipeline.db.engine import get_session_factory
    from pipeline.settings import get_settings
    from pipeline.stages.budgets import budget_of, budget_uses, month_of, set_budget

    settings = get_settings()
    with get_session_factory().begin() as db:
        try:
            company = company_service.get_company(db, company_id)
        except company_service.UnknownCompany as exc:
            exit_not_found(str(exc))
        if monthly is not None or unlimited:
            set_budget(db, company.id, None if unlimited else _euros(monthly or "0"))
            db.flush()
        limit = budget_of(db, company.id, settings)
        [use] = [
            use
            for use in budget_uses(db, settings, month_of(datetime.now(UTC)))
            if use.company_id == company.id
        ]
    shown = "unlimited" if limit is None else f"{limit:.2f} EUR"
    typer.echo(
        f"{company.id} monthly budget {shown}; this month spent {use.spent:.2f} EUR, "
        f"reserved {use.reserved:.2f} EUR" + (" (budget reached)" if (use.ratio or 0) >= 1 else "")
    )
