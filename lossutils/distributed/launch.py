"""Run a function on ``P`` fresh CPU processes that form a gloo process group on loopback.

What the tests and benchmarks of the distributed losses use, and what a reader
can use on a laptop: no ``torchrun``, no environment variables, no port to
pick. The parent opens the rendezvous store on ``127.0.0.1`` at a port the
operating system chooses (port 0: no race with another run for a "free"
port), starts the ranks with ``torch.multiprocessing`` (spawn), and waits for
them with a deadline: a rank that hangs fails the call, it does not hang it.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

import datetime
import os
import pickle
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessRaisedException

__all__ = ["run_on_gloo"]


def _rank_main(rank: int, fn: Callable, args: tuple, world_size: int, port: int, folder: str,
               timeout: float, threads: int) -> None:
    """One rank: join the group, run ``fn(*args)``, leave its result in ``folder``, leave."""
    torch.set_num_threads(threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    limit = datetime.timedelta(seconds=timeout)
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=limit)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size, timeout=limit)
    try:
        result = fn(*args)
    except BaseException:
        # written before this rank leaves the group: a peer that fails because it left
        # finds this traceback already there, so the root cause is never lost
        (Path(folder) / f"rank{rank}.error").write_text(traceback.format_exc())
        raise
    else:
        path = Path(folder) / f"rank{rank}.pkl"
        path.with_suffix(".tmp").write_bytes(pickle.dumps(result))
        path.with_suffix(".tmp").rename(path)  # complete or absent, never half-written
    finally:
        dist.destroy_process_group()


def _failures(folder: str, world_size: int) -> str:
    """The traceback of every rank that failed, in rank order."""
    found = [f"-- rank {rank} failed with:\n{path.read_text()}" for rank in range(world_size)
             if (path := Path(folder) / f"rank{rank}.error").exists()]
    return "run_on_gloo: a rank raised\n\n" + "\n".join(found)


def run_on_gloo(fn: Callable, world_size: int, *args, timeout: float = 120.0,
                threads: int = 1) -> list:
    """Call ``fn(*args)`` on ``world_size`` new processes in one gloo group; return their results.

    ``fn`` must be importable by name (a module-level function: spawn pickles
    it by reference) and its result picklable. Each rank runs with
    ``threads`` torch threads and ``torch.distributed`` initialised (rank
    ``r`` of ``world_size``; ``dist.get_rank()`` tells ``fn`` which); the
    group is destroyed when ``fn`` returns or raises.

    Raises :class:`torch.multiprocessing.ProcessRaisedException` with the
    traceback of every rank that failed (one rank's error often makes its
    peers fail in a collective next: all are shown, in rank order),
    or :class:`TimeoutError` when the ranks have not all finished within
    ``timeout`` seconds; every rank still running is then killed.

    >>> run_on_gloo(torch.distributed.get_rank, 2)  # doctest: +SKIP
    [0, 1]
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"run_on_gloo: world_size must be a positive int, got {world_size!r}")
    if not timeout > 0:
        raise ValueError(f"run_on_gloo: timeout must be positive seconds, got {timeout!r}")
    limit = datetime.timedelta(seconds=timeout)
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=limit)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="lossutils-gloo-") as folder:
        context = mp.start_processes(
            _rank_main, nprocs=world_size, join=False, start_method="spawn",
            args=(fn, args, world_size, store.port, folder, timeout, threads))
        try:
            while not context.join(timeout=max(deadline - time.monotonic(), 0.01)):
                if time.monotonic() >= deadline:
                    running = [r for r, p in enumerate(context.processes) if p.is_alive()]
                    raise TimeoutError(f"run_on_gloo: ranks {running} of {world_size} still "
                                       f"running after {timeout} s (killed)")
        except ProcessRaisedException as err:
            raise ProcessRaisedException(_failures(folder, world_size), err.error_index,
                                         err.error_pid) from None
        finally:
            for p in context.processes:
                if p.is_alive():
                    p.kill()
                p.join()
        del store
        files = [Path(folder) / f"rank{r}.pkl" for r in range(world_size)]
        return [pickle.loads(f.read_bytes()) for f in files]
