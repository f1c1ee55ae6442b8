"""Where the eyes run: in-process, a local process pool, or an existing Dask cluster.

Every executor calls the same function on the same picklable jobs and hands each result to
``on_result`` as soon as it arrives (in completion order), so the runner can write it to disk
at once and a killed run loses at most the eyes in flight. An executor-level failure (a worker
process killed, a lost Dask worker) becomes a ``transient`` result for that eye instead of an
exception: the runner reports the eye as ungradable and does not store it, so ``--resume``
tries it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from healthsense.runtime import get_logger, progress

__all__ = ["EXECUTORS", "run_jobs"]

EXECUTORS = ("local", "dask")
log = get_logger("screening.executors")

Job = Any
OnResult = Callable[[int, dict[str, Any]], None]


def _failure(exc: BaseException) -> dict[str, Any]:
    return {"transient": True, "error": f"{type(exc).__name__}: {exc}"}


def _serial(fn, jobs: Sequence[Job], on_result: OnResult, desc: str) -> None:
    for i, job in enumerate(progress(jobs, total=len(jobs), desc=desc, unit="eye")):
        try:
            result = fn(job)
        except Exception as exc:  # fn guards itself; this is belt and braces
            result = _failure(exc)
        on_result(i, result)


def _pool(fn, jobs: Sequence[Job], on_result: OnResult, workers: int, desc: str) -> None:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        for future in progress(as_completed(futures), total=len(futures), desc=desc, unit="eye"):
            try:
                result = future.result()
            except Exception as exc:  # BrokenProcessPool when a worker is killed
                result = _failure(exc)
            on_result(futures[future], result)


def _dask(fn, jobs: Sequence[Job], on_result: OnResult, scheduler: Any, desc: str) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise RuntimeError(
            "the Dask executor needs the optional extra: pip install 'healthsense[dask]'"
        ) from exc
    own = not isinstance(scheduler, Client)
    if own and not scheduler:
        raise ValueError("the Dask executor needs a scheduler address (--scheduler HOST:PORT)")
    client = Client(scheduler, timeout="20s") if own else scheduler
    try:
        futures = client.map(fn, list(jobs), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in progress(as_completed(futures), total=len(futures), desc=desc, unit="eye"):
            try:
                result = future.result()
            except Exception as exc:  # a lost worker or a deserialisation error
                result = _failure(exc)
            on_result(index[future.key], result)
    finally:
        if own:
            client.close()


def run_jobs(
    fn: Callable[[Job], dict[str, Any]],
    jobs: Sequence[Job],
    on_result: OnResult,
    *,
    executor: str = "local",
    workers: int = 1,
    scheduler: Any = None,
    desc: str = "screening",
) -> None:
    """Run ``fn`` on every job and call ``on_result(index, result)`` as each one finishes.

    Parameters
    ----------
    executor : {"local", "dask"}
        ``local`` runs in-process (``workers=1``) or in a process pool; ``dask`` submits to
        the scheduler at ``scheduler`` (an address, or a ``distributed.Client``).
    workers : int
        Process-pool size for the local executor.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not jobs:
        return
    if executor == "dask":
        log.info("running %d eyes on the Dask scheduler %s", len(jobs), scheduler)
        _dask(fn, jobs, on_result, scheduler, desc)
    elif workers == 1 or len(jobs) == 1:
        _serial(fn, jobs, on_result, desc)
    else:
        _pool(fn, jobs, on_result, min(workers, len(jobs)), desc)
