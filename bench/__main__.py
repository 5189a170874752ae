"""``python -m bench [--quick] [--profile] [SCENARIO ...]``: run the scenarios (all by
default), write ``bench/results/<scenario>.json``, then draw ``bench/results/summary.png``.
``python -m bench chart`` only redraws the chart from the JSON files already there."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.context import RESULTS_DIR, Options, write_result
from bench.noise import NoiseMeter
from bench.scenarios import SCENARIOS


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every scenario's finally stops its processes.
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)}, or chart (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"),
        help="shorter runs for development (also BENCH_QUICK=1)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile the ceiling run with py-spy")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="output directory")
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes per pool (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory (logs, targets)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS and s != "chart"]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}, chart")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    options = Options(
        quick=args.quick,
        profile=args.profile,
        results_dir=args.results,
        concurrency=args.concurrency,
        keep=args.keep,
    )
    names = [s for s in args.scenarios if s != "chart"] or ([] if args.scenarios else list(SCENARIOS))
    failed: list[str] = []
    for name in names:
        print(f"[bench] {name}{' (quick)' if options.quick else ''} ...", flush=True)
        began = time.monotonic()
        started = datetime.now(UTC)
        noise = NoiseMeter()
        try:
            with noise:
                figures = SCENARIOS[name].run(options)
        except KeyboardInterrupt:
            print(f"[bench] {name}: interrupted", flush=True)
            return 130
        except Exception as exc:
            traceback.print_exc()
            failed.append(name)
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        figures.pop("started", None)
        figures["noise"] = noise.summary()
        path = write_result(options, name, figures, started)
        print(f"[bench] {name}: {time.monotonic() - began:.0f} s -> {path}", flush=True)
        headline = figures.get("headline")
        if headline:
            print(f"[bench]   {headline}", flush=True)
        other = figures["noise"]["other_load_cores_mean"]
        print(
            f"[bench]   other load on the machine meanwhile: {other} cores (of {os.cpu_count()})", flush=True
        )
    try:
        from bench.chart import draw
    except ImportError as exc:
        print(f"[bench] no chart ({exc}): pip install -e '.[bench]'", flush=True)
        return 1
    chart = draw(options.results_dir)
    print(f"[bench] chart -> {chart}", flush=True)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
