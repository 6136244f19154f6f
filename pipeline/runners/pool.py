"""The broker module that ``livedash worker`` hands to ``dramatiq``: the pipeline's actors, with logging set
up from the settings (text or JSON lines) in every worker process."""

from __future__ import annotations

from pipeline.logs import configure_logging
from pipeline.settings import get_settings

configure_logging(get_settings())

from pipeline.actors import broker  # noqa: E402

__all__ = ["broker"]
