"""``livedash secrets``: key rotation of the stored company passwords (docs/security.md)."""

from __future__ import annotations

import typer

from pipeline.cli.errors import exit_with_usage_error

app = typer.Typer(help="Stored secrets: re-encrypt them under the newest SECRET_KEY.", no_args_is_help=True)


@app.command()
def rotate(
    batch_size: int = typer.Option(100, "--batch-size", min=1, help="Companies per committed batch."),
) -> None:
    """Re-encrypt every stored CSV password under SECRET_KEY (the old keys in SECRET_KEY_FALLBACKS).

    Resumable: each batch is committed, and a password already under SECRET_KEY is left alone, so an
    interrupted run is finished by running it again. Exit code 1 when a password no key can read remains."""
    from pipeline.db.engine import get_engine
    from pipeline.db.secrets import PasswordBox
    from pipeline.secret_rotation import RotationProgress, rotate_passwords
    from pipeline.settings import get_settings, refuse_weak_secrets

    settings = get_settings()
    if not settings.secret_key.get_secret_value():
        exit_with_usage_error("SECRET_KEY is not set: it is the key the passwords are re-encrypted under")
    refuse_weak_secrets(settings)

    def report(progress: RotationProgress) -> None:
        typer.echo(
            f"batch {progress.batches}: {progress.rotated} re-encrypted, {progress.current} already current"
        )

    progress = rotate_passwords(
        get_engine(), PasswordBox.from_settings(settings), batch_size=batch_size, on_batch=report
    )
    typer.echo(
        f"{progress.examined} stored passwords: {progress.rotated} re-encrypted under SECRET_KEY, "
        f"{progress.current} already were, {len(progress.unreadable)} unreadable"
    )
    if progress.unreadable:
        ids = ", ".join(str(company_id) for company_id in progress.unreadable)
        typer.echo(
            f"error: no key reads the password of companies {ids}; add their key to SECRET_KEY_FALLBACKS",
            err=True,
        )
        raise typer.Exit(code=1)
