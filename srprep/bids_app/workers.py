"""Pydra worker subclasses (module level: worker classes are pickled with their jobs).

Neither is an attrs class on purpose: attrs' generated ``__getstate__`` would pickle the
event loop ("cannot pickle '_contextvars.Context'").
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing

from pydra.workers import cf, slurm


class SpawnWorker(cf.Worker):
    """Pydra's concurrent-futures worker with *spawned* processes.

    Forked children deadlock when the parent has used torch or another OpenMP runtime (a
    Python API user, a test session) and cannot use CUDA once the parent initialised it;
    spawned children start clean.
    """

    _plugin_name = "srprep-cf"

    def __init__(self, n_procs: int = 1, **kwargs):
        super().__init__(n_procs=n_procs, **kwargs)
        self.pool.shutdown(wait=False)   # processes are created lazily: nothing is lost
        self.pool = self._spawn_pool()

    def _spawn_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.n_procs, mp_context=multiprocessing.get_context("spawn"))

    def __setstate__(self, state):
        super().__setstate__(state)
        self.pool = self._spawn_pool()


class PerNodeSlurmWorker(slurm.Worker):
    """Stock SLURM worker plus per-node ``sbatch`` arguments (e.g. ``--gres=gpu:1`` for
    inference nodes only).

    Each job is submitted through a one-off stock worker carrying the extra arguments, so
    concurrent jobs never share mutable state (mutating ``self.sbatch_args`` inside the
    async ``run`` would race).
    """

    _plugin_name = "srprep-slurm"

    def __init__(self, per_node_args: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.per_node_args = dict(per_node_args or {})

    async def run(self, job, rerun: bool = False):
        extra = self.per_node_args.get(job.name, "")
        one_off = slurm.Worker(sbatch_args=f"{self.sbatch_args} {extra}".strip(),
                               poll_delay=self.poll_delay)
        one_off.loop = self.loop
        return await one_off.run(job, rerun=rerun)
