"""Benchmark of the command line's start (issue 14), with the floor of any Python command measured alongside.

    .venv/bin/python bench/cli_startup.py [--repeat 15] [--compare-with DIR]

Each command runs ``--repeat`` times as a new process (as a shell runs it) through the installed
``livedash`` script next to this interpreter; the median wall time and the median CPU time (user + system,
which a busy machine disturbs less than the wall time) are printed. References, in the same run:

- ``python -c pass``: the interpreter alone, the floor of any command;
- ``python -c "import typer"``: the floor of a typer application, whose help needs typer and rich.

``--compare-with DIR`` also runs the same commands from another checkout's ``pipeline`` package (for
instance ``git archive <commit> pipeline | tar -x -C DIR``), so a before/after pair comes from one run.

Target: at most 0.3 s for ``--help``, a group's ``--help`` and ``--version``. No database, broker or SDK is
loaded for these (``tests/cli/test_startup.py`` checks that); the difference to the typer floor is building
the command tree and rendering the help.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

LIVEDASH = str(Path(sys.executable).with_name("livedash"))

COMMANDS: list[tuple[str, list[str]]] = [
    ("floor: python -c pass", [sys.executable, "-c", "pass"]),
    ("floor: python -c 'import typer'", [sys.executable, "-c", "import typer"]),
    ("livedash --help", [LIVEDASH, "--help"]),
    ("livedash companies --help", [LIVEDASH, "companies", "--help"]),
    ("livedash --version", [LIVEDASH, "--version"]),
]


def median_seconds(command: list[str], repeat: int, other: Path | None = None) -> tuple[float, float]:
    """The median wall time and CPU time (user + system) of ``command``, run in the ``other`` checkout if
    given (where it may fail: there was no ``--version`` before)."""
    env = None if other is None else {**os.environ, "PYTHONPATH": str(other)}
    wall, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=other,  # `python -c` puts the working directory first on sys.path
            check=other is None,
        )
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(wall), statistics.median(cpu)


def other_checkout(directory: Path) -> list[tuple[str, list[str], Path | None]]:
    """The livedash commands run from the ``pipeline`` package in ``directory`` instead of this one."""
    code = "import sys; sys.argv[0] = 'livedash'; from pipeline.cli import main; main()"
    run = [sys.executable, "-c", code]
    return [
        (f"{name} ({directory.name})", [*run, *command[1:]], directory)
        for name, command in COMMANDS
        if command[0] == LIVEDASH
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="Runs of each command; the median is shown.")
    parser.add_argument("--compare-with", type=Path, help="A directory holding another `pipeline` package.")
    arguments = parser.parse_args()
    runs: list[tuple[str, list[str], Path | None]] = [(name, command, None) for name, command in COMMANDS]
    if arguments.compare_with is not None:
        runs += other_checkout(arguments.compare_with.resolve())
    subprocess.run([LIVEDASH, "--version"], stdout=subprocess.DEVNULL, check=True)  # warm the file cache
    print(f"{'command':<48} {'wall s':>8} {'CPU s':>8}   (medians of {arguments.repeat} runs)")
    for name, command, other in runs:
        wall, cpu = median_seconds(command, arguments.repeat, other)
        print(f"{name:<48} {wall:>8.3f} {cpu:>8.3f}")


if __name__ == "__main__":
    main()
