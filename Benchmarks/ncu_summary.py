#!/usr/bin/env python3
"""Sums an Nsight Compute per-kernel CSV (`ncu --csv --print-units base --metrics
gpu__time_duration.sum ...`) by kernel name: where a training step's GPU time goes. Lines
that are not the CSV (the program's own output, ncu's ==PROF== notes) are skipped.

    python3 Benchmarks/ncu_summary.py ncu.log --steps 4 [--top 25]
"""
import argparse
import csv
import collections
import re


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--steps", type=float, default=1, help="training steps the log covers (per-step figures)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    rows = [line for line in open(args.log, errors="replace") if line.startswith('"')]
    reader = csv.DictReader(rows)
    total = collections.Counter()
    count = collections.Counter()
    shapes = collections.defaultdict(set)
    for row in reader:
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = re.sub(r"\(.*", "", row["Kernel Name"])[:70]
        value = float(row["Metric Value"].replace(",", ""))
        unit = row.get("Metric Unit", "ns")
        value *= {"ns": 1, "nsecond": 1, "us": 1e3, "usecond": 1e3, "ms": 1e6, "msecond": 1e6}.get(unit, 1)
        total[name] += value
        count[name] += 1
        shapes[name].add(row.get("Grid Size", "?"))
    grand = sum(total.values())
    launches = sum(count.values())
    print(f"{launches / args.steps:.0f} kernels per step, {grand / args.steps / 1e3:.1f} us of kernel time per step")
    print(f"{'us/step':>9} {'share':>6} {'calls/step':>10}  kernel (grid sizes)")
    for name, value in total.most_common(args.top):
        grids = " ".join(sorted(shapes[name]))[:60]
        print(f"{value / args.steps / 1e3:9.1f} {100 * value / grand:5.1f}% {count[name] / args.steps:10.1f}  {name} ({grids})")


if __name__ == "__main__":
    main()
