"""The soak: cofre for an hour (by default) at 80 % of its measured capacity.

    .venv/bin/python bench/soak.py                      # SQLite, 60 minutes
    .venv/bin/python bench/soak.py --database postgres --minutes 60 --json soak.json

Starts cofre as bench/run.py does (2 workers, the LogisticRegression pipeline on
breast cancer, one row per request), measures its capacity with wrk at full speed,
then keeps it at `--load` of that rate: wrk runs a minute at a time with a pause
between each connection's requests, the pause corrected every minute toward the
target rate. Every minute it records the rate, p50/p99, errors, the prediction
audit records added and the RSS and PSS of every process; at the end it waits for
the last answers, checks that every 2xx answer has its audit record, runs `cofre
audit verify`, and says whether memory stayed flat (a least-squares line through
the workers' PSS after the warm-up minutes, scipy.stats.linregress).
Not part of `make test`: it runs for the length asked and should have the machine
to itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import run as bench  # bench/run.py: the servers, the workload, wrk, the audit counter

CAPACITY_SECONDS = 20
# Memory is "flat" when the fitted growth over the soak after warm-up stays under
# this share of the workers' mean PSS, and under FLAT_MIB in absolute terms.
FLAT_SHARE = 0.05
FLAT_MIB = 16.0


@dataclass
class Minute:
    minute: int
    delay_ms: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    wrk_2xx: int
    audited: int  # prediction records with outcome ok added in this minute
    audited_other: int
    rss_mb: float  # every process of the server
    pss_mb: float
    worker_pss_mb: dict[int, float]  # pid -> PSS, the master included


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--load", type=float, default=0.8, help="share of the capacity")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup-minutes", type=int, default=2, help="left out of the fit")
    parser.add_argument("--json", type=Path, help="write the report here too")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    bench.ensure_wrk()
    scenario = next(s for s in bench.SCENARIOS if s.key == "lr-1")
    with tempfile.TemporaryDirectory(prefix="cofre-soak-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        work = bench.build_workload(workdir / "models", proba=False)
        url = None
        if args.database == "postgres":
            url = stack.enter_context(bench.postgres_database(args.postgres_url))
        models = {m: work.directory / f"{m}.skops" for m in bench.MODELS}
        target = bench.start_cofre(args.database, workdir, models, args.workers, url, False)
        server = target.servers[scenario.model]
        stack.callback(server.stop)
        body = work.bodies[("native", scenario.key)]
        bench.check_answers(target, scenario, work, 120)
        audit = bench.AuditCounter(str(target.database_url))
        stack.callback(audit.close)
        report = soak(args, target, server, audit, scenario, body)
        report["verified"] = bench.verify(server)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["verified"] and report["complete"] else 1


def soak(
    args: argparse.Namespace,
    target: bench.Target,
    server: bench.Server,
    audit: bench.AuditCounter,
    scenario: bench.Scenario,
    body: Path,
) -> dict[str, Any]:
    c = args.concurrency
    bench.wrk(target, scenario, body, c, 5)  # every worker has loaded the model
    full = bench.wrk(target, scenario, body, c, CAPACITY_SECONDS)
    capacity = (full["requests"] - full["non2xx"]) / (full["duration_us"] / 1e6)
    wanted = capacity * args.load
    # A connection's cycle is its answer's latency plus the pause; start from the
    # latency at full speed and let the correction below do the rest.
    delay = max(1.0, 1000 * c / wanted - full["p50_us"] / 1000)
    print(
        f"capacity {capacity:.0f} req/s at c={c}; soaking at {wanted:.0f} req/s "
        f"({args.load:.0%}) for {args.minutes} min on {args.database}",
        flush=True,
    )
    bench.settle(target, server, audit)
    served_start = server.served(target.access_line) if target.access_line else 0
    audit_start = audit.counts()
    minutes: list[Minute] = []
    before = audit_start
    for number in range(1, args.minutes + 1):
        out = bench.wrk(target, scenario, body, c, 60, delay_ms=round(delay))
        now = audit.counts()
        minute = _minute(number, round(delay), out, now, before, server)
        before = now
        minutes.append(minute)
        print("  " + _line(minute), flush=True)
        if minute.rps > 0:  # lengthen or shorten each cycle by what the rate was off
            delay = max(1.0, delay + 1000 * c / wanted - 1000 * c / minute.rps)
    bench.settle(target, server, audit)
    served = (server.served(target.access_line) if target.access_line else 0) - served_start
    ok, other = (a - b for a, b in zip(audit.counts(), audit_start, strict=True))
    wrk_2xx = sum(m.wrk_2xx for m in minutes)
    return {
        "machine": bench.machine(),
        "database": args.database,
        "workers": args.workers,
        "concurrency": c,
        "capacity_rps": capacity,
        "target_rps": wanted,
        "minutes": [asdict(m) for m in minutes],
        "served_2xx": served,
        "wrk_2xx": wrk_2xx,
        "audited_ok": ok,
        "audited_other": other,
        # Every answer the server sent has its record; wrk may not have counted the
        # last few of each minute (it stops its clock with requests in flight).
        "complete": ok == served and 0 <= ok - wrk_2xx <= c * len(minutes) and other == 0,
        "memory": memory_verdict(minutes, args.warmup_minutes),
    }


def _minute(
    number: int,
    delay_ms: int,
    out: dict[str, Any],
    now: tuple[int, int],
    before: tuple[int, int],
    server: bench.Server,
) -> Minute:
    rss, pss = server.memory_mb()
    wrk_2xx = out["requests"] - out["non2xx"]
    return Minute(
        minute=number,
        delay_ms=delay_ms,
        rps=wrk_2xx / (out["duration_us"] / 1e6),
        p50_ms=out["p50_us"] / 1000,
        p99_ms=out["p99_us"] / 1000,
        non2xx=out["non2xx"],
        socket_errors=out["connect"] + out["read"] + out["write"] + out["timeout"],
        wrk_2xx=wrk_2xx,
        audited=now[0] - before[0],
        audited_other=now[1] - before[1],
        rss_mb=rss,
        pss_mb=pss,
        worker_pss_mb=server.pss_by_process(),
    )


def memory_verdict(minutes: list[Minute], warmup: int) -> dict[str, Any]:
    """A least-squares line through the server's PSS, minute by minute, after warm-up."""
    from scipy.stats import linregress

    steady = minutes[warmup:] if len(minutes) > warmup + 2 else minutes
    if len(steady) < 3:
        return {"flat": None, "reason": "fewer than 3 minutes after warm-up"}
    fit = linregress([m.minute for m in steady], [m.pss_mb for m in steady])
    span = steady[-1].minute - steady[0].minute
    growth = fit.slope * span
    mean = sum(m.pss_mb for m in steady) / len(steady)
    return {
        "flat": bool(growth < min(FLAT_SHARE * mean, FLAT_MIB)),
        "slope_mib_per_hour": fit.slope * 60,
        "fitted_growth_mib": growth,
        "mean_pss_mib": mean,
        "first_pss_mib": steady[0].pss_mb,
        "last_pss_mib": steady[-1].pss_mb,
        "max_worker_pss_mib": max(max(m.worker_pss_mb.values()) for m in steady),
    }


def _line(m: Minute) -> str:
    workers = " ".join(f"{v:.0f}" for v in sorted(m.worker_pss_mb.values()))
    return (
        f"min {m.minute:>3}  {m.rps:7.1f} req/s  p50 {m.p50_ms:6.1f} ms  p99 {m.p99_ms:6.1f} ms  "
        f"errors {m.non2xx + m.socket_errors:>4}  audited {m.audited:>6}  "
        f"PSS {m.pss_mb:6.1f} MiB (by process: {workers})  pause {m.delay_ms} ms"
    )


def print_report(report: dict[str, Any]) -> None:
    memory = report["memory"]
    minutes = report["minutes"]
    errors = sum(m["non2xx"] + m["socket_errors"] for m in minutes)
    p99 = max((m["p99_ms"] for m in minutes), default=0.0)
    print()
    print(f"machine: {report['machine']}")
    print(
        f"{report['database']}, {report['workers']} workers, c={report['concurrency']}: "
        f"capacity {report['capacity_rps']:.0f} req/s, target {report['target_rps']:.0f} req/s, "
        f"{len(minutes)} minutes"
    )
    print(
        f"answers 2xx {report['served_2xx']} (wrk counted {report['wrk_2xx']}), errors {errors}, "
        f"worst minute's p99 {p99:.1f} ms"
    )
    print(
        f"audit records ok {report['audited_ok']}, other {report['audited_other']}: "
        f"{'every answer audited' if report['complete'] else 'MISMATCH'}; "
        f"verify {'passed' if report['verified'] else 'FAILED'}"
    )
    if memory.get("flat") is None:
        print(f"memory: {memory['reason']}")
    else:
        print(
            f"memory {'flat' if memory['flat'] else 'NOT flat'}: PSS {memory['first_pss_mib']:.1f} "
            f"-> {memory['last_pss_mib']:.1f} MiB, fitted {memory['slope_mib_per_hour']:+.2f} "
            f"MiB/hour ({memory['fitted_growth_mib']:+.2f} MiB over the soak after warm-up), "
            f"largest process {memory['max_worker_pss_mib']:.1f} MiB"
        )


if __name__ == "__main__":
    sys.exit(main())
