"""``python -m pipeline.runners.dramatiq_cli <dramatiq arguments>``: Dramatiq's command line with the
pipeline's logging (``LOG_FORMAT``, secrets masked) in its main process too; ``livedash worker`` runs it.

A fresh interpreter that imports neither prometheus_client nor the actors: the worker processes it forks
import ``pipeline.actors``, which sets up their metrics and logging (``pipeline.pool_metrics``).
"""

from __future__ import annotations

import sys

from pipeline.logs import configure_logging
from pipeline.settings import get_settings

__all__ = ["main"]


def main(arguments: list[str]) -> int:
    configure_logging(get_settings())
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    # Dramatiq's command line is unannotated; main returns the exit code.
    parsed = make_argument_parser().parse_args(arguments)  # type: ignore[no-untyped-call]
    code: int = dramatiq_main(parsed)  # type: ignore[no-untyped-call]
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
