"""The chaos suite in CI: the whole pipeline (real worker pools and schedulers, the emulator, its own
PostgreSQL and RabbitMQ with quorum queues) under every kind of fault at seeded points, then the invariants.

The long run is ``bench/chaos.py`` (docs/reliability.md); these are its small seeded versions, a batch run
and a sync run. The sync run with the production leases and the broken-claim demonstration are marked
``long`` (``pytest -m long tests/chaos``): outside CI's budget.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.dead_letters import DELIVERY_LIMIT_ERROR
from pipeline.devtools.chaos import FAULT_KINDS, ChaosPlan, run_chaos
from pipeline.devtools.poison import POISON_ACTOR
from tests.chaos.conftest import SMALL, explain, forget


#: The CI runs' graces. With the production ones a killed worker's items wait 2 min for its lease and a
#: hand-off the kill lost 2 min for the sweep: the pipeline stands still that long with work waiting, which
#: shows as no recovery within 60 s after the faults that follow, and put the sync run over 3 min. A lease
#: here is 10 s of time limit plus 20 s of grace and a sweep waits 10 s. The grace still outlasts what a
#: worker does past its limit: calls of at most 2 attempts of 3 s, and an answer's write retried through the
#: 3 s database outage (until 7.5 s after its first failure, under the 15 s patience this grace allows).
def short_graces(plan: ChaosPlan) -> ChaosPlan:
    return replace(plan, time_limit_seconds=10.0, lease_grace_seconds=20.0, sweep_grace_seconds=10.0)


#: The sync run in CI: the faults that cost a sync run answers (SIGKILLs of worker processes and pools with
#: calls in flight, OpenAI answering 500s, the database restarted under the answers' writes), on 60 sessions,
#: with the short graces. No poison message: the batch run shows it dead-lettered, and the workers it kills
#: would interrupt calls the harness does not count.
SYNC_IN_CI = replace(
    short_graces(SMALL),
    seed=5,
    mode="sync",
    companies=3,
    kinds=("worker-process", "pool", "emulator-500", "postgresql"),
    faults=5,
    poison=False,
)


@pytest.mark.chaos
# Longer than the run's quiet timeout (360 s after the faults), so that a run that does not settle prints
# where its work waits and fails with its report, rather than being cut off by pytest's 300 s.
@pytest.mark.timeout(600)
def test_a_batch_run_keeps_every_promise_through_every_kind_of_fault() -> None:
    # Given a batch-mode run, a poison message among its messages, every kind of fault once, seeded, and
    # leases a killed worker's items outlive by seconds
    plan = replace(short_graces(SMALL), seed=17, mode="batch")

    # When it runs through the faults and comes to rest
    report = run_chaos(plan, log=print)

    # Then every good session was analysed once, nothing was lost, stored or billed twice
    assert report.ok, explain(report)
    assert [record.kind for record in report.faults] != list(FAULT_KINDS)  # shuffled by seed 17
    assert sorted(record.kind for record in report.faults) == sorted(FAULT_KINDS)
    findings = report.findings
    assert findings.counts["analysed"] == findings.good_sessions == 120
    assert findings.batch_billed_twice == 0
    # And the poison message was dead-lettered by its delivery limit while everything else flowed
    poison = [letter for letter in findings.dead_letters if letter.actor == POISON_ACTOR]
    assert [letter.error for letter in poison] == [DELIVERY_LIMIT_ERROR]
    assert report.pool_restarts >= plan.delivery_limit + 1
    # And the pipeline moved again after every fault that left work waiting
    assert all(record.recovered_after is not None for record in report.faults if not record.idle), explain(
        report
    )
    forget(report)


@pytest.mark.chaos
# As above: longer than the run's quiet timeout, so that a run that does not settle fails with its report.
@pytest.mark.timeout(600)
def test_a_sync_run_rebills_no_more_answers_than_calls_it_lost_in_flight() -> None:
    # Given a sync-mode run of 60 sessions whose answers take 0.3 s, SIGKILLs of worker processes and pools,
    # 500s and a database restart at seeded points, and leases a killed worker's sessions outlive by seconds
    plan = SYNC_IN_CI

    # When it runs through the faults and comes to rest
    report = run_chaos(plan, log=print)

    # Then every good session was analysed once; re-billed answers are within the calls interrupted in flight
    assert report.ok, explain(report)
    findings = report.findings
    assert findings.counts["analysed"] == findings.good_sessions == 60
    assert findings.rebilled <= findings.interrupted_calls
    print(f"re-billed {findings.rebilled} of {findings.interrupted_calls} interrupted calls")
    # And every kind of the plan happened; the pipeline moved again after each fault that left work waiting
    assert {record.kind for record in report.faults} == set(plan.kinds)
    assert all(record.recovered_after is not None for record in report.faults if not record.idle), explain(
        report
    )
    forget(report)


@pytest.mark.chaos
@pytest.mark.long  # over 3 min: a session a killed worker held waits for its claim's lease (2 min grace)
def test_a_sync_run_with_the_production_leases_rebills_no_more_answers_than_calls_it_lost_in_flight() -> None:
    # Given a sync-mode run of 120 sessions whose answers take 0.3 s, SIGKILLs of worker processes and pools,
    # and the production graces: a killed worker's sessions wait 2 min for its lease
    plan = replace(
        SMALL, seed=5, mode="sync", kinds=("worker-process", "pool", "emulator-500", "postgresql"), faults=6,
        poison_before_work=True,
    )  # fmt: skip

    # When it runs through the faults and comes to rest
    report = run_chaos(plan, log=print)

    # Then every good session was analysed once; re-billed answers are within the calls interrupted in flight
    assert report.ok, explain(report)
    assert report.findings.rebilled <= report.findings.interrupted_calls
    print(f"re-billed {report.findings.rebilled} of {report.findings.interrupted_calls} interrupted calls")
    forget(report)


@pytest.mark.chaos
@pytest.mark.long
def test_the_checks_fail_when_session_analysis_loses_its_database_claim() -> None:
    # Given a quiet sync run whose pools analyse without the database claim (tests/chaos/broken_claim)
    plan = replace(
        SMALL, seed=6, mode="sync", kinds=(), faults=0, poison=False, companies=3,
        extra_modules=("tests.chaos.broken_claim",),
    )  # fmt: skip

    # When analysis messages whose work is done are delivered again (a lost acknowledgement)
    report = run_chaos(plan, log=print)

    # Then the checks catch the second analyses and the answers billed again (the report printed for -s: the
    # demonstration docs/reliability.md quotes)
    print(explain(report))
    assert not report.ok
    assert report.findings.duplicates["analyses"] > 0
    assert any("re-billed" in violation for violation in report.findings.violations), explain(report)
    forget(report)
