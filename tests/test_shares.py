"""Shares of a batch run in parallel threads (:mod:`aligner._shares`)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aligner._shares import run_in_shares, split_by_cost


@given(st.lists(st.integers(0, 1000), max_size=40), st.integers(1, 6))
def test_every_item_is_in_exactly_one_share_and_the_loads_are_balanced(costs, workers):
    shares = split_by_cost(costs, workers)
    assert len(shares) <= workers and all(share.size and (np.diff(share) > 0).all() for share in shares)
    assert sorted(np.concatenate(shares).tolist() if shares else []) == list(range(len(costs)))
    loads = [sum(costs[i] for i in share) for share in shares]
    if loads:  # longest first: no share exceeds another by more than its largest item
        assert max(loads) - min(loads) <= max(costs)


def test_shares_run_side_by_side_with_the_caller_taking_the_first():
    seen: dict[int, str] = {}
    both = threading.Barrier(2, timeout=10)  # passes only when two shares run at the same time

    def run(share: np.ndarray) -> None:
        both.wait()
        for item in share.tolist():
            seen[item] = threading.current_thread().name

    run_in_shares([5, 1, 4, 2], 2, run)
    assert sorted(seen) == [0, 1, 2, 3]
    assert seen[0] == threading.current_thread().name  # the costliest item: the first share, the caller's
    assert seen[2].startswith("aligner-viterbi")


def test_an_error_in_a_worker_share_reaches_the_caller():
    def run(share: np.ndarray) -> None:
        if 1 in share.tolist():
            raise ValueError("item 1 failed")

    with pytest.raises(ValueError, match="item 1 failed"):
        run_in_shares([3, 2], 2, run)
    run_in_shares([], 2, run)  # nothing to run
