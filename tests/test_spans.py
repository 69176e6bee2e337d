import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aligner.records import TokenSpan
from aligner.spans import token_spans, word_spans

LABELS = ("-", "|", "A", "B", "C")
BLANK, SEP, A, B, C = range(5)


def _word(text, *tokens):
    return SimpleNamespace(text=text, tokens=tuple(tokens))


def test_token_spans_runs_and_scores():
    path = torch.tensor([0, 2, 2, 0, 2, 3, 0, 0])
    log_probs = torch.log(torch.tensor([0.9, 0.5, 0.7, 0.9, 0.4, 0.8, 0.9, 0.9]))
    spans = token_spans(path, log_probs, blank=0)
    assert spans == [
        TokenSpan(2, 1, 3, pytest.approx(0.6)),
        TokenSpan(2, 4, 5, pytest.approx(0.4)),
        TokenSpan(3, 5, 6, pytest.approx(0.8)),
    ]


def _spans(*triples):
    return [TokenSpan(token, start, end, 1.0) for token, start, end in triples]


def test_word_end_keeps_a_few_trailing_blanks_but_not_a_pause():
    # frames:  A at 2-3, B at 5, | at 20, C at 30-31; 50 frames in all
    spans = _spans((A, 2, 4), (B, 5, 6), (SEP, 20, 21), (C, 30, 32))
    words = [_word("ab,", A, B), _word("C!", C)]
    out = word_spans(spans, [0, 0, -1, 1], words, LABELS, 0.02, 50, separator=SEP, end_extension_frames=5)
    first, second = out
    assert (first.text, first.normalized) == ("ab,", "AB")
    assert first.start == pytest.approx(0.04)
    assert first.end == pytest.approx(11 * 0.02)  # B ends at frame 6, plus 5 blank frames
    assert [c.label for c in first.chars] == ["A", "B"]
    assert first.chars[0].end == pytest.approx(first.chars[1].start)  # characters tile the word
    assert second.start == pytest.approx(0.60)
    assert second.end == pytest.approx(37 * 0.02)
    assert all(w.aligned for w in out)


def test_word_end_never_passes_the_next_token_or_the_audio():
    spans = _spans((A, 0, 1), (SEP, 2, 3), (B, 3, 4))
    words = [_word("a", A), _word("b", B)]
    out = word_spans(spans, [0, -1, 1], words, LABELS, 0.02, 6, separator=SEP, end_extension_frames=5)
    assert out[0].end == pytest.approx(0.04)  # stops where the separator starts
    assert out[1].end == pytest.approx(6 * 0.02)  # stops at the last frame


def test_extension_zero_ends_at_last_character_frame():
    spans = _spans((A, 2, 4), (B, 9, 10))
    words = [_word("a", A), _word("b", B)]
    out = word_spans(spans, [0, 1], words, LABELS, 0.02, 30, end_extension_frames=0)
    assert out[0].end == pytest.approx(0.08)


def test_unrepresentable_word_sits_between_neighbours():
    spans = _spans((A, 2, 4), (B, 10, 12))
    words = [
        _word("a", A),
        _word(
            "€",
        ),
        _word("b", B),
    ]
    out = word_spans(spans, [0, 2], words, LABELS, 0.02, 30, end_extension_frames=2)
    middle = out[1]
    assert middle.text == "€" and not middle.aligned and middle.score == 0.0
    assert middle.start == pytest.approx(out[0].end) and middle.end == pytest.approx(out[2].start)
    assert len(out) == 3


def test_word_score_is_frame_weighted_mean():
    spans = [TokenSpan(A, 0, 3, 0.9), TokenSpan(B, 3, 4, 0.1)]
    out = word_spans(spans, [0, 0], [_word("ab", A, B)], LABELS, 0.02, 4)
    assert out[0].score == pytest.approx((0.9 * 3 + 0.1) / 4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.integers(0, 6), st.data())
def test_words_are_ordered_and_never_overlap(word_sizes, extension, data):
    word_index, words, spans, t = [], [], [], 0
    for w, size in enumerate(word_sizes):
        tokens = [data.draw(st.sampled_from([A, B, C])) for _ in range(size)]
        words.append(_word(f"w{w}", *tokens))
        for token in tokens:
            t += data.draw(st.integers(0, 3))
            length = data.draw(st.integers(1, 3))
            spans.append(TokenSpan(token, t, t + length, 0.5))
            word_index.append(w)
            t += length + 1  # keep equal neighbours apart
    total = t + data.draw(st.integers(0, 10))
    out = word_spans(spans, word_index, words, LABELS, 0.02, total, end_extension_frames=extension)
    assert len(out) == len(words)
    for before, after in zip(out, out[1:]):
        assert before.end <= after.start + 1e-9
    for word in out:
        assert 0 <= word.start < word.end <= total * 0.02 + 1e-9
        assert math.isclose(word.start, word.chars[0].start) and word.end >= word.chars[-1].end - 1e-9
