"""Corpus alignment on a Ray cluster: ``aligner align-corpus IN OUT --ray ADDRESS``.

The run of :func:`aligner.corpus.align.align_corpus`, spread over the nodes
of an existing `Ray <https://docs.ray.io>`_ cluster (``pip install -e
".[ray]"``). The corpus and output folders lie on storage every node sees
(a shared filesystem mounted at the same path on every node).

* **Driver** (where the command runs): lists the corpus, skips the files
  whose outputs exist, reads the durations from the headers, plans the
  length-bucketed batches with :func:`~aligner.corpus.align.plan_batches`
  (the local run's batches), sends them to the actors, writes every file's
  outputs atomically as its batch comes back (the local run's writer and
  confidence), and at the end ``failures.tsv`` and ``confidence.tsv``. Only
  the driver writes: a node that dies cannot leave a partial file, and
  neither can Ctrl-C on the driver.
* **Actors** (Ray actors, one per GPU, or as many as the nodes' CPUs hold):
  each builds its own :class:`aligner.Aligner` from the model *spec* once
  (:class:`AlignerSpec`; a model name or a folder every node sees, never a
  pickled model), then per call decodes one batch in worker threads
  (:func:`~aligner.corpus.align._prepare`) and aligns it
  (:func:`~aligner.corpus.align._batch_outcomes`: a failing batch is
  retried file by file). Two calls run at a time, one decoding while the
  other holds the network.
* **Back-pressure**: the driver keeps at most :data:`IN_FLIGHT_PER_ACTOR`
  batches in flight per started actor and waits (:func:`ray.wait`) for one
  to finish before sending the next, so memory stays bounded on every node
  whatever the size of the corpus.
* **Faults**: an actor that dies (its node lost, its process killed) is
  killed for good, replaced (the replacement starts when the cluster has
  room) and its batches are sent again to the others; a batch lost
  :data:`MAX_TRIES` times is split into its files, and a file lost that
  often alone is recorded as failed. Every file ends exactly once as
  outputs or as a failure row; an interrupted run is resumed by running it
  again.
* **Same results**: the same batches and the same functions as the local
  run, so the outputs are byte-identical to a local run with the same
  model, device type, dtype and number of torch threads (CPU float sums
  depend on it: an actor uses ``cpus_per_actor`` threads), and the reports
  hold the same rows in the same order.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from ..errors import AlignerError, CorpusError
from .align import (
    CorpusSummary,
    FileResult,
    _batch_outcomes,
    _check_options,
    _end_run,
    _prepare,
    _scan_corpus,
    _settle,
    plan_batches,
)
from .files import CorpusFile, Problem, audio_duration
from .journal import Journal

if TYPE_CHECKING:  # pragma: no cover
    from ray import ObjectRef

    from ..pipeline import Aligner
    from ..records import Alignment

__all__ = ["ActorLostWarning", "AlignerSpec", "IN_FLIGHT_PER_ACTOR", "MAX_TRIES", "align_corpus_ray"]

#: Batches in flight per started actor: one decoding while the other aligns.
IN_FLIGHT_PER_ACTOR = 2
#: Times a batch may be lost (its actor died, Ray failed it) before it is
#: split into its files; a file alone is recorded as failed after as many.
MAX_TRIES = 3
#: Seconds a cluster's head may take to answer before the run gives up on it.
CONNECT_SECONDS = 10.0
#: Seconds without any started actor, with work waiting, before a warning.
WAIT_WARNING_SECONDS = 120.0


class ActorLostWarning(UserWarning):
    """An actor died during a run (its node lost, its process killed); its
    batches were sent again to the other actors."""


@dataclass(frozen=True)
class AlignerSpec:
    """How every actor builds its :class:`aligner.Aligner`.

    Attributes:
        model: a packaged model or torchaudio bundle name, or a model folder
            every node sees (a relative folder is made absolute on the
            driver); None: the default model (``$ALIGNER_MODEL`` of the
            driver when set).
        device: ``"cpu"`` or ``"cuda"``; None: GPU actors when the cluster
            has GPUs, else CPU actors.
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"``; None: the
            aligner's default (bfloat16 on GPU, float32 on CPU).
        partial: partial mode (:class:`aligner.Aligner`).
        options: other keyword arguments of :class:`aligner.Aligner`
            (``language``, ``star_penalty``, ...); ``window_batch``
            defaults to ``align-corpus``'s choice, 64 on GPU and 4 on CPU.
    """

    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    partial: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def build(self, device: str) -> Aligner:
        """The aligner of one actor (on the node)."""
        from ..pipeline import Aligner

        options = dict(self.options)
        options.setdefault("window_batch", 64 if device == "cuda" else 4)
        return Aligner(self.model, device=device, dtype=self.dtype, partial=self.partial, **options)


def _as_spec(aligner: object) -> AlignerSpec:
    if isinstance(aligner, AlignerSpec):
        spec = aligner
    elif aligner is None or isinstance(aligner, (str, os.PathLike)):
        spec = AlignerSpec(None if aligner is None else os.fspath(aligner))
    else:
        raise CorpusError(
            "on a Ray cluster give the model as a spec (a model name, a model folder every node "
            "sees, or an aligner.corpus.ray_cluster.AlignerSpec), not a loaded Aligner: every actor "
            "loads its own model"
        )
    model = spec.model or os.environ.get("ALIGNER_MODEL") or None
    if model is not None and Path(model).expanduser().exists():
        model = str(Path(model).expanduser().absolute())  # the actors' working folder is not ours
    if spec.device not in (None, "cpu", "cuda"):
        raise CorpusError(
            f"on a Ray cluster the device is 'cpu' or 'cuda' (each actor gets its own GPU), not {spec.device!r}"
        )
    return replace(spec, model=model)


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise CorpusError(
            'running on a Ray cluster needs Ray: pip install "trellis-align[ray]" '
            '(from a checkout: pip install -e ".[ray]")'
        ) from None
    return ray


class _AlignActor:
    """One model on one node: decodes and aligns batches (a Ray actor)."""

    def __init__(self, spec: AlignerSpec, device: str, threads: int, workers: int) -> None:
        import torch

        torch.set_num_threads(max(1, int(threads)))
        self.aligner, self.error = None, None
        try:
            self.aligner = spec.build(device)
        except AlignerError as error:  # a bad spec: told to the driver by ready(), no restart loop
            self.error = str(error)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aligner-decode")
        self.network = threading.Lock()

    def ready(self) -> tuple[str | None, str]:
        """The model error (None when loaded) and the node id."""
        import ray

        return self.error, ray.get_runtime_context().get_node_id()

    def align(self, items: list[tuple[CorpusFile, float | None]]) -> list[tuple[str, float, bool, Any]]:
        """``(key, seconds, decode failed, Alignment or Problem)`` of every
        file of a batch, in the local run's order."""
        aligner = cast("Aligner", self.aligner)  # loaded: the driver stops at a ready() that reports an error
        ready = list(self.pool.map(lambda item: _prepare(aligner, *item), items))
        with self.network:  # the other call decodes meanwhile
            return [
                (entry.item.key, entry.seconds or 0.0, entry.problem is not None, outcome)
                for entry, outcome in _batch_outcomes(aligner, ready)
            ]


@dataclass
class _Work:
    """Files to align in one call: a planned batch, or one file of it."""

    index: int  # the planned batch (order of the results, as in a local run)
    items: list[tuple[int, CorpusFile, float | None]]  # (place in the batch, file, header seconds)
    tries: int = 0


@dataclass
class _Actor:
    handle: Any
    started: bool = False
    node: str = ""
    running: set = field(default_factory=set)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class _Scheduler:
    """The driver's loop: actors, batches in flight, retries."""

    def __init__(
        self,
        ray: ModuleType,
        spec: AlignerSpec,
        device: str,
        count: int,
        cpus: float,
        gpus: float,
        workers: int,
        settle: Callable[[_Work, str, float, bool, Any], None],
    ) -> None:
        self.ray = ray
        self.spec, self.device, self.count, self.cpus, self.gpus = spec, device, count, cpus, gpus
        self.workers = workers
        self.settle = settle
        self.actor_class = ray.remote(_AlignActor).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=0, max_concurrency=IN_FLIGHT_PER_ACTOR
        )
        self.actors: dict[int, _Actor] = {}
        self.starting: dict[Any, _Actor] = {}  # ready() reference -> actor
        self.running: dict[Any, tuple[_Actor, _Work]] = {}
        self.failed_starts = 0
        self.ever_started = False

    def _launch(self) -> None:
        handle = self.actor_class.remote(self.spec, self.device, max(1, int(self.cpus)), self.workers)
        actor = _Actor(handle)
        self.actors[id(actor)] = actor
        self.starting[handle.ready.remote()] = actor

    def _lose(self, actor: _Actor, error: BaseException) -> None:
        """An actor died: kill it for good and start another (unless actors
        keep dying while starting: a node that cannot run them)."""
        if self.actors.pop(id(actor), None) is None:
            return  # already replaced (its other batches fail with it)
        try:
            self.ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001 - it is gone either way
            pass
        warnings.warn(
            f"a Ray actor{' on node ' + actor.node[:12] if actor.node else ''} was lost "
            f"({_first_line(error)}); its batches go to the other actors",
            ActorLostWarning,
            stacklevel=2,
        )
        if self.failed_starts < MAX_TRIES * self.count:
            self._launch()
        elif not self.actors:
            raise CorpusError(
                f"every Ray actor was lost and {self.failed_starts} could not start: {_first_line(error)}"
            )

    def _retry(self, work: _Work, error: BaseException, works: deque[_Work]) -> None:
        work.tries += 1
        if work.tries < MAX_TRIES:
            works.appendleft(work)
        elif len(work.items) > 1:
            works.extendleft(reversed([_Work(work.index, [item]) for item in work.items]))
        else:
            _, item, seconds = work.items[0]
            problem = Problem(
                item.key, "align", f"{item.audio}: lost {MAX_TRIES} times on the Ray cluster ({_first_line(error)})"
            )
            self.settle(work, item.key, seconds or 0.0, False, problem)

    def _dispatch(self, works: deque[_Work]) -> None:
        while works:
            free = [a for a in self.actors.values() if a.started and len(a.running) < IN_FLIGHT_PER_ACTOR]
            if not free:
                return
            actor = min(free, key=lambda a: len(a.running))
            work = works.popleft()
            ref = actor.handle.align.remote([(item, seconds) for _, item, seconds in work.items])
            actor.running.add(ref)
            self.running[ref] = (actor, work)

    def _started(self, ref: ObjectRef) -> None:
        actor = self.starting.pop(ref)
        try:
            error, node = self.ray.get(ref)
        except self.ray.exceptions.RayError as failure:  # died while starting (node lost, out of memory)
            self.failed_starts += 1
            if not self.ever_started and self.failed_starts >= MAX_TRIES * self.count:
                raise CorpusError(f"no Ray actor could start: {_first_line(failure)}") from None
            self._lose(actor, failure)
            return
        if error is not None:
            raise AlignerError(error)  # the model spec is wrong: the same on every node
        actor.started, actor.node = True, node
        self.ever_started = True

    def _finished(self, ref: ObjectRef, works: deque[_Work]) -> None:
        actor, work = self.running.pop(ref)
        actor.running.discard(ref)
        try:
            outcomes = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as failure:
            self._lose(actor, failure)
            self._retry(work, failure, works)
            return
        except self.ray.exceptions.RayError as failure:  # the result lost with its node, a crash in the call
            self._retry(work, failure, works)
            return
        for key, seconds, decode_failed, outcome in outcomes:
            self.settle(work, key, seconds, decode_failed, outcome)

    def run(self, works: deque[_Work]) -> None:
        for _ in range(self.count):
            self._launch()
        waiting_since, warned = time.monotonic(), False
        while works or self.running:
            self._dispatch(works)
            if any(a.started for a in self.actors.values()) or not works:
                waiting_since = time.monotonic()
            elif not warned and time.monotonic() - waiting_since > WAIT_WARNING_SECONDS:
                warned = True
                warnings.warn(
                    f"no Ray actor has started for {WAIT_WARNING_SECONDS:.0f} s: does the cluster have "
                    f"{self.cpus:g} CPU{f' and {self.gpus:g} GPU' if self.gpus else ''} free on a node?",
                    RuntimeWarning,
                    stacklevel=2,
                )
            done, _ = self.ray.wait(list(self.running) + list(self.starting), num_returns=1, timeout=10.0)
            for ref in done:
                if ref in self.starting:
                    self._started(ref)
                else:
                    self._finished(ref, works)

    def stop(self) -> None:
        for actor in self.actors.values():
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors.clear()


def _cluster_plan(
    ray: ModuleType, spec: AlignerSpec, actors: int | None, cpus_per_actor: float | None
) -> tuple[str, int, float, float]:
    """Device type, number of actors, CPUs and GPUs per actor."""
    gpus_total = ray.cluster_resources().get("GPU", 0)
    device = spec.device or ("cuda" if gpus_total >= 1 else "cpu")
    if device == "cuda":
        if gpus_total < 1:
            raise CorpusError("device 'cuda' was asked for but the Ray cluster has no GPU")
        return device, actors or max(1, int(gpus_total)), cpus_per_actor or 1, 1
    node_cpus = [
        n["Resources"].get("CPU", 0)
        for n in ray.nodes()
        if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1
    ]
    cpus = cpus_per_actor or (int(min(node_cpus)) if node_cpus else 1)
    return device, actors or max(1, sum(int(c // cpus) for c in node_cpus)), cpus, 0


def _probe(address: str, timeout: float) -> None:
    """Refuse a ``HOST:PORT`` where nothing answers within ``timeout``
    seconds (a TCP connection to the head's port), before Ray's own
    connection, which retries for minutes; other addresses (``auto``, a
    malformed one) are left to Ray.

    Raises:
        CorpusError: naming the address and the reason.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return
    host = host.removeprefix("ray://").strip("[]")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except TimeoutError:
        raise CorpusError(f"cannot connect to the Ray cluster at {address!r}: no answer within {timeout:g} s") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CorpusError(f"cannot connect to the Ray cluster at {address!r}: {reason}") from None


def _connect(ray: ModuleType, address: str) -> bool:
    """Connect to the cluster; False when this process already was. A head
    that does not answer is an error within about :data:`CONNECT_SECONDS`:
    a TCP probe first (:func:`_probe`), then Ray's own connection, which
    retries for minutes where something else listens on the port, is
    waited for that long (in a daemon thread left behind when it gives up;
    the command then ends)."""
    if ray.is_initialized():
        return False
    _probe(address, CONNECT_SECONDS)
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=connect, name="aligner-ray-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS)
    if not outcome:
        raise CorpusError(
            f"cannot connect to the Ray cluster at {address!r}: no answer from a Ray head within {CONNECT_SECONDS:g} s"
        )
    error = outcome[0]
    if isinstance(error, (ConnectionError, ValueError, RuntimeError)):
        raise CorpusError(f"cannot connect to the Ray cluster at {address!r}: {_first_line(error)}") from None
    if error is not None:
        raise error
    return True


def align_corpus_ray(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    aligner: AlignerSpec | str | os.PathLike | None = None,
    *,
    address: str = "auto",
    formats: Sequence[str] = ("textgrid",),
    batch_seconds: float = 120.0,
    workers: int = 2,
    overwrite: bool = False,
    subtitles: str = "lines",
    on_progress: Callable[[FileResult], None] | None = None,
    on_start: Callable[[int, float], None] | None = None,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
) -> CorpusSummary:
    """:func:`aligner.corpus.align.align_corpus` on a Ray cluster (see the
    module's documentation); it calls this for ``ray_address=``.

    Args:
        aligner: the model spec (:class:`AlignerSpec`, or a model name or
            folder every node sees; None: the default model).
        address: ``"auto"`` (the cluster this machine belongs to: ``ray
            start``, or ``$RAY_ADDRESS``) or ``"HOST:PORT"`` of the head. A
            process already connected (``ray.init``) keeps its connection.
        workers: decoding threads per actor.
        actors: number of actors (default: one per GPU, or as many as the
            nodes' CPUs hold).
        cpus_per_actor: CPUs reserved per actor, also its torch threads
            (default: 1 with GPUs, else the CPUs of the smallest node).
        The others: as :func:`~aligner.corpus.align.align_corpus`.

    Returns:
        A :class:`~aligner.corpus.align.CorpusSummary` with the results in
        the local run's order. ``KeyboardInterrupt`` stops the run after the
        reports are written (``interrupted=True``).
    """
    started = time.perf_counter()
    spec = _as_spec(aligner)
    if actors is not None and (isinstance(actors, bool) or int(actors) < 1):
        raise CorpusError(f"actors must be >= 1, got {actors}")
    if cpus_per_actor is not None and not cpus_per_actor > 0:
        raise CorpusError(f"cpus_per_actor must be > 0, got {cpus_per_actor}")
    ray = _import_ray()
    in_dir, out_dir = Path(in_dir).expanduser().absolute(), Path(out_dir).expanduser()
    formats = _check_options(formats, batch_seconds, workers)
    summary, todo = _scan_corpus(in_dir, out_dir, formats, overwrite)
    settled = list(summary.results)
    if on_progress is not None:
        for result in settled:
            on_progress(result)
    if not todo:
        _end_run(summary, out_dir, started, formats)
        return summary

    connected = _connect(ray, address)
    done: dict[tuple[int, int, int], FileResult] = {}
    scheduler = None
    journal = Journal(out_dir)

    def settle(work: _Work, key: str, seconds: float, decode_failed: bool, outcome: Alignment | Problem) -> None:
        place = next(p for p, item, _ in work.items if item.key == key)
        result = _settle(key, seconds, outcome, out_dir, formats, subtitles, journal)
        done[(work.index, 0 if decode_failed else 1, place)] = result
        if on_progress is not None:
            on_progress(result)

    try:
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="aligner-headers") as pool:
            durations = list(zip(todo, pool.map(lambda item: audio_duration(item.audio), todo)))
        if on_start is not None:
            on_start(len(todo), sum(d for _, d in durations if d is not None))
        batches = plan_batches(durations, batch_seconds)
        device, count, cpus, gpus = _cluster_plan(ray, spec, actors, cpus_per_actor)
        scheduler = _Scheduler(ray, spec, device, count, cpus, gpus, workers, settle)
        scheduler.run(
            deque(
                _Work(index, [(place, item, seconds) for place, (item, seconds) in enumerate(batch)])
                for index, batch in enumerate(batches)
            )
        )
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if scheduler is not None:
            scheduler.stop()
        summary.results = settled + [done[k] for k in sorted(done)]
        _end_run(summary, out_dir, started, formats)
        if connected:
            ray.shutdown()
    return summary
