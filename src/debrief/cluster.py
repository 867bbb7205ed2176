"""`debrief batch --cluster`: the batch on Ray Core actors, on this machine or on a Ray cluster.

`RayPool` is a scheduler for `debrief.batch.run_batch`, in place of its local worker processes:
the driver still finds the files, skips what the store has and commits every result (it alone
writes to the store); Ray only runs `run_job` in actors, each of which loads the models once and
takes one file at a time.

Failures, and what each costs:

* A worker process that dies mid-file (a kill, the out-of-memory killer, a lost node): Ray
  restarts the actor and runs the file again on it (`max_task_retries`). A file that kills its
  worker on every try becomes one error row after the retries; the restarted actor goes on with
  the next file.
* An ordinary exception in a file: `run_job` turns it into an error row, on the first try. Ray
  retries a method only when its process died, never one that returned.
* The models cannot be loaded: the batch stops with that error, as with local workers.

Where Ray runs (`--cluster`): `local` starts a one-machine cluster that listens on 127.0.0.1
only and sends no usage statistics; `auto` joins the cluster this runs in (a Ray Job);
`ray://HOST:PORT` connects through the Ray Client, which is for interactive use only: it drops
the work of a client that stays disconnected for 30 s.

Ray is the optional extra `debrief[cluster]`, imported only here.

Touches: Ray (a local cluster it starts, or the one it joins); results come back to the driver, which alone writes the history.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import replace

from debrief.batch import CRASHED, Job, Settings, _load_error, analyzer_for, run_job, usable_cores
from debrief.errors import DebriefError, describe

log = logging.getLogger(__name__)

MODES = ("none", "local", "auto")
CLIENT = "ray://"
EXTRA = "pip install 'debrief[cluster]'"


class ClusterError(DebriefError):
    """--cluster cannot be used as given: Ray is not installed, or the address is malformed."""

    exit_code = 2


def check_address(address: str) -> str:
    """`address` if it is none, local, auto or ray://HOST:PORT; else a ClusterError."""
    if address in MODES:
        return address
    host, _, port = address.removeprefix(CLIENT).rpartition(":")
    if address.startswith(CLIENT) and host and port.isdigit():
        return address
    raise ClusterError(f"--cluster '{address}': use none, local, auto or ray://HOST:PORT")


def import_ray(address: str):
    """The `ray` module, or a one-line ClusterError that names the extra to install."""
    if address == "local":
        # Ray reads these when it is imported, and the processes it starts inherit them. Usage
        # statistics stay off unless asked for: nothing leaves the machine. The second makes a
        # one-machine cluster that binds 127.0.0.1 only; Ray named it for Windows and macOS,
        # where that is the default.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster {address} needs Ray, which is not installed: {EXTRA}") from None
    return ray


class BatchWorker:
    """What runs inside each Ray actor: `run_job` with the models loaded once.

    The constructor does nothing that can fail. Ray restarts an actor whose process died, and
    would restart one that crashed while loading a model forever; loading in a method instead
    bounds those tries by `max_task_retries`, like any file's.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def ready(self) -> tuple[str, int] | None:
        """Load the models; None when they are loaded, else the error's line and exit code."""
        try:
            analyzer_for(self.settings)
        except Exception as exc:  # noqa: BLE001 - reported by the driver as one line
            return describe(exc)
        return None

    def run(self, job: Job) -> dict:
        """One file's record, as `run_job` makes it."""
        return run_job(job, self.settings)


class RayPool:
    """A `run_batch` scheduler on Ray actors: `RayPool(address, ...)(jobs, settings, workers)`.

    Each actor holds `cpus_per_worker` CPUs (and as many transcriber threads) and
    `gpus_per_worker` GPUs (fractions share one). A file is run again up to `max_retries` times
    after its worker dies mid-file. `workers` 0 means as many actors as the cluster has room for;
    `self.workers` says how many the last batch had.
    """

    def __init__(self, address: str, *, cpus_per_worker: int = 1, gpus_per_worker: float = 0.0,
                 max_retries: int = 2) -> None:
        self.address = check_address(address)
        if self.address == "none":
            raise ClusterError("--cluster none runs no Ray cluster")
        self.ray = import_ray(self.address)  # here, so that a missing extra fails before any work
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.max_retries = max_retries
        self.workers = 0

    def __call__(self, jobs: list[Job], settings: Settings, workers: int) -> Iterator[tuple[str, Job, dict | None]]:
        """Run `jobs` on actors; yields ("started" | "finished", job, result) as `local_pool` does.

        Closing the generator kills the actors (and stops a cluster it started); a file they
        were running is not recorded, and the next run does it.

        Raises:
          DebriefError: Ray could not start or be reached, or a worker could not load the models.
        """
        if not jobs:
            return
        ray = self.ray
        started_here = not ray.is_initialized()  # a caller's own connection is left alone
        if started_here:
            self._connect(self.cpus_per_worker * workers)
        actors = []
        try:
            # Ray sets OMP_NUM_THREADS to each actor's CPUs; the transcriber is told as well,
            # rather than left to size its thread pool by the whole machine's cores.
            settings = replace(settings, cpu_threads=self.cpus_per_worker)
            worker_class = ray.remote(BatchWorker).options(
                num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker,
                max_restarts=-1,  # the files' retries bound the restarts (see BatchWorker)
                max_task_retries=self.max_retries)
            room = self._room()  # checked even when told how many: a worker must fit somewhere
            self.workers = min(len(jobs), workers or room)
            queue = list(reversed(jobs))  # pop() from the end: jobs run in the order given
            calls = {}  # each pending call -> (its actor, its job; None for the actor's ready())
            for _ in range(self.workers):
                actor = worker_class.remote(settings)
                actors.append(actor)
                calls[actor.ready.remote()] = (actor, None)
            while queue or any(job is not None for _, job in calls.values()):
                (call,), _ = ray.wait(list(calls), num_returns=1)
                actor, job = calls.pop(call)
                value = self._outcome(call, job)
                if job is None and value is not None:
                    raise _load_error(*value)
                if job is not None:
                    yield "finished", job, value
                if queue:
                    job = queue.pop()
                    calls[actor.run.remote(job)] = (actor, job)
                    yield "started", job, None
        finally:
            if started_here:
                ray.shutdown()  # the actors die with the driver that owns them
            else:
                for actor in actors:
                    ray.kill(actor)

    def _connect(self, cpus: int) -> None:
        ray = self.ray
        quiet = logging.ERROR  # Ray's start-up notes are not the user's business; its errors are
        try:
            if self.address == "local":
                # At least the cores here, and more when asked for more workers, as --workers does.
                ray.init(num_cpus=max(usable_cores(), cpus), include_dashboard=False,
                         log_to_driver=False, logging_level=quiet)
            elif self.address == "auto":
                ray.init(address="auto", log_to_driver=False, logging_level=quiet)
            else:
                ray.init(address=self.address, logging_level=quiet)
        except ImportError:  # the Ray Client also needs grpcio, which ray[client] brings
            raise ClusterError(f"--cluster {self.address} needs the Ray Client, which is not installed: "
                               f"{EXTRA}") from None
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds for "not there"
            doing = {"local": "start a Ray cluster here", "auto": "find the Ray cluster this runs in"}.get(
                self.address, "connect to the Ray cluster")
            raise DebriefError(f"--cluster {self.address}: cannot {doing} ({_one_line(exc)})") from None

    def _room(self) -> int:
        """How many actors the cluster has room for now (at least one: an autoscaler may add nodes)."""
        total = self.ray.cluster_resources()
        room = int(total.get("CPU", 0) // self.cpus_per_worker)
        if self.gpus_per_worker:
            room = min(room, int(total.get("GPU", 0) // self.gpus_per_worker))
        if room == 0:
            if self.address == "local":
                raise ClusterError(f"--cluster local: a worker asks for {self.cpus_per_worker} CPU and "
                                   f"{self.gpus_per_worker:g} GPU; this machine has {total.get('CPU', 0):g} CPU "
                                   f"and {total.get('GPU', 0):g} GPU")
            log.warning("the cluster has no room for a worker now; waiting for one")
        return max(room, 1)

    def _outcome(self, call, job: Job | None):
        """What a finished call returned; a worker that died on every try is an error row."""
        from ray.exceptions import RayActorError, RayTaskError

        try:
            return self.ray.get(call)
        except RayActorError:
            log.debug("a worker died", exc_info=True)
            message = f"crashed on each of {self.max_retries + 1} tries"
            if job is None:
                raise DebriefError(f"a worker stopped while loading the models: it {message}") from None
            return _error(job, f"the worker analyzing it {message}")
        except RayTaskError as exc:  # neither method raises; should one, it is one line, not a retry
            message = _one_line(exc.cause or exc)
            if job is None:
                raise DebriefError(f"a worker could not load the models: {message}") from None
            return _error(job, message)


def _error(job: Job, message: str) -> dict:
    from debrief.output import error_dict

    return error_dict(job.path, f"{job.path}: {message}", CRASHED)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
