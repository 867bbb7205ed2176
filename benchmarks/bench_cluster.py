"""`debrief batch --cluster local` against `--cluster none`: what Ray costs and buys on this machine.

Analyzes the batch benchmark's corpus (benchmarks/bench_batch.py renders it once, under
benchmarks/out/) with 2 workers in each mode, through `run_batch` as the CLI calls it, each
into a fresh store, start-up included in the wall time:

  none    `debrief batch`'s worker processes (local_pool)
  local   Ray Core actors on a one-machine Ray cluster started for the batch (debrief.cluster)

Prints the machine and its load (other work on it skews every figure), per mode the best wall
time of `--rounds`, files per second, hours of audio per hour and the peak memory (PSS) of the
whole process tree, and how many files got the same transcript and fix in both; then Ray's own
costs: starting the cluster, getting the actors' models loaded, stopping it, and the memory of
an idle cluster. Needs the cluster extra. A script, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench import machine  # noqa: E402
from bench_batch import OUT, corpus  # noqa: E402

WORKERS = 2


def pss_mb(pid: int) -> float:
    """Proportional set size of one process: shared pages split between their users, so sums add up."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:  # gone meanwhile
        pass
    return 0.0


def tree(root: int) -> list[int]:
    """`root` and every process under it (Ray's are children of the driver, workers of the raylet)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


class PeakMemory:
    """Samples the PSS of this process's tree every `every` seconds; `peak` is the most seen."""

    def __init__(self, every: float = 0.5) -> None:
        self.every, self.peak, self._stop = every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, sum(pss_mb(pid) for pid in tree(os.getpid())))


def run(folder: Path, scheduler, beam_size: int) -> tuple[float, float, dict]:
    """One batch of `folder` into a fresh store: wall seconds, peak MB, {file: (transcript, fix)}."""
    from debrief.batch import Settings, discover, run_batch
    from debrief.store import Store

    settings = Settings(str(REPO / "models" / "baseline"), beam_size=beam_size,
                        cpu_threads=max(1, len(os.sched_getaffinity(0)) // WORKERS))
    with tempfile.TemporaryDirectory() as home, Store(Path(home) / "bench.db") as store, PeakMemory() as memory:
        started = time.perf_counter()
        summary = run_batch(discover(folder), settings, store, workers=WORKERS, scheduler=scheduler)
        wall = time.perf_counter() - started
        assert not summary.failures, summary.failures
        answers = {Path(e.path).name: ((e.result or {}).get("transcript"), e.fix) for e in store.history()}
    return wall, memory.peak, answers


def ray_overhead(rounds: int) -> dict[str, float]:
    """Ray's own costs, best of `rounds`: start, actors with models loaded, stop; idle memory."""
    from debrief.batch import Settings
    from debrief.cluster import BatchWorker, import_ray

    ray = import_ray("local")
    settings = Settings(str(REPO / "models" / "baseline"), cpu_threads=1)
    best: dict[str, float] = {}
    for _ in range(rounds):
        before = sum(pss_mb(pid) for pid in tree(os.getpid()))
        started = time.perf_counter()
        ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        init = time.perf_counter() - started
        time.sleep(2)  # let the processes Ray starts settle before they are weighed
        pids = tree(os.getpid())
        idle = sum(pss_mb(pid) for pid in pids) - before
        started = time.perf_counter()
        actors = [ray.remote(BatchWorker).options(num_cpus=1).remote(settings) for _ in range(WORKERS)]
        assert ray.get([actor.ready.remote() for actor in actors]) == [None] * WORKERS
        ready = time.perf_counter() - started
        started = time.perf_counter()
        ray.shutdown()
        stop = time.perf_counter() - started
        for key, value in (("init_s", init), ("actors_ready_s", ready), ("shutdown_s", stop),
                           ("idle_mb", idle), ("idle_processes", len(pids) - 1)):
            best[key] = min(best.get(key, value), value)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8, help="recordings in the corpus")
    parser.add_argument("--join", type=int, default=3, help="debriefs joined into each recording")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="runs per mode; the best one counts")
    args = parser.parse_args()

    from debrief.cluster import RayPool

    folder, seconds = corpus(args.files, args.join)
    files = len(list(folder.glob("*.wav")))
    pool = RayPool("local", cpus_per_worker=1)  # imports Ray, outside any clock
    import ray

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {machine()}; Ray {ray.__version__}")
    print(f"cores usable: {cores}; memory: {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"corpus: {files} recordings, {seconds / 60:.1f} min of audio ({folder.relative_to(REPO)}); "
          f"tiny.en int8, beam {args.beam_size}, {WORKERS} workers")

    modes = [("none", None), ("local", pool)]
    best: dict[str, tuple[float, float]] = {}
    answers: dict[str, dict] = {}
    # Modes take turns and each keeps its best round: on a shared machine the others' load comes and goes.
    for round_ in range(args.rounds):
        for name, scheduler in modes:
            wall, peak, answers[name] = run(folder, scheduler, args.beam_size)
            best[name] = min(best.get(name, (wall, peak)), (wall, peak))
            print(f"  round {round_ + 1}: --cluster {name}: {wall:.1f} s, peak {peak:.0f} MB", flush=True)

    rows = []
    print(f"{'mode':16} {'wall s':>8} {'files/s':>8} {'audio h / h':>12} {'peak MB':>8} {'same transcript':>16} "
          f"{'same fix':>9}")
    for name, _ in modes:
        (wall, peak), reference = best[name], answers["none"]
        transcripts = sum(answers[name][k][0] == v[0] for k, v in reference.items())
        fixes = sum(answers[name][k][1] == v[1] for k, v in reference.items())
        rows.append({"mode": f"--cluster {name}", "wall_s": round(wall, 2), "files_per_s": round(files / wall, 3),
                     "audio_hours_per_hour": round(seconds / wall, 1), "peak_pss_mb": round(peak),
                     "same_transcript": f"{transcripts}/{files}", "same_fix": f"{fixes}/{files}"})
        print(f"--cluster {name:6} {wall:8.1f} {files / wall:8.3f} {seconds / wall:12.1f} {peak:8.0f} "
              f"{transcripts:>12}/{files} {fixes:>5}/{files}")

    overhead = ray_overhead(args.rounds)
    print(f"Ray start-up: ray.init {overhead['init_s']:.2f} s; {WORKERS} actors with models loaded "
          f"{overhead['actors_ready_s']:.2f} s more; shutdown {overhead['shutdown_s']:.2f} s")
    print(f"Ray idle memory: {overhead['idle_mb']:.0f} MB PSS in {overhead['idle_processes']:.0f} processes "
          f"(no actors)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_cluster.json").write_text(json.dumps(
        {"machine": machine(), "ray": ray.__version__, "cores": cores, "audio_s": seconds, "rows": rows,
         "ray_overhead": {k: round(v, 2) for k, v in overhead.items()}}, indent=2))
    return 0


if __name__ == "__main__":  # the none mode's worker processes are spawned: they must not rerun this
    sys.exit(main())
