"""Corpus alignment on a Ray cluster (aligner.corpus.ray_cluster, `align-corpus --ray`).

A real local cluster of two single-CPU nodes (ray.cluster_utils.Cluster) is
started once for the module. The Ray run must give the local run's outputs
byte for byte and the same reports, resume, survive the loss of a node
mid-run and stop cleanly on Ctrl-C.
"""

from __future__ import annotations

import csv
import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from aligner.cli import main
from aligner.corpus.align import CONFIDENCE_FILE, FAILURES_FILE, align_corpus
from aligner.corpus.files import find_corpus_files, output_path
from aligner.errors import CorpusError

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]"); the cluster tests need it')

import aligner.corpus.ray_cluster as corpus_ray  # noqa: E402  (after the skip)
from aligner.corpus.ray_cluster import ActorLostWarning, AlignerSpec  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
SHARED_FILES = ["3_lucas_7.wav", "61-70968-0000.flac", "mfa_surround.flac"]
FORMATS = ("textgrid", "json", "ctm")
BAD = {"corrupt.wav": "audio", "notext.wav": "transcript"}
NODE_MEMORY = 100 * 1024 * 1024


def _noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = (np.sin(np.linspace(0, 9 * np.pi, n)) > 0).astype(np.float32)
    return 0.2 * rng.standard_normal(n).astype(np.float32) * envelope


@pytest.fixture(scope="module")
def cluster():
    """Two single-CPU nodes on this machine (head + one worker); node deaths
    are noticed within about a second."""
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.setenv("RAY_DEDUP_LOGS", "0")
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "object_store_memory": NODE_MEMORY,
                "include_dashboard": False,
                "_system_config": {
                    "health_check_initial_delay_ms": 0,
                    "health_check_period_ms": 500,
                    "health_check_failure_threshold": 3,
                },
            },
        )
        try:
            cluster.add_node(num_cpus=1, object_store_memory=NODE_MEMORY)
            cluster.wait_for_nodes()
            yield cluster
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The example and two renamed copies, shared recordings (when present),
    generated noise at several rates, a corrupt file and one without text."""
    root = tmp_path_factory.mktemp("ray") / "corpus"
    (root / "spk1").mkdir(parents=True)
    (root / "spk2").mkdir()
    for name in ("spk1/example.wav", "spk1/copy_a.wav", "spk2/copy_b.wav"):
        shutil.copy(EXAMPLES / "example.wav", root / name)
        shutil.copy(EXAMPLES / "example.txt", (root / name).with_suffix(".txt"))
    if SHARED.is_dir():
        (root / "shared").mkdir()
        for name in SHARED_FILES:
            shutil.copy(SHARED / name, root / "shared" / name)
            shutil.copy((SHARED / name).with_suffix(".txt"), root / "shared" / Path(name).with_suffix(".txt"))
    for index, (seconds, rate, text) in enumerate(
        [(4.1, 8000, "on the mat today"), (2.4, 44100, "hello world"), (1.1, 16000, "zero")]
    ):
        soundfile.write(root / "spk2" / f"gen{index}.wav", _noise(seconds, rate, index), rate)
        (root / "spk2" / f"gen{index}.txt").write_text(text + "\n")
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really a wav file")
    (root / "corrupt.txt").write_text("some words\n")
    soundfile.write(root / "notext.wav", _noise(1.0, 16000, 9), 16000)
    return root


@pytest.fixture(scope="module")
def local_run(corpus, tiny_model_dir, tmp_path_factory) -> Path:
    """The local align-corpus, with the actors' single torch thread (CPU
    float sums depend on the number of threads)."""
    import torch

    from aligner.pipeline import Aligner

    out = tmp_path_factory.mktemp("local") / "out"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = align_corpus(
            corpus, out, Aligner(str(tiny_model_dir), device="cpu"), formats=FORMATS, batch_seconds=12.0
        )
    finally:
        torch.set_num_threads(threads)
    assert summary.failed == len(BAD) and summary.aligned == _count_good(corpus)
    return out


@pytest.fixture(scope="module")
def ray_run(cluster, corpus, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("on_ray") / "out"
    summary = align_corpus(
        corpus, out, str(tiny_model_dir), formats=FORMATS, batch_seconds=12.0, ray_address=cluster.address
    )
    return out, summary


def _count_good(corpus: Path) -> int:
    return len(find_corpus_files(corpus)) - len(BAD)


def _tree(out: Path) -> dict[str, Path]:
    return {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*")) if p.is_file()}


def _failures(out: Path) -> dict[str, str]:
    with (out / FAILURES_FILE).open(newline="") as handle:
        return {row[0]: row[1] for row in list(csv.reader(handle, delimiter="\t"))[1:]}


def _confidence(path: Path) -> dict[str, list[str]]:
    with path.open(newline="") as handle:
        return {row[0]: row for row in list(csv.reader(handle, delimiter="\t"))[1:]}


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.name.endswith(".tmp")]


def _assert_each_file_once(corpus: Path, out: Path, results) -> None:
    keys = [r.key for r in results]
    assert sorted(keys) == sorted(f.key for f in find_corpus_files(corpus))  # every file, exactly once
    for r in results:
        written = [output_path(out, r.key, fmt).is_file() for fmt in FORMATS]
        assert all(written) if r.status in ("aligned", "skipped") else not any(written), r


# --- same results as the local run --------------------------------------------


def test_outputs_and_reports_equal_the_local_run(local_run, ray_run, corpus):
    out, summary = ray_run
    assert (summary.aligned, summary.failed, summary.skipped) == (_count_good(corpus), len(BAD), 0)
    assert not summary.interrupted and summary.wall_seconds > 0
    local, remote = _tree(local_run), _tree(out)
    assert sorted(local) == sorted(remote)
    assert FAILURES_FILE in remote and CONFIDENCE_FILE in remote
    different = [name for name in local if not filecmp.cmp(local[name], remote[name], shallow=False)]
    assert different == []  # outputs, failures.tsv and confidence.tsv byte for byte
    assert _failures(out) == BAD
    assert "aligned" in summary.describe() and "x real time" in summary.describe()
    _assert_each_file_once(corpus, out, summary.results)


# --- interruption and faults --------------------------------------------------


def test_ctrl_c_leaves_no_partial_file_and_the_cli_finishes_the_rest(cluster, corpus, tiny_model_dir, tmp_path):
    """Ctrl-C (here from the progress callback) stops the run: the files done
    are complete, nothing else is written. `align-corpus --ray` then skips
    them (untouched), aligns the rest and fails the broken files (exit 3)."""
    out = tmp_path / "out"
    aligned = []

    def stop_after_two(result):
        if result.status == "aligned":
            aligned.append(result.key)
            if len(aligned) == 2:
                raise KeyboardInterrupt

    summary = align_corpus(
        corpus,
        out,
        str(tiny_model_dir),
        formats=FORMATS,
        batch_seconds=1.0,
        ray_address=cluster.address,
        on_progress=stop_after_two,
    )
    assert summary.interrupted and summary.aligned == 2
    assert _temporaries(out) == []
    for key in aligned:
        json.loads(output_path(out, key, "json").read_text())  # complete
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.json")} == {
        Path(k).with_suffix(".json").as_posix() for k in aligned
    }
    before = {key: output_path(out, key, "json").stat().st_mtime_ns for key in aligned}

    result = CliRunner().invoke(
        main,
        [
            "align-corpus",
            str(corpus),
            str(out),
            "--ray",
            cluster.address,
            "--model",
            str(tiny_model_dir),
            "--batch-seconds",
            "1",
            "-q",
            *[arg for fmt in FORMATS for arg in ("-f", fmt)],
        ],
    )
    assert result.exit_code == 3, result.output
    assert f"aligned {_count_good(corpus) - 2}, failed {len(BAD)}, skipped 2" in result.output
    assert str(out / FAILURES_FILE) in result.output
    assert {key: output_path(out, key, "json").stat().st_mtime_ns for key in aligned} == before
    assert _failures(out) == BAD
    for item in find_corpus_files(corpus):
        written = [output_path(out, item.key, fmt).is_file() for fmt in FORMATS]
        assert all(written) if item.key not in BAD else not any(written), item.key
    assert len(_confidence(out / CONFIDENCE_FILE)) == _count_good(corpus)


def test_a_model_the_actors_cannot_load_is_a_clean_error(cluster, corpus, tmp_path):
    from aligner.errors import AlignerError

    with pytest.raises(AlignerError, match="NO_SUCH_MODEL"):
        align_corpus(corpus, tmp_path / "out", "NO_SUCH_MODEL", ray_address=cluster.address)
    assert not (tmp_path / "out" / CONFIDENCE_FILE).exists()


def test_a_node_lost_mid_run_loses_nothing(cluster, corpus, tiny_model_dir, tmp_path, monkeypatch):
    """The worker node dies while its actor holds a batch: its batches go to
    the head's actor, and every file ends exactly once as outputs or a
    failure row."""
    worker = next(node for node in cluster.worker_nodes)
    out = tmp_path / "out"
    removed = []
    schedulers = []

    def worker_busy() -> bool:
        # the worker's actor has started and holds a batch: its loss is then certain to be seen
        return any(
            actor.started and actor.node == worker.node_id and actor.running
            for scheduler in schedulers
            for actor in scheduler.actors.values()
        )

    def kill_the_worker():
        if not removed and worker_busy():
            cluster.remove_node(worker, allow_graceful=False)
            removed.append(worker.node_id)

    resent = []
    original_retry, original_dispatch = corpus_ray._Scheduler._retry, corpus_ray._Scheduler._dispatch

    def retry(self, work, error, works):
        resent.append(work.index)
        original_retry(self, work, error, works)

    def dispatch(self, works):
        if self not in schedulers:
            schedulers.append(self)
        original_dispatch(self, works)
        kill_the_worker()  # as soon as the worker's actor holds a batch

    monkeypatch.setattr(corpus_ray._Scheduler, "_retry", retry)
    monkeypatch.setattr(corpus_ray._Scheduler, "_dispatch", dispatch)
    try:
        with pytest.warns(ActorLostWarning, match="lost"):
            summary = align_corpus(
                corpus,
                out,
                str(tiny_model_dir),
                formats=FORMATS,
                batch_seconds=1.0,
                ray_address=cluster.address,
            )
        assert removed and resent and not summary.interrupted  # the lost node's batches were sent again
        assert (summary.aligned, summary.failed) == (_count_good(corpus), len(BAD))
        _assert_each_file_once(corpus, out, summary.results)
        assert _failures(out) == BAD
        assert _temporaries(out) == []
        assert len(_confidence(out / CONFIDENCE_FILE)) == _count_good(corpus)
    finally:
        if removed:  # leave the module's cluster as it was
            cluster.add_node(num_cpus=1, object_store_memory=NODE_MEMORY)
            cluster.wait_for_nodes()


# --- options -------------------------------------------------------------------


def test_a_loaded_aligner_or_adapt_is_refused(corpus, tiny_model_dir, tmp_path):
    from aligner.pipeline import Aligner
    from aligner.training.adapt import AdaptOptions

    with pytest.raises(CorpusError, match="not a loaded Aligner"):
        align_corpus(corpus, tmp_path / "out", Aligner(str(tiny_model_dir), device="cpu"), ray_address="auto")
    with pytest.raises(CorpusError, match="adapt is not supported"):
        align_corpus(corpus, tmp_path / "out", str(tiny_model_dir), ray_address="auto", adapt=AdaptOptions())
    with pytest.raises(CorpusError, match="device is 'cpu' or 'cuda'"):
        align_corpus(corpus, tmp_path / "out", AlignerSpec(str(tiny_model_dir), device="cuda:1"), ray_address="auto")
    result = CliRunner().invoke(main, ["align-corpus", str(corpus), str(tmp_path / "out"), "--actors", "2"])
    assert result.exit_code == 2 and "need --ray" in result.output


def test_without_ray_installed_the_error_says_how_to_install_it(corpus, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(CorpusError, match=r"pip install.*\[ray\]"):
        align_corpus(corpus, tmp_path / "out", "TRELLIS_EN_PHONES", ray_address="auto")
