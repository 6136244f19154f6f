"""CPU of the batch ingest besides its writes, per line: what bench/batches.py's ratio to the floor leaves it.

    .venv/bin/python bench/batch_ingest_cpu.py [--requests 20000] [--repeat 5] [--compare-with DIR]

A batch of ``--requests`` sessions is queued, submitted to the OpenAI emulator and answered, and its output
file read into memory (none of it timed). Then the ingest of that batch runs again and again in this
process, served the file from memory, with its writes (``write_chunk``) left out, so that it changes nothing
it reads (the batch row and the budget rows aside). Process CPU time, best of ``--repeat``, per line:

- open requests: the batch's open requests loaded (``open_requests``) and keyed by ``custom_id``;
- read and check: the whole ingest with its chunks not applied, less the above;
- apply, writes left out: the whole ingest with only ``write_chunk`` left out, less the two above (the
  superseded check, pricing, budget settlement, the request rows built);
- garbage collector: the whole ingest (writes left out) with the cyclic collector on, less the same off. The
  parts above are measured with it off: it runs when allocations add up, wherever they happen.

The database's own work (the queries, on another core) is not in this process's CPU time. ``--compare-with
DIR`` also measures with another checkout's ``pipeline`` package (for instance ``git archive <commit>
pipeline | tar -x -C DIR``), in a process of its own, so a before/after pair comes from one run.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import openai
from common import emulator_process, scratch_database
from session_analysis import create_sessions
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import sessionmaker

from pipeline.analysis.openai_calls import openai_client
from pipeline.settings import Settings, load_settings
from pipeline.stages import batch_ingest
from pipeline.stages.batch_enqueue import enqueue_for_batch
from pipeline.stages.batch_submit import plan_batches, submit_batch

_ENQUEUE_CHUNK = 5000


class _FileContent:
    """Stands for the client's Files API: every file's content is ``lines``, streamed from memory."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.with_streaming_response = self

    @contextmanager
    def content(self, file_id: str) -> Iterator[_FileContent]:
        yield self

    def iter_lines(self) -> Iterator[str]:
        yield from self.lines


class _Client:
    def __init__(self, lines: list[str]) -> None:
        self.files = _FileContent(lines)


def _answered_batch(
    url: str, engine: Engine, settings: Settings, requests: int
) -> tuple[uuid.UUID, list[str]]:
    """One batch submitted and answered: its id and its output lines (the first batch, if the 200 MB file
    limit made two)."""
    session_ids = create_sessions(url, requests)
    for start in range(0, len(session_ids), _ENQUEUE_CHUNK):
        enqueue_for_batch(engine, settings, session_ids[start : start + _ENQUEUE_CHUNK])
    with openai_client(settings) as client:
        batch_id = plan_batches(engine, settings)[0]
        submit_batch(engine, client, batch_id, max_prompt_tokens=settings.openai_max_prompt_tokens)
        with engine.connect() as connection:
            remote_id = connection.execute(
                text("SELECT openai_batch_id FROM ai_batch_request WHERE id = :id"), {"id": batch_id}
            ).scalar_one()
        while (remote := client.batches.retrieve(remote_id)).status != "completed":
            time.sleep(0.1)
        assert remote.output_file_id is not None
        return batch_id, client.files.content(remote.output_file_id).text.splitlines()


def _nothing(*_arguments: object, **_keywords: object) -> None:
    """Stands for what a measurement leaves out."""


def _best_cpu(run: Callable[[], object], repeat: int, *, collector: bool) -> float:
    """The least process CPU time of ``repeat`` runs, the cyclic garbage collector on or off."""
    spent = []
    for _ in range(repeat):
        gc.collect()
        if not collector:
            gc.disable()
        started = time.process_time()
        run()
        spent.append(time.process_time() - started)
        gc.enable()
    return min(spent)


def _measure(engine: Engine, settings: Settings, batch_id: uuid.UUID, lines: list[str], repeat: int) -> None:
    factory = sessionmaker(engine)
    client = cast(openai.OpenAI, _Client(lines))

    def open_requests() -> None:
        with factory() as db:
            {str(request.id): request for request in batch_ingest.open_requests(db, batch_id)}

    def ingest() -> None:
        batch_ingest.ingest_batch(
            engine,
            settings,
            client,
            batch_id,
            remote_status="completed",
            output_file_id="output",
            error_file_id=None,
        )

    apply_isolating, write_chunk = batch_ingest._apply_isolating, batch_ingest.write_chunk
    opened = _best_cpu(open_requests, repeat, collector=False)
    batch_ingest._apply_isolating = _nothing
    read = _best_cpu(ingest, repeat, collector=False)
    batch_ingest._apply_isolating = apply_isolating
    batch_ingest.write_chunk = _nothing
    whole = _best_cpu(ingest, repeat, collector=False)
    collected = _best_cpu(ingest, repeat, collector=True)
    batch_ingest.write_chunk = write_chunk

    per_line = 1e6 / len(lines)
    print(f"pipeline: {Path(batch_ingest.__file__).parents[2]}; {len(lines)} lines; CPU per line:")
    print(f"  open requests:                      {opened * per_line:6.1f} µs")
    print(f"  read and check:                     {(read - opened) * per_line:6.1f} µs")
    print(f"  apply, writes left out:             {(whole - read) * per_line:6.1f} µs")
    print(f"  all of it, garbage collector off:   {whole * per_line:6.1f} µs")
    print(f"  garbage collector:                  {(collected - whole) * per_line:6.1f} µs")
    print(f"  all of it, garbage collector on:    {collected * per_line:6.1f} µs")


def _in_other_checkout(directory: Path, requests: int, repeat: int) -> None:
    """This benchmark in a process whose ``pipeline`` package is the one in ``directory``."""
    # The editable install finds `pipeline` before sys.path does: its finder is taken out first.
    bootstrap = (
        "import runpy, sys\n"
        "sys.meta_path = [finder for finder in sys.meta_path if 'editable' not in repr(finder).lower()]\n"
        f"sys.path[:0] = [{str(directory)!r}, {str(Path(__file__).parent)!r}]\n"
        f"sys.argv = [{__file__!r}, '--requests', '{requests}', '--repeat', '{repeat}']\n"
        f"runpy.run_path({__file__!r}, run_name='__main__')\n"
    )
    subprocess.run([sys.executable, "-c", bootstrap], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare-with", type=Path, help="A directory holding another `pipeline` package.")
    arguments = parser.parse_args()

    instant = {"validating_seconds": 0, "in_progress_seconds": 0, "finalizing_seconds": 0}
    with scratch_database() as url, emulator_process(**instant) as emulator_url:
        settings = load_settings(
            database_url=url,
            openai_base_url=emulator_url,
            openai_api_key="bench",
            batch_min_requests=1,
            batch_max_requests=arguments.requests,
            openai_batch_enqueued_token_limit=10**12,
        )
        engine = create_engine(url)
        batch_id, lines = _answered_batch(url, engine, settings, arguments.requests)
        _measure(engine, settings, batch_id, lines, arguments.repeat)
        engine.dispose()
    if arguments.compare_with is not None:
        _in_other_checkout(arguments.compare_with.resolve(), arguments.requests, arguments.repeat)


if __name__ == "__main__":
    main()
