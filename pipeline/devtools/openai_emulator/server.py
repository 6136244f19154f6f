"""Running the emulator: in a background thread (``OpenAIEmulator``), or in the foreground for the CLI.

The listening socket is bound before uvicorn starts, so the port, even one picked by the OS, is known at once
and connections made before uvicorn is ready wait in the backlog instead of failing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from pipeline.devtools.foreground import run_until_stopped
from pipeline.devtools.openai_emulator.app import create_app
from pipeline.devtools.openai_emulator.knobs import Knobs
from pipeline.devtools.openai_emulator.ledger import LedgerEntry
from pipeline.devtools.openai_emulator.store import Store

__all__ = ["OpenAIEmulator", "serve_forever"]

_START_TIMEOUT = 10.0
_BACKLOG = 2048
#: How long requests in flight (a latency knob, say) may finish when the emulator stops.
_GRACEFUL_SHUTDOWN_SECONDS = 2


class OpenAIEmulator:
    """The OpenAI emulator on ``host``:``port`` (0 picks a free port), served from a daemon thread.

    Use it as a context manager, and point the SDK at ``url``::

        with OpenAIEmulator(knobs=Knobs(latency=0.1)) as emulator:
            client = openai.OpenAI(base_url=emulator.url, api_key="test", max_retries=0)
            ...
            assert len(emulator.ledger()) == 1

    ``knobs`` may be changed while it runs, in place (``emulator.knobs.rate_429 = 0.5``) or as a whole.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, knobs: Knobs | None = None) -> None:
        self._address = (host, port)
        self._store = Store(knobs if knobs is not None else Knobs())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:54321/v1``: what ``OPENAI_BASE_URL`` should be."""
        if self._url is None:
            raise RuntimeError("the OpenAI emulator is not started")
        return self._url

    @property
    def knobs(self) -> Knobs:
        return self._store.knobs

    @knobs.setter
    def knobs(self, knobs: Knobs) -> None:
        self._store.knobs = knobs

    def ledger(self) -> list[LedgerEntry]:
        """Every billed answer so far, oldest first; batches due to end by now are ended first."""
        return self._store.ledger()

    def chat_in_flight(self) -> int:
        """Chat completions being answered at this moment."""
        return self._store.chat_in_flight()

    def reset(self) -> None:
        """Forget all files, batches, billed answers and the request count; the knobs stay as they are."""
        self._store.reset()

    def start(self) -> OpenAIEmulator:
        """Bind, and serve in a daemon thread; returns once uvicorn accepts connections."""
        if self._server is not None:
            raise RuntimeError("the OpenAI emulator is already started")
        host, port = self._address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = _listen(host, port, family)
        config = uvicorn.Config(
            create_app(self._store),
            # Logging stays the application's business: uvicorn's own config would replace the root handlers.
            log_config=None,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="openai-emulator", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                listener.close()
                raise RuntimeError("the OpenAI emulator did not start")
            time.sleep(0.005)
        bound_host, bound_port = listener.getsockname()[:2]
        shown_host = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
        self._server, self._thread = server, thread
        self._url = f"http://{shown_host}:{bound_port}/v1"
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; requests in flight get a moment to finish."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join()
        self._server = self._thread = self._url = None

    def __enter__(self) -> OpenAIEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _listen(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    # The protocol must be named: asyncio sets TCP_NODELAY only on connections from a socket whose protocol is
    # IPPROTO_TCP, and socket.create_server leaves it 0. Without it every response waits some 40 ms for the
    # client's delayed ACK before its body goes out.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8766,
    knobs: Knobs | None = None,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the emulator until Ctrl-C or SIGTERM; ``on_ready`` gets the base URL once it listens.

    Signals reach only the main thread, so call this from there.
    """
    emulator = OpenAIEmulator(host, port, knobs=knobs)
    run_until_stopped(emulator, lambda: emulator.url, on_ready)
