"""What a stage's entry point works with: the settings, the database, its clients, and a way to send work on.

Everything but the settings is made on first use and kept for the life of the runtime: one engine, one HTTP
client per kind of download, one OpenAI client and one pool of chat completion calls, shared by every worker
thread so that connections are reused and in-flight calls stay bounded. A worker process has one runtime
(:func:`worker_runtime`); the demo and ``livedash schedulers trigger --inline`` make their own.

Sending goes through a :class:`Dispatch`: on a worker it publishes a message by queue and actor name (the
receiving pool may run code this process lacks); inline it runs the actor's entry point here instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import dramatiq
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline import metrics
from pipeline.db.engine import create_db_engine
from pipeline.scheduling.jobs import ActorDefinition
from pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    import openai

    from pipeline.sources.http_fetch import Fetcher

__all__ = [
    "BrokerDispatch",
    "Dispatch",
    "InlineDispatch",
    "StageRuntime",
    "enqueue_on_global_broker",
    "worker_runtime",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class Dispatch(Protocol):
    """Sends one message to ``actor``; raises when it could not."""

    def __call__(self, runtime: StageRuntime, actor: ActorDefinition, args: tuple[Any, ...]) -> None: ...


def enqueue_on_global_broker(message: dramatiq.Message[None]) -> dramatiq.Message[None]:
    """Publish on the process's global broker (a worker's), declaring the queue first."""
    broker = dramatiq.get_broker()
    broker.declare_queue(message.queue_name)
    published: dramatiq.Message[None] = broker.enqueue(message)
    return published


class BrokerDispatch:
    """Publishes a message by queue and actor name with ``publish`` (``broker.enqueue`` or alike)."""

    def __init__(self, publish: Callable[[dramatiq.Message[None]], dramatiq.Message[None]]) -> None:
        self.publish = publish

    def __call__(self, runtime: StageRuntime, actor: ActorDefinition, args: tuple[Any, ...]) -> None:
        self.publish(
            dramatiq.Message(queue_name=actor.queue, actor_name=actor.name, args=args, kwargs={}, options={})
        )


class InlineDispatch:
    """Runs the entry point of the actors in ``inline`` in this process and publishes the others.

    ``reports`` collects what each inline call returned (its one-line summary); a failing call is reported
    and does not stop the others, as a worker's failed message does not stop the queue."""

    def __init__(self, inline: tuple[ActorDefinition, ...], publish: Dispatch) -> None:
        self.inline = {actor.name for actor in inline}
        self.publish = publish
        self.reports: list[str] = []

    def __call__(self, runtime: StageRuntime, actor: ActorDefinition, args: tuple[Any, ...]) -> None:
        if actor.name not in self.inline:
            self.publish(runtime, actor, args)
            return
        try:
            self.reports.append(str(actor.entry()(runtime, *args)))
        except Exception as exc:
            logger.exception("%s%r failed", actor.name, args)
            self.reports.append(f"{actor.name} {args[0] if args else ''} FAILED {exc}")


class StageRuntime:
    """The settings, lazily made resources, and the dispatch of one process or one inline run."""

    def __init__(
        self,
        settings: Settings,
        *,
        dispatch: Dispatch,
        engine: Engine | None = None,
        sweep_everything: bool = False,
    ) -> None:
        self.settings = settings
        self.dispatch = dispatch
        #: Inline runs sweep every waiting item, not only those whose message is overdue.
        self.sweep_everything = sweep_everything
        self._engine = engine
        self._resources: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _made(self, name: str, make: Callable[[], _T]) -> _T:
        """The resource ``name``, made by ``make`` the first time (once, whichever thread asks first)."""
        with self._lock:
            if name not in self._resources:
                self._resources[name] = make()
            made: _T = self._resources[name]
            return made

    @property
    def engine(self) -> Engine:
        return self._made("engine", lambda: self._engine or create_db_engine(self.settings))

    @property
    def session_factory(self) -> sessionmaker[Session]:
        engine = self.engine
        return self._made("session_factory", lambda: sessionmaker(engine, expire_on_commit=False))

    @property
    def csv_fetcher(self) -> Fetcher:
        from pipeline.sources.http_fetch import Fetcher
        from pipeline.stages.csv_import import fetch_limits

        return self._made("csv_fetcher", lambda: Fetcher(fetch_limits(self.settings)))

    @property
    def transcript_fetcher(self) -> Fetcher:
        from pipeline.sources.http_fetch import Fetcher
        from pipeline.stages.import_processing import transcript_fetcher_limits

        return self._made("transcript_fetcher", lambda: Fetcher(transcript_fetcher_limits(self.settings)))

    @property
    def openai(self) -> openai.OpenAI:
        from pipeline.analysis.openai_calls import openai_client

        return self._made("openai", lambda: openai_client(self.settings))

    @property
    def calls(self) -> ThreadPoolExecutor:
        """Runs the chat completions of every thread: at most SESSION_PROCESSING_CONCURRENCY in flight."""
        return self._made(
            "calls",
            lambda: ThreadPoolExecutor(
                max_workers=self.settings.session_processing_concurrency, thread_name_prefix="openai"
            ),
        )

    def send(self, actor: ActorDefinition, *args: Any) -> None:
        """Send one message to ``actor``; raises when it could not be sent."""
        self.dispatch(self, actor, args)

    def hand_over(self, actor: ActorDefinition, ids: list[Any]) -> None:
        """Nudge the next stage with a chunk of ids. The work is already in the database and that stage's
        sweep finds it, so a failed publish is counted and logged, not raised into the stage that committed
        its work (architecture: a message is only a nudge)."""
        try:
            self.send(actor, [str(item) for item in ids])
        except Exception:
            metrics.PUBLISH_FAILURES.labels(actor.queue).inc()
            logger.exception(
                "could not hand %d ids to %s; its sweep will pick them up", len(ids), actor.queue
            )

    def close(self) -> None:
        """Close what was made (the engine only if this runtime made it)."""
        with self._lock:
            made, self._resources = self._resources, {}
        for name in ("csv_fetcher", "transcript_fetcher", "openai"):
            if name in made:
                made[name].close()
        if "calls" in made:
            made["calls"].shutdown(wait=True)
        if "engine" in made and self._engine is None:
            made["engine"].dispose()


@lru_cache(maxsize=1)
def worker_runtime() -> StageRuntime:
    """The runtime of a worker process: the process-wide settings and engine, publishing on the global
    broker. Made at the first message, never at import."""
    from pipeline.db.engine import get_engine

    return StageRuntime(
        get_settings(), dispatch=BrokerDispatch(enqueue_on_global_broker), engine=get_engine()
    )
