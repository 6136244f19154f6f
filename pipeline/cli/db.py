"""``livedash db``: schema migrations."""

from __future__ import annotations

import typer

app = typer.Typer(help="Database schema: apply or roll back the migrations.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the migrations up to REVISION (default: the newest); seeds AI models and prices."""
    from pipeline.db import migrate
    from pipeline.db.engine import get_engine

    engine = get_engine()
    migrate.upgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, or 'base' for an empty schema."),
) -> None:
    """Roll the schema back to REVISION."""
    from pipeline.db import migrate
    from pipeline.db.engine import get_engine

    engine = get_engine()
    migrate.downgrade(engine, revision)
    typer.echo(f"database at revision {migrate.current_revision(engine) or 'base'}")


@app.command()
def current() -> None:
    """Print the applied revision and the newest one available."""
    from pipeline.db import migrate
    from pipeline.db.engine import get_engine

    engine = get_engine()
    typer.echo(
        f"current: {migrate.current_revision(engine) or 'base'}, head: {migrate.head_revision(engine)}"
    )
