"""The ``Examples`` sections of the public API's docstrings run as doctests.

The modules are listed here (rather than ``--doctest-modules``, which would
import every module of the packages at collection, the Ray and training ones
included); each listed object must carry at least one example.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]

#: module -> the objects whose docstrings must have examples
DOCTESTED = {
    "aligner.pipeline": ["Aligner", "align"],
    "aligner.viterbi": ["forced_align", "minimum_frames"],
    "aligner.text": ["normalize_transcript"],
    "aligner.records": ["Alignment"],
    "aligner.spans": ["token_spans"],
    "aligner.readers": ["read_textgrid"],
    "aligner.writers": ["to_json", "to_ctm"],
    "aligner.partial": ["ends_clause"],
    "aligner.refine": ["refine_words"],
    "aligner.duration_viterbi": ["state_graph", "viterbi_states"],
    "viz.alignment": ["plot_confidence"],
    "viz.emissions": ["plot_emissions", "token_positions"],
}


@pytest.mark.parametrize("name", sorted(DOCTESTED))
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # examples name files relative to the repository root
    module = importlib.import_module(name)
    tests = [test for test in doctest.DocTestFinder().find(module) if test.examples]
    documented = {test.name.removeprefix(f"{name}.") for test in tests}
    missing = [obj for obj in DOCTESTED[name] if obj not in documented]
    assert not missing, f"{name}: no doctest examples in the docstrings of {missing}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.tries > 0, f"{name}: no examples ran"
    assert runner.failures == 0, "".join(report)
