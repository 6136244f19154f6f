"""Chaos run (issue 17): the whole pipeline under faults on services of its own, then its invariants.

    .venv/bin/python bench/chaos.py --seed 17 --sessions 1000 [--mode batch|sync] [--nodes 1|3] [--faults 16]

Starts its own PostgreSQL cluster, its own RabbitMQ node (or three-node cluster) with quorum queues, the
demo data source and the OpenAI emulator; runs worker pools, ``livedash scheduler`` replicas and a ticker;
registers a company every few seconds (so work keeps arriving); once work is under way, injects every kind
of fault once (SIGKILL of a worker process, of a whole pool, of a scheduler replica; RabbitMQ killed and
restarted; PostgreSQL stopped and restarted; the emulator answering 500s, then hanging; the transcript
server hanging) plus more SIGKILLs of worker processes and pools, at seeded random gaps, with a poison
message that kills its worker at each delivery. Prints the time to recover after each fault, and the
checks: every good session analysed, nothing lost or stored twice, no batch answer billed twice, re-billed
sync answers against the calls interrupted in flight, every dead letter accounted for.
Exits non-zero if an invariant broke. The long run of docs/reliability.md:

    .venv/bin/python bench/chaos.py --seed 17 --sessions 1000 --faults 16 --database-outage 60
"""

from __future__ import annotations

import argparse
import sys

from pipeline.devtools.chaos import ChaosPlan, run_chaos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--sessions", type=int, default=1000, help="In all, over --companies companies.")
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--mode", choices=("batch", "sync"), default="batch")
    parser.add_argument("--nodes", type=int, choices=(1, 3), default=1, help="RabbitMQ nodes.")
    parser.add_argument(
        "--faults", type=int, default=16, help="In all (at least one of each of the 8 kinds)."
    )
    parser.add_argument("--database-outage", type=float, default=60.0, help="Seconds PostgreSQL stays down.")
    parser.add_argument(
        "--broker-outage", type=float, default=10.0, help="Seconds the RabbitMQ node stays down."
    )
    parser.add_argument(
        "--emulator-outage", type=float, default=15.0, help="Seconds of 500s, then of hanging."
    )
    parser.add_argument("--transcript-hang", type=float, default=15.0, help="Seconds the transcripts hang.")
    parser.add_argument(
        "--time-limit", type=float, default=20.0, help="Seconds each stage's work is given (a lease's base)."
    )
    parser.add_argument(
        "--lease-grace",
        type=float,
        default=120.0,
        help="Seconds a claim's lease outlives the time limit (CLAIM_LEASE_GRACE_MS; production: 120).",
    )
    parser.add_argument(
        "--sweep-grace",
        type=float,
        default=120.0,
        help="Seconds a pending item waits for its message before a sweep (SWEEP_GRACE_MS; production: 120).",
    )
    parser.add_argument("--pools", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    plan = ChaosPlan(
        seed=args.seed,
        companies=args.companies,
        sessions_per_company=args.sessions // args.companies,
        mode=args.mode,
        rabbit_nodes=args.nodes,
        faults=args.faults,
        gap_seconds=(2.0, 10.0),
        broker_outage_seconds=args.broker_outage,
        database_outage_seconds=args.database_outage,
        emulator_outage_seconds=args.emulator_outage,
        transcript_hang_seconds=args.transcript_hang,
        pools=args.pools,
        threads=args.threads,
        delivery_limit=10,
        time_limit_seconds=args.time_limit,
        lease_grace_seconds=args.lease_grace,
        sweep_grace_seconds=args.sweep_grace,
        # In sync mode the harness must know when each kill happens, to count the calls it interrupts.
        poison_before_work=args.mode == "sync",
        quiet_timeout=1800,
        recovery_timeout=300,
    )
    report = run_chaos(plan, log=lambda line: print(line, flush=True))
    print("\n".join(report.lines()))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
