"""``livedash devtools``: the demo data source (generator and HTTP server) and the OpenAI emulator."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.openai_emulator import openai

__all__ = ["app"]

app = typer.Typer(
    help="Demo data: company CSVs and transcripts served over HTTP, and an OpenAI emulator.",
    no_args_is_help=True,
)
app.command()(openai)

#: Below this many rows a run takes about a second, and a progress bar would only flicker.
_PROGRESS_FROM_ROWS = 50_000


@app.command()
def generate(
    *,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the data set into.")],
    companies: Annotated[int, typer.Option("--companies", min=1, help="Number of companies.")] = 3,
    sessions: Annotated[int, typer.Option("--sessions", min=0, help="Sessions per company.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 0,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Where the data set will be served; it goes into every URL. "
            "Default: where `devtools source` serves by default.",
        ),
    ] = None,
    transcripts: Annotated[
        bool, typer.Option("--transcripts/--no-transcripts", help="Write one transcript file per session.")
    ] = True,
) -> None:
    """Generate a deterministic demo data set: per company a CSV in the export format, and transcripts."""
    from pipeline.devtools.generate import DEFAULT_BASE_URL, generate_dataset

    rows = companies * sessions
    started = time.perf_counter()
    with _progress(rows) as advance:
        manifest = generate_dataset(
            out,
            companies=companies,
            sessions=sessions,
            seed=seed,
            base_url=base_url or DEFAULT_BASE_URL,
            transcripts=transcripts,
            progress=advance,
        )
    elapsed = time.perf_counter() - started
    kind = "with transcripts" if transcripts else "no transcripts"
    typer.echo(
        f"Generated {len(manifest.companies)} companies x {sessions:,} sessions ({rows:,} rows, {kind}) "
        f"in {elapsed:.1f} s ({rows / max(elapsed, 1e-9):,.0f} rows/s); credentials: {out / 'manifest.json'}"
    )


@app.command()
def source(
    *,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir",
            exists=True,
            file_okay=False,
            help="A data set directory; the data set may also be generated after starting.",
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 picks a free one.")] = 8765,
) -> None:
    """Serve a data set over HTTP with Basic auth, ETags and fault injection, until Ctrl-C or SIGTERM."""
    from pipeline.devtools.source import serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve_forever(
        directory,
        host,
        port,
        on_ready=lambda url: typer.echo(f"Serving {directory} at {url} (Ctrl-C to stop)"),
    )


@app.command()
def seed(
    database: Annotated[
        str, typer.Argument(help="PostgreSQL URL of a database without companies (migrated here).")
    ],
    *,
    companies: Annotated[int, typer.Option("--companies", min=1, help="Number of companies.")] = 1_000,
    sessions: Annotated[
        int, typer.Option("--sessions", min=1, help="Sessions over all companies.")
    ] = 1_000_000,
    fetch_days: Annotated[
        float, typer.Option("--fetch-days", min=0, help="Days of CSV fetch history.")
    ] = 2.0,
    scheduler_days: Annotated[
        float, typer.Option("--scheduler-days", min=0, help="Days of scheduler tick and run history.")
    ] = 7.0,
) -> None:
    """Fill a database with a year of many companies' sessions in every pipeline state, through COPY."""
    from sqlalchemy import create_engine

    from pipeline.db import migrate
    from pipeline.db.engine import normalize_database_url
    from pipeline.devtools.seed import SeedPlan, default_now, seed_database

    engine = create_engine(normalize_database_url(database), execution_options={"preserve_rowcount": True})
    if engine.dialect.name != "postgresql":
        raise typer.BadParameter("seeding writes with COPY: give a PostgreSQL URL", param_hint="DATABASE")
    started = time.perf_counter()
    try:
        migrate.upgrade(engine)
        plan = SeedPlan(
            companies=companies,
            sessions=sessions,
            now=default_now(),
            fetch_history=timedelta(days=fetch_days),
            scheduler_history=timedelta(days=scheduler_days),
        )
        report = seed_database(
            engine, plan, progress=lambda table, rows: typer.echo(f"  {table}: {rows:,} rows", err=True)
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    total = sum(report.rows.values())
    typer.echo(
        f"Seeded {companies:,} companies and {sessions:,} sessions ({total:,} rows) in "
        f"{time.perf_counter() - started:.1f} s"
    )


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress callback for ``generate_dataset``, drawing a bar only for long runs on a terminal."""
    if total < _PROGRESS_FROM_ROWS or not sys.stdout.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("rows", total=total)
        yield lambda rows: bar.advance(task, rows)
