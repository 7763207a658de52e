"""`scan --ray`: the decode -> listen half of a scan on a Ray cluster, with Ray Data.

Only `listen.analyse` is replaced: discovery, triage, decisions, writes, state, journal and
report stay on the driver (the process that runs `scan`) and run the same code as locally. The
files to analyse become a Dataset of paths; CPU tasks decode each file's windows and read its
tags (the local job, `listen.Listening`, with the witness a write checks against); an actor pool
holds the Analyser, loaded once per actor (one actor per GPU where the cluster has GPUs, CPU
actors otherwise), and turns the windows into probabilities. What comes back to the driver is
each `Decoded` without its windows, with its probabilities per window, which the driver tests
and votes on as a local scan does (`listen.Hearing`): the windows (megabytes a file) move between
workers only. `--segments auto` runs in passes, a round each, until every file is sure.

Backpressure is Ray Data's streaming executor: it keeps a bounded budget of blocks in flight and
in the object store, and the driver pulls finished blocks one at a time, so its memory does not
grow with the library (besides the list of paths triage already holds, and a byte per file).

Faults: a killed decoding worker's task is retried up to RETRIES times (`max_retries`); a killed
actor is restarted up to RETRIES times and its batch retried as often (`max_restarts`,
`max_task_retries`). A block whose tries are spent costs its files, each an error with a one-line
reason, not the run. Workers only read files; every write happens on the driver, so a lost driver
leaves each file original or fully tagged, as a local scan does. The files must be readable at
the same path on every node (a shared file system): each node is checked before the run, and a
worker that cannot find a file says so in that file's error.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from . import __version__, listen, sure
from .analyser import ENSEMBLE_SEP, Analyser
from .errors import MgctagError
from .genremap import GenreMap
from .interrupt import SIGNALS
from .pool import Decoded, DecodeJob

log = logging.getLogger(__name__)

LOCAL = "local"  # ScanOptions.ray: start a local cluster (or use this process's connection)
RETRIES = 3  # tries after the first for a killed worker: decode tasks, and actors and their batches
FILES_PER_TASK = 8  # files per decoding task (a Ray Data block): a spent block costs at most these
SEGMENTS_PER_CALL = 2  # an actor call gets about this many model batches' worth of tracks
PROBE_FILES = 3  # files each node must read before the run starts
PROBE_TIMEOUT_S = 300.0  # a node that cannot start a worker this long is reported, not waited for
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode, on the loopback address
UNSHARED = "--ray needs the files at the same path on every node (a shared file system)"
LOST = "not analysed: its Ray task failed, retries spent (see the Ray logs)"


@dataclass(frozen=True)
class Recipe:
    """What an actor needs to build the driver's Analyser: the weights themselves (so nodes need
    not have the model installed) and the options that shape its genres."""

    weights: tuple[tuple[str, object], ...]  # (file name, ObjectRef of its bytes) per member
    genres: str | None
    genre_map: GenreMap
    segments: int | None
    vote: str
    batch_size: int | None  # None: each model's own
    device: str

    def load(self) -> Analyser:
        import ray

        from .infer import pick_device

        folder = tempfile.mkdtemp(prefix="mgctag-ray-")
        try:
            paths = []
            for i, (name, ref) in enumerate(self.weights):
                p = Path(folder, str(i), name)
                p.parent.mkdir()
                p.write_bytes(ray.get(ref))
                paths.append(str(p))
            return Analyser.load(
                ENSEMBLE_SEP.join(paths),
                device=pick_device(self.device),
                genres=self.genres,
                genre_map=self.genre_map,
                segments=self.segments,
                vote_method=self.vote,
                batch_size=self.batch_size,
            )
        finally:  # the tensors are in memory once loaded
            shutil.rmtree(folder, ignore_errors=True)


def analyse(
    paths: Sequence[Path],
    analyser: Analyser,
    options,
    *,
    rule: sure.Rule | None = None,
    stop: Callable[[], bool] = lambda: False,
    nodes: Counter | None = None,
) -> Iterator[tuple[Decoded, np.ndarray | None]]:
    """As `listen.analyse`, on the Ray cluster `options.ray` names ("local", "auto" or an address),
    with `options.ray_actors`, `batch_size`, `device` and the analyser's model. With a `rule`
    (`--segments auto`) the files go through the cluster in passes, one round each (the first
    for every file, the next for those not yet sure), tested on the driver by the local code.
    Results come in the order they finish; scores are None when `Decoded.error` says why there
    are none. `nodes`, when given, counts the files decoded per Ray node id."""
    paths = list(paths)
    if not paths:
        return
    nodes = Counter() if nodes is None else nodes
    shipped = [Path(os.path.abspath(p)) for p in paths]  # a worker's current folder is not the driver's
    listening = listen.Listening.of(analyser, witness=options.write_tags, rule=rule)
    with connected(options.ray), _quiet("ray.data"):
        import ray

        check_nodes(shipped)
        recipe = Recipe(
            tuple((p.name, ray.put(p.read_bytes())) for p in analyser.weights_files),
            options.genres,
            options.genre_map,
            options.segments,
            options.vote,
            options.batch_size,
            options.device,
        )
        todo: dict[int, tuple[int, int] | None] = dict.fromkeys(range(len(paths)), listening.first())
        hearing: dict[int, listen.Hearing] = {}
        while todo:
            ds = _dataset(shipped, todo, analyser, listening.job, recipe, _listening(ray.cluster_resources(), options))
            rows, again = iter(ds.iter_rows()), {}
            try:
                with contextlib.closing(rows):  # closing it stops the Ray Data job: tasks cancelled, actors ended
                    for row in rows:
                        if stop():
                            return
                        i, (part, probs) = int(row["i"]), row["result"]
                        part.path = paths[i]  # the driver's own name for it, as triage saw it
                        if i not in hearing:
                            nodes[row["node"]] += 1
                        h = hearing.setdefault(i, listen.Hearing(paths[i]))
                        h.add(part, probs, analyser)
                        nxt = h.next(listening.rule)
                        if nxt is None:
                            del hearing[i]
                            yield h.result(analyser)
                        else:
                            again[i] = nxt
                        del todo[i]
            except Exception as e:
                if stop():  # a signal sent to the whole process group also ends a local cluster
                    return
                raise MgctagError(f"the Ray job failed: {_first_line(e)}") from e
            for i in todo:
                if stop():
                    return
                hearing.pop(i, None)
                yield Decoded(paths[i], error=LOST), None
            todo = again
        _log_nodes(nodes)


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Ray for one run: this process's connection if it has one (a library caller's own
    `ray.init`, with its runtime_env), else a private local cluster (`address` "local", unless
    $RAY_ADDRESS names one, as in Ray), else the cluster at `address`; disconnected afterwards."""
    local = address in (None, LOCAL) and not os.environ.get("RAY_ADDRESS")
    if local:  # read when Ray is imported: its processes then listen on 127.0.0.1, not the network
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise MgctagError(f'--ray needs Ray Data: pip install "mgctag[ray]" ({e})') from None
    if ray.is_initialized():
        yield
        return
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)  # worker logs stay in the cluster's log folder
    with _own_signal_handlers():
        if local:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=None if address == LOCAL else address, **quiet)
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """ray.init installs Ray's crash handler for SIGTERM (a stack dump, then abort): put back the
    handlers this process had, so SIGTERM stops the run between files (mgctag.interrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Ray Data's notices off the console for the run (they stay in its log file in the session
    folder): the CLI prints its own lines and progress."""
    import ray.data  # noqa: F401  (configures its logger on import)

    console = [h for h in logging.getLogger(name).handlers if isinstance(h, logging.StreamHandler)]
    levels = [h.level for h in console]
    for h in console:
        h.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for h, level in zip(console, levels):
            h.setLevel(level)


def check_nodes(paths: Sequence[Path]) -> None:
    """Before any file is handed out: every node runs this mgctag and reads the first files the
    driver can read at the same paths, or the run stops with one line saying which node cannot."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    sample = [p for p in paths[: 4 * PROBE_FILES] if os.access(p, os.R_OK)][:PROBE_FILES]
    alive = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
    probe = ray.remote(num_cpus=0, max_retries=RETRIES)(_probe)
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
            [os.fsencode(p) for p in sample]
        )
        for n in alive
    ]
    try:
        answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        raise MgctagError(f"a Ray node did not start a worker within {PROBE_TIMEOUT_S:.0f} s") from None
    except ray.exceptions.RayError as e:
        raise MgctagError(f"a Ray node failed the file check: {_first_line(e)}") from None
    for node, (version, unreadable) in zip(alive, answers):
        where = f"Ray node {node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"
        if version != __version__:
            raise MgctagError(
                f"{where} runs mgctag {version}, this driver {__version__}: install the same mgctag on every node"
            )
        if unreadable:
            path, reason = unreadable
            raise MgctagError(f"{where} cannot read {os.fsdecode(path)} ({reason}): {UNSHARED}")


def _probe(paths: list[bytes]) -> tuple[str, tuple[bytes, str] | None]:
    """On one node: its mgctag version, and the first path it cannot open with the reason."""
    from . import __version__ as version

    for p in paths:
        try:
            with open(p, "rb"):
                pass
        except OSError as e:
            return version, (p, (e.strerror or str(e)).lower())
    return version, None


def _listening(resources: dict, options) -> dict:
    """map_batches resources for the actor pool: one actor per GPU (or `ray_actors`, sharing the
    GPUs), else `ray_actors` CPU actors (default half the CPUs), always leaving CPUs to decode."""
    gpus, cpus = float(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    n = options.ray_actors
    if n is not None and n < 1:
        raise MgctagError("--ray-actors must be at least 1")
    if options.device == "cuda" and gpus < 1:
        raise MgctagError("--device cuda asked for, but the Ray cluster has no GPU")
    if gpus >= 1 and options.device != "cpu":
        n = n or int(gpus)
        return dict(actors=n, num_gpus=1 / math.ceil(n / int(gpus)), num_cpus=1)  # shares that fit whole GPUs
    n = n or max(1, cpus // 2)
    if n >= cpus:
        raise MgctagError(f"--ray-actors {n} leaves no CPU to decode with (the Ray cluster has {cpus} CPUs)")
    return dict(actors=n, num_cpus=1)


def _dataset(paths: Sequence[Path], todo: dict, analyser: Analyser, job: DecodeJob, recipe: Recipe, listen: dict):
    """One pass: decode the round `todo` asks for of each file, and hear it on the actors."""
    import ray

    rounds = [-1 if part is None else part[0] for part in todo.values()]
    ends = [-1 if part is None else part[1] for part in todo.values()]
    rows = [
        {"i": i, "path": os.fsencode(paths[i]), "a": a, "b": b} for i, a, b in zip(todo, rounds, ends)
    ]  # bytes: any file name survives
    cpus = int(ray.cluster_resources().get("CPU", 1))
    blocks = min(len(rows), max(math.ceil(len(rows) / FILES_PER_TASK), 2 * cpus))  # every CPU gets work
    ds = ray.data.from_items(rows, override_num_blocks=max(1, blocks))
    ctx = ds.context
    ctx.max_errored_blocks = -1  # a spent block costs its files (reported as LOST), not the run
    ctx.enable_progress_bars = False  # the CLI draws its own progress
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    per_track = max(analyser.segments) if ends[0] < 0 else max(1, ends[0] - rounds[0])
    n, retries = listen.pop("actors"), dict(max_restarts=RETRIES, max_task_retries=RETRIES)
    with warnings.catch_warnings():  # retry counts are ray_remote_args until Ray 2.64 (hence ray<2.64)
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(
            _decode,
            fn_kwargs={"job": job},
            batch_size=None,
            batch_format="numpy",
            num_cpus=1,
            max_retries=RETRIES,
        )
        return ds.map_batches(
            _Listener,
            fn_constructor_args=(recipe, analyser.genres),
            batch_format="numpy",
            batch_size=max(1, math.ceil(SEGMENTS_PER_CALL * max(analyser.batch_sizes) / per_track)),
            compute=ray.data.ActorPoolStrategy(size=n),
            **listen,
            **retries,
        )


def _decode(batch: dict, job: DecodeJob) -> dict:
    """A Ray task: decode a block of files, each its round (the local DecodeJob, so errors read
    as locally, and with the witness a write checks against)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    decoded = []
    whole = [-1] * len(batch["path"])  # no round columns: every window of the plan
    for raw, a, b in zip(batch["path"], batch.get("a", whole), batch.get("b", whole)):
        path = Path(os.fsdecode(raw))
        d = job(path, None if a < 0 else (int(a), int(b)))
        if d.error and not os.path.lexists(path):
            d = replace(d, error=f"{d.error} on Ray node {ray.util.get_node_ip_address()}: {UNSHARED}")
        decoded.append(d)
    return {"i": batch["i"], "node": [node] * len(decoded), "decoded": decoded}


class _Listener:
    """A Ray actor: the Analyser, loaded once, hears each batch of decoded rounds; the driver
    gets each member's probabilities per window (what it tests and votes with), not the audio."""

    def __init__(self, recipe: Recipe, genres: list[str]):
        self.analyser, self.batch_size = recipe.load(), recipe.batch_size
        if self.analyser.genres != genres:
            raise MgctagError(f"the model on this node names other genres ({self.analyser.genres}) than the driver's")

    def __call__(self, batch: dict) -> dict:
        decoded, ids = list(batch["decoded"]), [int(i) for i in batch["i"]]
        probs: dict[int, list[np.ndarray]] = {}
        try:
            for i, d in zip(ids, decoded):
                if not d.error:
                    probs.update(self.analyser.listen(i, d.windows))
            probs.update(self.analyser.listen_flush())
        except BaseException:  # nothing half-fed may leak into the next batch
            a = self.analyser
            self.analyser = Analyser.of(a.members, vote_method=a.vote_method, batch_size=self.batch_size)
            raise
        for d in decoded:
            d.windows = ()
        # one object column: a column of arrays would be typed per block, and all-None blocks would not concatenate
        return {"i": batch["i"], "node": batch["node"], "result": [(d, probs.get(i)) for d, i in zip(decoded, ids)]}


def _log_nodes(nodes: Counter) -> None:
    if nodes:
        spread = ", ".join(f"{node[:8]}: {n}" for node, n in nodes.most_common())
        log.info(
            "Ray: %d files decoded on %d node%s (%s)",
            sum(nodes.values()),
            len(nodes),
            "" if len(nodes) == 1 else "s",
            spread,
        )


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(e).__name__
