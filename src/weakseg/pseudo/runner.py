"""`weakseg labels`: run one generator over a dataset with a process pool, resumably.

Each worker process re-opens the dataset from its spec string and builds its own generator, so
nothing large is pickled. Work is split by (shard index, shard count) over the sorted ids, so
several machines can share a dataset and write into one directory. Finished ids are skipped; a
sample with bad input is skipped and counted with its reason; one bad image never stops a run.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from weakseg.data.dataset import DataError, open_dataset
from weakseg.pseudo.base import Generator, make_generator
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
) -> LabelRunSummary:
    """Label every id of ``spec`` in shard ``shard`` with ``generator`` into ``out``."""
    params = params or {}
    workers = workers or os.cpu_count() or 1
    gen = make_generator(generator, **params)  # fails early on a bad name or parameter
    store = LabelStore(out)
    store.claim(gen.name, gen.params(), spec)
    ids = sorted(open_dataset(spec).ids)[shard[0] :: shard[1]]
    todo = [i for i in ids if not store.has(i)]
    summary = LabelRunSummary(
        generator=gen.name, dataset=spec, out=str(out), shard=f"{shard[0]}/{shard[1]}",
        workers=workers, total=len(ids), already_done=len(ids) - len(todo),
    )  # fmt: skip
    start = time.perf_counter()
    cpu = 0.0
    bar = tqdm(total=len(todo), desc=f"labels:{gen.name}", unit="img", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)  # fmt: skip
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
    with ProcessPoolExecutor(workers, ctx, _init_worker, (spec, gen, out)) as pool:
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


def _init_worker(spec: str, gen: Generator, out) -> None:
    # One worker per core: libraries must not start threads of their own on top.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Only libraries the generator already imported (while being unpickled): a box generator
    # must not pay for importing OpenCV or torch.
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)
    if "torch" in sys.modules:  # already imported while unpickling the generator
        sys.modules["torch"].set_num_threads(1)
    _WORKER.update(dataset=open_dataset(spec), generator=gen, store=LabelStore(out))


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
