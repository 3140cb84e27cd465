"""Segments on a Ray cluster: one actor per worker holds a colorizer; Ray schedules them.

``address``: ``"local"`` starts a private Ray instance on this machine (what the test suite does);
``"auto"`` joins the cluster this machine belongs to (``ray start --head`` / ``ray start --address``);
``"ray://host:10001"`` connects through Ray Client. The input file and the work folder must be
reachable under the same paths on every node (shared storage), as in any render farm: actors read
the source and write their segment files and done markers there themselves, so segments finished
before a driver crash are kept. Actors ask for one GPU each when the cluster has GPUs (and the
options do not pin the CPU), else for ``threads`` CPUs each.
"""

from __future__ import annotations

from dataclasses import replace

from ..colorizer import ColorizerOptions
from ..errors import FormatError
from .worker import SegmentWorker


def _ray():
    try:
        import ray
    except ImportError:
        raise FormatError("the Ray executor needs Ray: pip install 'filmcolor[ray]'") from None
    return ray


class RayExecutor:
    def __init__(self, options: ColorizerOptions, workers: int | None = None, address: str = "local",
                 threads: int | None = None) -> None:
        self.options, self.requested, self.address = options, workers, address
        self.threads = threads or options.threads or 1
        self.started = False

    def describe(self) -> str:
        return f"Ray ({self.address})"

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            if self.address == "local":
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            self.started = True
        return ray

    def run(self, tasks, on_done, on_frames=None) -> None:
        if not tasks:
            return
        ray = self._connect()
        from ray.util import ActorPool

        try:
            res = ray.cluster_resources()
            gpus = int(res.get("GPU", 0)) if (self.options.device or "cuda").startswith("cuda") else 0
            if gpus:
                per, slots = {"num_gpus": 1, "num_cpus": 1}, gpus
                options = self.options
            else:
                per, slots = {"num_cpus": self.threads}, max(1, int(res.get("CPU", 1)) // self.threads)
                options = replace(self.options, threads=self.threads)
            n = min(len(tasks), self.requested or slots)
            Actor = ray.remote(**per)(SegmentWorker)
            actors = [Actor.remote(options) for _ in range(n)]
            pool = ActorPool(actors)
            try:
                for summary in pool.map_unordered(lambda a, t: a.render.remote(t), list(tasks)):
                    on_done(summary)
            except ray.exceptions.RayError as exc:
                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
                raise FormatError(f"a Ray worker failed ({first}); finished segments are kept: run the same "
                                  f"command again to resume") from None
            finally:
                for a in actors:
                    ray.kill(a)
        finally:
            if self.started:
                ray.shutdown()
                self.started = False
