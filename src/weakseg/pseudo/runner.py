"""`weakseg labels`: run one generator over a dataset with a process pool, resumably.

Each worker process re-opens the dataset from its spec string and builds its own generator, so
nothing large is pickled. Work is split by (shard index, shard count) over the sorted ids, so
several machines can share a dataset and write into one directory. Finished ids are skipped; a
sample with bad input is skipped and counted with its reason; one bad image never stops a run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from weakseg.data.dataset import DataError
from weakseg.data.specs import open_dataset
from weakseg.outputs import writable_dir
from weakseg.progress import progress_bar
from weakseg.pseudo.base import Generator, TrainedModel
from weakseg.pseudo.registry import make_generator
from weakseg.pseudo.store import LabelStore

MAX_EXAMPLES = 3


@dataclass
class LabelRunSummary:
    generator: str
    dataset: str
    out: str
    shard: str
    workers: int
    total: int = 0  # ids in this shard
    done: int = 0  # labelled by this run
    already_done: int = 0  # found finished from an earlier run
    skipped: dict[str, list[str]] = field(default_factory=dict)  # bad input: problem -> files
    failed: dict[str, list[str]] = field(default_factory=dict)  # unexpected errors -> ids
    wall_seconds: float = 0.0
    cpu_seconds_per_image: float = 0.0  # mean time one worker spent per labelled image
    interrupted: bool = False

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    @property
    def num_failed(self) -> int:
        return sum(len(v) for v in self.failed.values())

    @property
    def nothing_done(self) -> bool:
        """No id of the shard is labelled, by this run or an earlier one."""
        return self.done + self.already_done == 0

    def format(self) -> str:
        lines = [
            f"{self.generator} on {self.dataset} (shard {self.shard}, {self.workers} workers) "
            f"-> {self.out}",
            f"  done {self.done}, already done {self.already_done}, skipped {self.num_skipped}, "
            f"failed {self.num_failed} of {self.total}",
            f"  wall {self.wall_seconds:.1f} s, {self.cpu_seconds_per_image:.3f} s per image "
            "per worker",
        ]
        for title, groups in (("skipped (bad input)", self.skipped), ("failed", self.failed)):
            for problem, where in groups.items():
                shown = ", ".join(where[:MAX_EXAMPLES]) + (" ..." if len(where) > 3 else "")
                lines.append(f"  {title}: {len(where)} x {problem}: {shown}")
        if self.interrupted:
            lines.append("  interrupted: re-run the same command to finish the rest")
        elif self.nothing_done:
            lines.append("  nothing was labelled: no usable sample in this dataset (shard)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self) | {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def run_labels(
    spec: str,
    generator: str,
    out: str | Path,
    params: dict | None = None,
    workers: int | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    trained: TrainedModel | None = None,
) -> LabelRunSummary:
    """Label every id of ``spec`` in shard ``shard`` with ``generator`` into ``out``;
    ``trained``: the network of a generator that needs one (the CLI loads it from run_dir)."""
    params = params or {}
    workers = workers or os.cpu_count() or 1
    gen = make_generator(generator, **params)  # fails early on a bad name or parameter
    gen.prepare()
    if trained is not None:
        gen.attach_model(trained)
    elif gen.needs_model:
        raise ValueError(
            f"generator {gen.name!r} needs a trained {gen.needs_model} network: pass run_dir=RUN"
        )
    dataset = open_dataset(spec)  # before anything is written: a bad spec leaves no meta.json
    writable_dir(out, "--out folder")
    store = LabelStore(out)
    with store.working(shard):
        store.claim(gen.name, gen.params(), spec, dataset.identity)
        ids = sorted(dataset.ids)[shard[0] :: shard[1]]
        return _label_all(spec, gen, store, ids, workers, shard, progress)


def _label_all(
    spec: str,
    gen: Generator,
    store: LabelStore,
    ids: list[str],
    workers: int,
    shard: tuple[int, int],
    progress: bool,
) -> LabelRunSummary:
    out = store.root
    todo = [i for i in ids if not store.has(i)]
    summary = LabelRunSummary(
        generator=gen.name, dataset=spec, out=str(out), shard=f"{shard[0]}/{shard[1]}",
        workers=workers, total=len(ids), already_done=len(ids) - len(todo),
    )  # fmt: skip
    start = time.perf_counter()
    cpu = 0.0
    bar = progress_bar(total=len(todo), desc=f"labels:{gen.name}", unit="img", enabled=progress)
    try:
        for status, problem, where, seconds in _results(spec, gen, out, todo, workers):
            bar.update(1)
            cpu += seconds
            if status == "done":
                summary.done += 1
            else:
                groups = summary.skipped if status == "skipped" else summary.failed
                groups.setdefault(problem, []).append(where)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        bar.close()
        summary.wall_seconds = time.perf_counter() - start
        summary.cpu_seconds_per_image = cpu / max(summary.done, 1)
        store.log_run(summary.to_dict())
    return summary


def _results(spec: str, gen: Generator, out, todo: list[str], workers: int):
    """Yield (status, problem, where, seconds) as samples finish, in-process or in a pool."""
    if workers == 1 or len(todo) <= 1:
        _init_worker(spec, gen, out)
        for sample_id in todo:
            yield _label_one(sample_id)
        return
    # spawn, not fork: a forked child can inherit locked OpenMP/OpenCV thread pools.
    ctx = get_context("spawn")
    init_args = (spec, gen, out, os.getpid())
    with ProcessPoolExecutor(workers, ctx, _init_worker, init_args) as pool:
        pending = {pool.submit(_label_one, i) for i in todo[: 4 * workers]}
        queue = iter(todo[4 * workers :])
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(_label_one, nxt))


_WORKER: dict = {}


def _init_worker(spec: str, gen: Generator, out, parent: int | None = None) -> None:
    if parent is not None:
        die_with_parent(parent)
    # One worker per core: libraries must not start threads of their own on top.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Only libraries the generator already imported (while being unpickled): a box generator
    # must not pay for importing OpenCV or torch.
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)
    if "torch" in sys.modules:  # already imported while unpickling the generator
        sys.modules["torch"].set_num_threads(1)
    _WORKER.update(dataset=open_dataset(spec), generator=gen, store=LabelStore(out))


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Make this worker die when the process that started it dies, even by SIGKILL.

    Without it, a killed ``weakseg labels`` leaves its pool workers running: they finish their
    queue, write labels nobody counts and then wait forever for work. Linux: the kernel sends
    SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); the check of ``getppid`` afterwards
    covers a parent that died before the call. Elsewhere a daemon thread polls the parent pid.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int, interval: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _label_one(sample_id: str) -> tuple[str, str, str, float]:
    """-> (status, problem, where, seconds); status is done, skipped (bad input) or failed."""
    start = time.perf_counter()
    try:
        sample = _WORKER["dataset"].load(sample_id)
        maps = _WORKER["generator"].generate_maps(sample)
        _WORKER["store"].write(sample_id, maps)
    except DataError as err:
        return "skipped", err.kind, Path(err.path).name, 0.0
    except Exception as err:  # noqa: BLE001 - one bad sample must not end the run
        return "failed", f"{type(err).__name__}: {err}", sample_id, 0.0
    return "done", "", sample_id, time.perf_counter() - start
