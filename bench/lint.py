#!/usr/bin/env python3
"""Median time of `plan lint` on generated step chains (1k, 10k, 20k steps).

Usage: cargo build --release && python3 bench/lint.py [--runs N]
Prints each median and the 20k/10k ratio (linear cost means about 2.0).
Targets: 10,000 steps in at most 100 ms (one parse thread); 20k/10k at most 2.2.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAN = os.path.join(ROOT, "target", "release", "plan")


def chain(n: int) -> str:
    out = ["apiVersion: plan/v1", "name: chain", "vars:", "  greeting:", "    default: hello", "steps:"]
    out.append("  - id: s0\n    run: echo {{greeting}}")
    for i in range(1, n):
        out.append(f"  - id: s{i}\n    needs: [s{i - 1}]\n    run: echo {{{{greeting}}}} {i}")
    return "\n".join(out) + "\n"


def median_ms(path: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run([PLAN, "lint", "--format", "json", path], stdout=subprocess.PIPE)
        times.append((time.perf_counter() - t) * 1000)
        if r.returncode != 0:
            sys.exit(f"lint failed on {path}: {r.stdout[:500]!r}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    if not os.path.exists(PLAN):
        sys.exit("build first: cargo build --release")
    with tempfile.TemporaryDirectory() as d:
        results = {}
        for n in (1_000, 10_000, 20_000):
            p = os.path.join(d, f"chain-{n}.yaml")
            with open(p, "w") as f:
                f.write(chain(n))
            results[n] = median_ms(p, args.runs)
            print(f"lint chain {n:>6} steps ({os.path.getsize(p) / 1024:.0f} KiB): median {results[n]:7.1f} ms over {args.runs} runs")
        ratio = results[20_000] / results[10_000]
        print(f"ratio 20k/10k: {ratio:.2f} (target <= 2.2); 10k: {results[10_000]:.1f} ms (target <= 100 ms)")


if __name__ == "__main__":
    main()
