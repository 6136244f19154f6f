"""A three-node RabbitMQ cluster on one machine (own node names, ports and data directories) with quorum
queues: the node leading the stage queues is killed mid-run, the pipeline carries on through the others,
and the chaos suite's invariants hold. Outside CI's budget: ``pytest -m long tests/chaos/test_cluster.py``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.devtools.chaos import run_chaos
from tests.chaos.conftest import SMALL, explain, forget


@pytest.mark.chaos
@pytest.mark.long  # about 3 min: three nodes to boot and cluster, then the sweeps' grace for lost hand-offs
def test_losing_the_leader_of_the_stage_queues_loses_nothing() -> None:
    # Given a batch-mode run on a three-node cluster, every process given the three nodes' addresses
    plan = replace(
        SMALL,
        seed=3,
        rabbit_nodes=3,
        kinds=("rabbitmq", "pool"),
        faults=2,
        broker_outage_seconds=5,
        poison=False,
    )

    # When the node leading the session-processing queue is SIGKILLed mid-run (and restarted 5 s later)
    report = run_chaos(plan, log=print)

    # Then the pipeline moved on: through the other nodes while the leader was down, or once it returned (a
    # fault that ends with nothing left to do must have seen the work go on during it), and every good
    # session was analysed once, nothing billed twice
    assert report.ok, explain(report)
    [broker_fault] = [record for record in report.faults if record.kind == "rabbitmq"]
    assert broker_fault.moved_during or broker_fault.recovered_after is not None, explain(report)
    assert report.findings.counts["analysed"] == report.findings.good_sessions
    forget(report)
