"""The stream benchmark: end to end, from the tenants' Kafka messages to the rows in Cassandra.

    mysimbdp bench stream [--json-out FILE] [--plot FILE] [--rates 1000,2500,5000,7500] [--seconds 20] [--quick]
                          [--producer prebuilt|kafka-python|prebuilt,kafka-python]
    python -m benchmarks.stream [same options]

In one run:

1. the pipeline: two fresh tenants shaped like tenant1 and tenant2, each with its own worker pool
   and bridge as real processes on a private MYSIMBDP_HOME, and ``--producers`` producer processes
   per tenant (records encoded before each step, or kafka-python's producer: ``--producer``;
   with both, each rate is sent once by each, alternately).
   After a warm-up, both tenants send at each total rate of ``--rates`` (half each) for
   ``--seconds``; every message has a fresh id. After each step the benchmark waits until every
   acknowledged message is in Cassandra (or the drain timeout) and measures, per message, the time
   from its Kafka CreateTime to its row's WRITETIME;
2. the naive baseline: one consumer process, one synchronous insert per message, auto-commit, on
   ``--naive-messages`` pre-sent messages (or ``--naive-seconds``, whichever first).

Prints a table per step (with the CPU microseconds per message of each role: bridges, workers,
Cassandra, Kafka, Redis, producers) and the rate the platform's CPU per message would allow on
this host's cores, the sustained rate (the highest step that kept up with p99 <= 500 ms) and its
ratio to the baseline; writes JSON and a PNG plot; exits 1 if an acknowledged message is missing
from Cassandra. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mysimbdp_tasks.core.settings import DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_WAIT_MS, Settings
from producers.pacing import LINGER_MS

from . import stream_results as results
from .errors import BenchmarkError
from .harness import ROOT, connect, publish, run_cli, run_meta
from .options import chooser, positive_numbers, print_line
from .stream_producer import KINDS
from .stream_steps import Rig, RigOptions, baseline, describe

RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("MYSIMBDP_SAMPLES", ROOT.parent / "shared" / "data" / "reddit"))



@dataclass(frozen=True)
class Options:
    rates: tuple[float, ...] = (1000, 2500, 5000, 7500)
    seconds: float = 20
    warmup_rate: float = 500
    warmup_seconds: float = 3
    concurrency: int = 2
    producers: int | None = None  # per tenant; None: 1 pre-built, 2 kafka-python (stream_steps.DEFAULT_PRODUCERS)
    tick_ms: float | None = None
    producer: tuple[str, ...] = KINDS[:1]  # the producer kinds; with several, each rate is sent by each in turn
    bridges: int = 1
    partitions: int | None = None
    bridge_max_messages: int | None = None
    bridge_max_wait_ms: float | None = None
    drain_timeout: float = 120
    naive: bool = True
    naive_messages: int = 20_000
    naive_seconds: float = 30
    json_out: Path = RESULTS / "stream.json"
    plot_out: Path | None = RESULTS / "stream.png"
    workdir: Path | None = None
    keep: bool = False
    quick: bool = False

    @property
    def bridge_args(self) -> tuple[str, ...]:
        args: tuple[str, ...] = ()
        if self.bridge_max_messages is not None:
            args += ("--max-messages", str(self.bridge_max_messages))
        if self.bridge_max_wait_ms is not None:
            args += ("--max-wait-ms", f"{self.bridge_max_wait_ms:g}")
        return args


QUICK: dict[str, Any] = {"rates": (1000.0,), "seconds": 5.0, "warmup_seconds": 2.0, "naive_messages": 2_000,
                         "naive_seconds": 5.0, "drain_timeout": 60.0}


def _rates(text: str) -> tuple[float, ...]:
    return positive_numbers(text, "total rates in msg/s", "1000,2500,5000")


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    wrong = [k for k in kinds if k not in KINDS]
    if wrong or not kinds or len(set(kinds)) < len(kinds):
        raise argparse.ArgumentTypeError(f"expected {' or '.join(KINDS)}, or both separated by a comma "
                                         f"(e.g. {','.join(KINDS)}), got {text!r}")
    return kinds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mysimbdp bench stream", description=__doc__.split("\n")[0])
    p.add_argument("--json-out", "--json", dest="json_out", type=Path, metavar="FILE", default=Options.json_out,
                   help="write the results here")
    p.add_argument("--plot", dest="plot_out", type=Path, metavar="FILE", default=Options.plot_out,
                   help="write the PNG plot here")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--rates", type=_rates, metavar="R1,R2,...", help="total offered rates in msg/s, half per tenant "
                                                "(default 1000,2500,5000,7500)")
    p.add_argument("--seconds", type=float, metavar="S", help="length of each step (default 20)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: one 5 s step at 1000 msg/s and a short baseline (explicit options still win)")
    p.add_argument("--concurrency", type=int, default=Options.concurrency, metavar="N",
                   help="processes of each tenant's worker pool (default 2)")
    p.add_argument("--producers", type=int, default=Options.producers, metavar="N",
                   help="producer processes per tenant, each sending its share of the rate (default 1 prebuilt, "
                        "2 kafka-python)")
    p.add_argument("--tick-ms", type=float, metavar="MS",
                   help="prebuilt producers: send what is due every MS milliseconds (default: the tenant client's "
                        f"linger, {LINGER_MS})")
    p.add_argument("--producer", type=_kinds, default=Options.producer, metavar="KIND[,KIND]",
                   help="prebuilt: records encoded before each step, batched and stamped when due (default); "
                        "kafka-python: the tenant client's KafkaProducer.send() per message; "
                        "prebuilt,kafka-python: each rate once with each, alternately")
    p.add_argument("--bridges", type=int, default=Options.bridges, metavar="N",
                   help="bridge processes per tenant, in its one consumer group (default 1)")
    p.add_argument("--partitions", type=int, metavar="N",
                   help="partitions of each tenant's topic (default: the shipped tenant's)")
    p.add_argument("--bridge-max-messages", type=int, metavar="N",
                   help=f"the bridges' --max-messages (default: theirs, {DEFAULT_BATCH_MESSAGES})")
    p.add_argument("--bridge-max-wait-ms", type=float, metavar="MS",
                   help=f"the bridges' --max-wait-ms (default: theirs, {DEFAULT_BATCH_WAIT_MS:g})")
    p.add_argument("--drain-timeout", type=float, metavar="S",
                   help="seconds to wait for a step's messages to land (default 120)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    p.add_argument("--naive-messages", type=int, metavar="N", help="naive baseline: messages pre-sent (default 20000)")
    p.add_argument("--naive-seconds", type=float, metavar="S", help="naive baseline: time budget (default 30)")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="where private homes and logs go (default: a temporary folder)")
    p.add_argument("--keep", action="store_true",
                   help="keep the work folder and the benchmark tenants' keyspaces and topics")
    return p


def parse_options(argv: Sequence[str] | None = None) -> Options:
    args = build_parser().parse_args(argv)
    quick = QUICK if args.quick else {}
    defaults = Options()
    pick = chooser(args, quick, defaults)
    return Options(
        rates=pick("rates"), seconds=pick("seconds"), warmup_rate=defaults.warmup_rate,
        warmup_seconds=quick.get("warmup_seconds", defaults.warmup_seconds), concurrency=args.concurrency,
        producers=None if args.producers is None else max(1, args.producers), producer=args.producer,
        tick_ms=args.tick_ms if args.tick_ms and args.tick_ms > 0 else None, bridges=max(1, args.bridges),
        partitions=args.partitions,
        bridge_max_messages=args.bridge_max_messages, bridge_max_wait_ms=args.bridge_max_wait_ms,
        drain_timeout=pick("drain_timeout"), naive=not args.no_naive, naive_messages=pick("naive_messages"),
        naive_seconds=pick("naive_seconds"), json_out=args.json_out,
        plot_out=None if args.no_plot else args.plot_out, workdir=args.workdir, keep=args.keep, quick=args.quick,
    )


@dataclass
class Outcome:
    steps: list[results.Step]
    warmup: results.Step | None = None
    naive: results.Naive | None = None
    tenants: list[dict[str, str]] = field(default_factory=list)


def run(settings: Settings, options: Options, echo: Callable[[str], None] = print_line) -> Outcome:
    client, cluster, session = connect(settings)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="mysimbdp-bench-stream-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = Outcome([])
    try:
        rig = Rig(settings, client, session, workdir, DATA,
                  RigOptions(options.concurrency, options.bridge_args, options.drain_timeout, options.keep,
                             options.producers, options.bridges, options.partitions, options.producer,
                             options.tick_ms), echo)
        try:
            pipeline(rig, options, outcome, echo)
        finally:
            rig.stop()
        if options.naive:
            echo(f"naive baseline: {options.naive_messages:,} messages or {options.naive_seconds:g} s ...")
            outcome.naive = n = baseline(settings, client, session, workdir, DATA, options.naive_messages,
                                         options.naive_seconds, options.keep, echo)
            echo(f"  {n.messages:,} messages in {n.seconds:.2f} s: {n.per_s:,.0f} msg/s; "
                 f"{n.rows_in_cassandra:,} rows in Cassandra")
    finally:
        cluster.shutdown()
        client.close()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return outcome


def pipeline(rig: Rig, options: Options, outcome: Outcome, echo: Callable[[str], None]) -> None:
    """The warm-up, then one step per rate; stops at the first step whose messages did not all land."""
    rig.start()
    outcome.tenants = describe(rig.tenants)
    echo(f"warm-up: {options.warmup_rate:g} msg/s for {options.warmup_seconds:g} s ...")
    outcome.warmup = warm = rig.step(0, options.warmup_rate, options.warmup_seconds)
    if warm.landed < warm.acked:
        raise BenchmarkError(f"warm-up: only {warm.landed:,} of {warm.acked:,} messages landed within "
                             f"{options.drain_timeout:g} s; still waiting: {warm.details.get('stalled')}; "
                             f"logs:\n{rig.tails()}")
    runs = [(rate, kind) for rate in options.rates for kind in options.producer]
    for number, (rate, kind) in enumerate(runs, start=1):
        echo(f"step {number}: {rate:,.0f} msg/s offered for {options.seconds:g} s by the {kind} producers ...")
        step = rig.step(number, rate, options.seconds, kind)
        outcome.steps.append(step)
        echo("  " + _line(step))
        if step.landed < step.acked:
            echo(f"  not drained after {options.drain_timeout:g} s (still waiting: {step.details.get('stalled')}); "
                 f"higher rates skipped; logs:\n{rig.tails()}")
            break


def _line(s: results.Step) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    return (f"sent {s.sent_per_s:,.0f}/s, landed {s.landed:,} of {s.acked:,} at {s.landed_per_s:,.0f}/s, "
            f"p50 {ms(s.p50_ms)} ms, p95 {ms(s.p95_ms)} ms, p99 {ms(s.p99_ms)} ms: {s.verdict}")


METHOD = (
    "latency: per message, its row's WRITETIME (microseconds, assigned by the worker's Cassandra driver when it "
    "issues the write) minus its Kafka CreateTime (milliseconds: set when its pre-built record batch is sent, or "
    "by kafka-python inside send()); one machine, one clock. sent/s and landed/s: the step's messages "
    "acknowledged by Kafka (by CreateTime) and its rows "
    "in Cassandra (by WRITETIME) per second, both from a quarter into the sending span to its last send. "
    "kept up: every acknowledged message landed, "
    "and the backlog (sent - written) did not grow by more than 5 % of the sent rate over the step unless it "
    "drained within 1 s of the last send. sustained: the highest step that kept up with p99 <= 500 ms. "
    "CPU us per message: CPU seconds of each kind of role from the first send to the step's last row, over the "
    "messages acknowledged. CPU-bound msg/s: the host's cores divided by the platform's CPU per message (bridges, "
    "workers, Cassandra, Kafka, Redis; not the producers, the benchmark or the rest of the machine).")


def meta(options: Options, started: float, load_before: tuple[float, ...],
         tenants: list[dict[str, str]]) -> dict[str, Any]:
    return {
        **run_meta(options, started, load_before),
        "method": METHOD,
        "tenants": tenants,
    }


def main(settings: Settings, argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    started, load_before = time.time(), os.getloadavg()
    outcome = run(settings, options)
    doc = results.report(outcome.steps, outcome.naive, meta(options, started, load_before, outcome.tenants),
                         outcome.warmup)
    from . import stream_plot

    publish(doc, results.table(outcome.steps), results.summary(doc), options.json_out, options.plot_out,
                    stream_plot.render)
    if not doc["verified"]:
        raise BenchmarkError(f"messages missing from Cassandra or dead-lettered (see the table above and "
                             f"{options.json_out})")
    return 0


if __name__ == "__main__":
    run_cli(main)
