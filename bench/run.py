#!/usr/bin/env python3
"""`plan run` against ninja on the same DAGs, in the same invocation, alternating.

Usage: cargo build --release && python3 bench/run.py [--runs N]
Installs ninja from PyPI into target/bench-venv on first use.

Shapes: a 1,000-step chain of `true`; 1,000 independent `true` at -j2; a
10,000-step chain; a random DAG of 200 `sleep 0.05` at -j8 (wall time over
the critical-path lower bound). Prints medians, the plan/ninja ratio, and
the peak memory (max RSS) of plan on the 10,000-step chain. plan/ninja is
the median over the runs of each run's ratio (plan and ninja run back to
back, alternating). Targets:
plan/ninja <= 1.10 on the three `true` shapes with the journal on (records
written before each step, synced beside the steps); the sleep DAG's
wall/bound within 0.01 of ninja's own; peak memory for 10,000 steps under
64 MB. `--plan PATH` measures another build (e.g. an older one).
For the two `true` shapes it also measures what a sync before each step
adds to a bare spawn loop on this disk, and prints the least plan/ninja
that any tool syncing before every step can reach here.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
PLAN = os.path.join(TARGET, "release", "plan")
VENV = os.path.join(TARGET, "bench-venv")
NINJA = os.path.join(VENV, "bin", "ninja")


def ensure_ninja():
    if not os.path.exists(NINJA):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "ninja"], check=True)


def dag(n, edges_of):
    """(steps, needs): needs[i] is a list of earlier step indices."""
    return [edges_of(i) for i in range(n)]


def write_plan(path, needs, cmd):
    out = ["apiVersion: plan/v1", "name: bench", "steps:"]
    for i, ns in enumerate(needs):
        out.append(f"  - id: s{i}")
        if ns:
            out.append("    needs: [" + ", ".join(f"s{j}" for j in ns) + "]")
        out.append(f"    run: {cmd}")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_ninja(path, needs, cmd):
    # Phony-free: each edge runs the command and makes no file, so ninja runs every edge every time.
    out = ["rule r", f"  command = {cmd}", ""]
    for i, ns in enumerate(needs):
        order = (" || " + " ".join(f"s{j}" for j in ns)) if ns else ""
        out.append(f"build s{i}: r{order}")
    out.append("default " + " ".join(f"s{i}" for i in range(len(needs))))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def timed(cmd, cwd):
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {r.stderr.decode()[-800:]}")
    return dt


def bench(name, needs, cmd, jobs, runs, workdir):
    d = os.path.join(workdir, name)
    os.makedirs(d)
    write_plan(os.path.join(d, "plan.yaml"), needs, f'"{cmd}"' if " " not in cmd else f"{cmd}")
    write_ninja(os.path.join(d, "build.ninja"), needs, cmd)
    p_times, n_times = [], []
    for k in range(runs):
        state = os.path.join(d, f"state-{k}")
        p_times.append(timed([PLAN, "run", "plan.yaml", "--jobs", str(jobs), "--state-dir", state], d))
        for f in (".ninja_log", ".ninja_deps"):
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
        n_times.append(timed([NINJA, f"-j{jobs}"], d))
        shutil.rmtree(state)
    p, n = statistics.median(p_times), statistics.median(n_times)
    # The ratio is the median of each run's plan/ninja: the two run back to
    # back, so a slow minute on a shared machine slows both sides of a pair.
    ratio = statistics.median(pt / nt for pt, nt in zip(p_times, n_times))
    print(f"{name:<28} plan {p * 1000:8.1f} ms   ninja {n * 1000:8.1f} ms   plan/ninja {ratio:5.2f}  (target <= 1.10 for the `true` shapes)")
    return p, n


def sync_cost(workdir, slots, steps=1000):
    """Seconds that syncing adds to a run of `steps` steps of `true` in a
    bare executor on this disk: `slots` Python threads, each looping over
    posix_spawn(true) + waitpid, with and without appending a journal-sized
    record and fdatasync-ing it (preallocated file, as the journal) before
    each spawn; median of 3, alternating. Syncs between processes cost more
    than back-to-back ones, so this is measured on running steps, not in a
    tight loop."""
    import threading

    path = os.path.join(workdir, "sync-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    true = shutil.which("true") or "/bin/true"
    lock, offset = threading.Lock(), [0]

    def slot(n, sync):
        for _ in range(n):
            if sync:
                with lock:
                    at, offset[0] = offset[0], offset[0] + 501
                os.pwrite(fd, b"x" * 500 + b"\n", at)
                os.fdatasync(fd)
            os.waitpid(os.posix_spawn(true, ["true"], os.environ), 0)

    def run(sync):
        offset[0] = 0
        threads = [threading.Thread(target=slot, args=(steps // slots, sync)) for _ in range(slots)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.perf_counter() - t

    try:
        os.pwrite(fd, bytes(1 << 20), 0)
        os.fsync(fd)
        bare, synced = [], []
        for _ in range(3):
            bare.append(run(False))
            synced.append(run(True))
        return statistics.median(synced) - statistics.median(bare)
    finally:
        os.close(fd)
        os.remove(path)


def print_floor(ninja, added):
    print(f"{'':<28} syncing before each step adds {added * 1000:.0f} ms to a bare spawn loop of this shape here:"
          f" any tool that does is at least {(ninja + added) / ninja:.2f} x ninja")


def critical_path(needs, cost):
    finish = []
    for ns in needs:
        finish.append(cost + max((finish[j] for j in ns), default=0.0))
    return max(finish)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--plan", default=None, help="the plan binary to measure (default: the release build)")
    args = ap.parse_args()
    global PLAN
    PLAN = args.plan or PLAN
    if not os.path.exists(PLAN):
        sys.exit("build first: cargo build --release")
    ensure_ninja()
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as w:
        _, ninja_chain = bench("chain 1,000 x true", dag(1000, lambda i: [i - 1] if i else []), "true", 2, args.runs, w)
        print_floor(ninja_chain, sync_cost(w, 1))
        _, ninja_wide = bench("1,000 independent, -j2", dag(1000, lambda i: []), "true", 2, args.runs, w)
        print_floor(ninja_wide, sync_cost(w, 2))
        bench("chain 10,000 x true", dag(10000, lambda i: [i - 1] if i else []), "true", 2, max(3, args.runs // 2), w)
        sleep_dag = dag(200, lambda i: sorted(rng.sample(range(i), min(i, rng.randint(0, 3)))) if i else [])
        wall, ninja_wall = bench("random DAG 200 x sleep 0.05", sleep_dag, "sleep 0.05", 8, args.runs, w)
        # The lower bound with 8 jobs: the longest path, or total work / 8, whichever is larger.
        bound = max(critical_path(sleep_dag, 0.05), 200 * 0.05 / 8)
        print(f"{'':<28} wall/bound {wall / bound:5.3f}, ninja's {ninja_wall / bound:5.3f} (bound {bound * 1000:.0f} ms; target: within 0.01 of ninja's)")
        d = os.path.join(w, "chain 10,000 x true")
        subprocess.run(["/usr/bin/time", "-f", "%M", PLAN, "run", "plan.yaml", "--jobs", "2", "--state-dir", os.path.join(d, "mem")],
                       cwd=d, stdout=subprocess.DEVNULL, stderr=open(os.path.join(w, "mem.txt"), "w"), check=True)
        peak_kb = int(open(os.path.join(w, "mem.txt")).read().split()[-1])
        print(f"{'peak memory, 10,000 steps':<28} {peak_kb / 1024:.1f} MB (target < 64 MB)")


if __name__ == "__main__":
    main()
