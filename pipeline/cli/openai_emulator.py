"""``livedash devtools openai``: the OpenAI emulator from the command line, for the demo and manual runs."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

__all__ = ["openai"]


def openai(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port; 0 picks a free one.")] = 8766,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    latency: Annotated[
        float, typer.Option("--latency", min=0.0, help="Seconds every chat completion takes, at least.")
    ] = 0.0,
) -> None:
    """Serve the OpenAI emulator until Ctrl-C or SIGTERM; point OPENAI_BASE_URL at the URL it prints.

    Change its knobs while it runs with POST /_emulator/knobs; see pipeline.devtools.openai_emulator.
    """
    from pipeline.devtools.openai_emulator import Knobs, serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve_forever(
        host,
        port,
        Knobs(latency=latency),
        on_ready=lambda url: typer.echo(
            f"OpenAI emulator at {url} (use it as OPENAI_BASE_URL; Ctrl-C to stop)"
        ),
    )
