"""The chaos suite's harness: the pipeline under faults on services of its own, then the invariants.

See :mod:`pipeline.devtools.chaos.run` (a run), :mod:`~pipeline.devtools.chaos.processes` (pools,
schedulers, the ticker) and :mod:`~pipeline.devtools.chaos.invariants` (what must hold afterwards);
``bench/chaos.py`` is its command, ``tests/chaos`` its small seeded runs.
"""

from __future__ import annotations

from pipeline.devtools.chaos.invariants import Findings, check_invariants
from pipeline.devtools.chaos.run import (
    FAULT_KINDS,
    ChaosPlan,
    ChaosReport,
    ChaosRunError,
    FaultRecord,
    choose_faults,
    run_chaos,
)

__all__ = [
    "FAULT_KINDS",
    "ChaosPlan",
    "ChaosReport",
    "ChaosRunError",
    "FaultRecord",
    "Findings",
    "check_invariants",
    "choose_faults",
    "run_chaos",
]
