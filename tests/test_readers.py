"""Tests of aligner.readers: Praat TextGrids → Alignment."""

from __future__ import annotations

import math

import pytest

from aligner.errors import AlignerError
from aligner.readers import TextGridError, normalize_word, read_textgrid, read_tiers
from aligner.records import Alignment, CharSpan, WordSpan
from aligner.writers import write_alignment

LONG = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 2.5
tiers? <exists>
size = 3
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 2.5
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.5
            text = ""
        intervals [2]:
            xmin = 0.5
            xmax = 1.0
            text = "Don’t,"
        intervals [3]:
            xmin = 1.0
            xmax = 1.25
            text = "   "
        intervals [4]:
            xmin = 1.25
            xmax = 2.0
            text = "say ""hi"""
        intervals [5]:
            xmin = 2.0
            xmax = 2.5
            text = ""
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 2.5
        intervals: size = 6
        intervals [1]:
            xmin = 0
            xmax = 0.5
            text = "sil"
        intervals [2]:
            xmin = 0.5
            xmax = 0.75
            text = "d"
        intervals [3]:
            xmin = 0.75
            xmax = 1.0
            text = "oʊ"
        intervals [4]:
            xmin = 1.0
            xmax = 1.25
            text = ""
        intervals [5]:
            xmin = 1.25
            xmax = 2.0
            text = "s"
        intervals [6]:
            xmin = 2.0
            xmax = 2.5
            text = ""
    item [3]:
        class = "TextTier"
        name = "tones"
        xmin = 0
        xmax = 2.5
        points: size = 2
        points [1]:
            number = 0.6
            mark = "H*"
        points [2]:
            number = 1.5
            mark = "L%"
'''

SHORT = '''File type = "ooTextFile"
Object class = "TextGrid"

0
2.5
<exists>
3
"IntervalTier"
"words"
0
2.5
5
0
0.5
""
0.5
1.0
"Don’t,"
1.0
1.25
"   "
1.25
2.0
"say ""hi"""
2.0
2.5
""
"IntervalTier"
"phones"
0
2.5
6
0
0.5
"sil"
0.5
0.75
"d"
0.75
1.0
"oʊ"
1.0
1.25
""
1.25
2.0
"s"
2.0
2.5
""
"TextTier"
"tones"
0
2.5
2
0.6
"H*"
1.5
"L%"
'''


def _check_example(alignment: Alignment) -> None:
    assert [w.text for w in alignment.words] == ["Don’t,", 'say "hi"']
    assert [w.normalized for w in alignment.words] == ["DON'T", "SAYHI"]
    assert [(w.start, w.end) for w in alignment.words] == [(0.5, 1.0), (1.25, 2.0)]
    assert [[c.label for c in w.chars] for w in alignment.words] == [["d", "oʊ"], ["s"]]
    assert [(c.start, c.end) for c in alignment.words[0].chars] == [(0.5, 0.75), (0.75, 1.0)]
    assert alignment.duration == 2.5
    assert alignment.phonetic
    assert all(math.isnan(w.score) for w in alignment.words)
    assert all(math.isnan(c.score) for c in alignment.chars)
    assert all(w.aligned for w in alignment.words)
    # "sil" lies outside every word
    assert len(alignment.warnings) == 1 and "1 label(s)" in alignment.warnings[0]
    assert "sil" in alignment.warnings[0]


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("text", [LONG, SHORT], ids=["long", "short"])
@pytest.mark.parametrize(
    "encoding,newline",
    [
        ("utf-8", "\n"),
        ("utf-8", "\r\n"),
        ("utf-8-sig", "\n"),
        ("utf-16", "\r\n"),
        ("utf-16-le", "\n"),
        ("utf-16-be", "\n"),
    ],
)
def test_formats_encodings_and_line_endings(tmp_path, text, encoding, newline):
    path = _write(tmp_path, "a.TextGrid", text.replace("\n", newline).encode(encoding))
    alignment = read_textgrid(path)
    _check_example(alignment)
    tiers = read_tiers(path)
    assert [(t.name, t.kind) for t in tiers] == [
        ("words", "IntervalTier"),
        ("phones", "IntervalTier"),
        ("tones", "TextTier"),
    ]
    assert tiers[2].items == ((0.6, 0.6, "H*"), (1.5, 1.5, "L%"))
    assert tiers[0].items[2] == (1.0, 1.25, "")  # blank intervals kept, labels stripped (praatio)


def test_explicit_tiers_and_case_insensitive_names(tmp_path):
    path = _write(tmp_path, "a.TextGrid", LONG.encode())
    no_chars = read_textgrid(path, words_tier="WORDS", chars_tier="words")
    assert [[c.label for c in w.chars] for w in no_chars.words] == [["Don’t,"], ['say "hi"']]
    assert not no_chars.phonetic
    assert no_chars.warnings == ()


def test_no_chars_tier_present(tmp_path):
    text = LONG.replace('name = "phones"', 'name = "other"')
    alignment = read_textgrid(_write(tmp_path, "a.TextGrid", text.encode()))
    assert alignment.chars == () and not alignment.phonetic
    assert [w.text for w in alignment.words] == ["Don’t,", 'say "hi"']


def test_multiline_label_and_comment(tmp_path):
    text = SHORT.replace('"say ""hi"""', '"two\nlines" ! a comment')
    alignment = read_textgrid(_write(tmp_path, "a.TextGrid", text.encode()))
    assert alignment.words[1].text == "two\nlines"


@pytest.mark.parametrize("text", [LONG, SHORT], ids=["long", "short"])
def test_no_final_newline(tmp_path, text):
    path = _write(tmp_path, "a.TextGrid", text.rstrip("\n").encode())
    assert read_tiers(path)[2].items[-1] == (1.5, 1.5, "L%")


def test_latin1_fallback_warns(tmp_path):
    path = _write(
        tmp_path,
        "a.TextGrid",
        LONG.replace("Don’t,", "café").encode("utf-8").replace("café".encode(), "café".encode("latin-1")),
    )
    alignment = read_textgrid(path)
    assert alignment.words[0].text == "café"
    assert any("Latin-1" in w for w in alignment.warnings)


def test_normalize_word():
    assert normalize_word("Don’t,") == "DON'T"
    assert normalize_word("«Über»") == "ÜBER"
    assert normalize_word("...") == ""


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(TextGridError, match=r"nope\.TextGrid: TextGrid file not found"):
        read_textgrid(tmp_path / "nope.TextGrid")


def test_folder(tmp_path):
    with pytest.raises(TextGridError, match="is a folder"):
        read_textgrid(tmp_path)


def test_errors_are_aligner_errors(tmp_path):
    with pytest.raises(AlignerError):
        read_textgrid(tmp_path / "nope.TextGrid")


def test_missing_tier_lists_tiers(tmp_path):
    path = _write(tmp_path, "a.TextGrid", LONG.encode())
    with pytest.raises(
        TextGridError,
        match=r"a\.TextGrid: no tier named 'word' \(words tier\); "
        r"tiers present: 'words', 'phones', 'tones'",
    ):
        read_textgrid(path, words_tier="word")
    with pytest.raises(TextGridError, match="no tier named 'chars' .chars tier."):
        read_textgrid(path, chars_tier="chars")


def test_point_tier_refused(tmp_path):
    path = _write(tmp_path, "a.TextGrid", LONG.encode())
    with pytest.raises(TextGridError, match="tier 'tones' .* is a point tier"):
        read_textgrid(path, words_tier="tones")


ZERO_LENGTH = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0
        intervals: size = 0
"""


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"hello world\n", "not a Praat TextGrid"),
        (b"@@@ what", "not a Praat TextGrid"),
        (b"ooBinaryFile\x08TextGrid\x00\x01", "binary TextGrids are not supported"),
        (b"\xff\xfeF\x00\x00\xd8", "cannot decode the file as UTF-16"),
        (LONG[:600].encode(), "malformed or truncated TextGrid"),
        (SHORT[:200].encode(), "malformed or truncated TextGrid"),
        (LONG.replace('Object class = "TextGrid"', 'Object class = "Sound"').encode(), "'Sound' file, not a TextGrid"),
        (LONG.replace('text = "Don’t,"', "text = 3").encode(), r"malformed or truncated TextGrid \(ParsingError"),
        (LONG.replace('name = "phones"', 'name = "words"').encode(), r"malformed .*same name 'words'"),
        (LONG.replace("xmin = 1.25", "xmin = 0.9", 1).encode(), "malformed .*overlap"),
        (ZERO_LENGTH.encode(), "xmax must be positive"),
    ],
)
def test_malformed(tmp_path, content, message):
    path = _write(tmp_path, "bad.TextGrid", content)
    with pytest.raises(TextGridError, match=message) as caught:
        read_textgrid(path)
    assert "bad.TextGrid" in str(caught.value)


# ------------------------------------------------------------ round trip


def _alignment(phonetic: bool = False) -> Alignment:
    def word(text, start, end, labels):
        step = (end - start) / len(labels)
        chars = tuple(CharSpan(label, start + k * step, start + (k + 1) * step, 0.5) for k, label in enumerate(labels))
        return WordSpan(text, text.upper(), start, end, 0.8, chars)

    words = (
        word("Hello,", 0.1, 0.5, "HELLO"),
        word("big", 0.5, 0.72, "BIG"),
        WordSpan("€", "", 0.72, 0.72, 0.0, (), False),
        word("world!", 0.9, 1.4, "WORLD"),
    )
    return Alignment(words, 1.6, phonetic=phonetic, audio="x.wav")


@pytest.mark.parametrize("phonetic", [False, True])
def test_round_trip_through_writer(tmp_path, phonetic):
    original = _alignment(phonetic)
    path = write_alignment(original, tmp_path / "x.TextGrid")
    back = read_textgrid(path)
    assert back.phonetic == phonetic
    assert back.duration == pytest.approx(1.6)
    assert [w.text for w in back.words] == [w.text for w in original.words]
    # the unaligned word got a 1 ms interval from the writer; the others are unchanged
    for got, want in zip(back.words, original.words):
        if want.aligned:
            assert (got.start, got.end) == pytest.approx((want.start, want.end), abs=1e-6)
            assert [c.label for c in got.chars] == [c.label for c in want.chars]
            for c_got, c_want in zip(got.chars, want.chars):
                assert (c_got.start, c_got.end) == pytest.approx((c_want.start, c_want.end), abs=1e-6)
        else:
            assert got.end - got.start == pytest.approx(1e-3)
            assert got.chars == ()
    assert back.warnings == ()


def test_round_trip_of_real_aligner_output(tmp_path):
    import numpy as np

    from aligner import Aligner
    from aligner.testing import tiny_model

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    alignment = Aligner(tiny_model(), device="cpu").align((audio, 16000), "the quick brown fox")
    path = write_alignment(alignment, tmp_path / "out.TextGrid")
    back = read_textgrid(path)
    assert [w.text for w in back.words] == ["the", "quick", "brown", "fox"]
    assert [w.normalized for w in back.words] == [w.normalized for w in alignment.words]
    for got, want in zip(back.words, alignment.words):
        assert (got.start, got.end) == pytest.approx((want.start, want.end), abs=1e-6)
    assert [c.label for c in back.chars] == [c.label for c in alignment.chars]


# ------------------------------------------------------- human TextGrids


def _human_grids(speech_dir):
    grids = sorted(p for p in speech_dir.glob("*.TextGrid") if ".source" not in p.name)
    if not grids:
        pytest.skip(f"no human TextGrids in {speech_dir}")
    return grids


def test_human_textgrids(speech_dir):
    for path in _human_grids(speech_dir):
        alignment = read_textgrid(path, chars_tier="phones")
        assert alignment.words, path
        assert alignment.phonetic
        for word in alignment.words:
            assert 0 <= word.start < word.end <= alignment.duration + 1e-9
            assert word.text == word.text.strip() and word.text
            for char in word.chars:
                assert word.start - 1e-9 <= (char.start + char.end) / 2 < word.end
        starts = [w.start for w in alignment.words]
        assert starts == sorted(starts)


def test_all_shared_textgrids_match_praatio(speech_dir):
    """Every TextGrid in the shared folder, including the sources (short
    format, CRLF, point tiers), reads like praatio reads it."""
    textgrid = pytest.importorskip("praatio.textgrid")
    paths = sorted(speech_dir.glob("*.TextGrid"))
    if not paths:
        pytest.skip(f"no TextGrids in {speech_dir}")
    for path in paths:
        tiers = read_tiers(path)
        reference = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
        assert [t.name for t in tiers] == list(reference.tierNames), path
        for tier in tiers:
            entries = reference.getTier(tier.name).entries
            assert len(tier.items) == len(entries), (path, tier.name)
            for (start, end, label), entry in zip(tier.items, entries):
                if tier.is_interval:
                    assert (start, end, label) == pytest.approx((entry.start, entry.end, entry.label))
                else:
                    assert (start, label) == pytest.approx((entry.time, entry.label))


# ------------------------------------------- Praat's own text-format rules


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("xmax = 2.0\n", 'xmax = 2.0 ! a comment with "quotes" and 5\n'),
        lambda t: t.replace("xmax = 0.5\n", "xmax = 5e-1\n").replace("xmin = 0\n", "xmin = -0\n", 1),
        lambda t: "\n  \n" + t,
        lambda t: t.replace("    ", "\t"),
    ],
    ids=["comment", "exponent", "leading-blank-lines", "tabs"],
)
def test_long_format_as_praat_reads_it(tmp_path, change):
    path = _write(tmp_path, "a.TextGrid", change(LONG).encode())
    _check_example(read_textgrid(path))
    assert [t.xmin for t in read_tiers(path)] == [0.0, 0.0, 0.0]


def test_point_tier_domain_and_widened_domains(tmp_path):
    text = LONG.replace("number = 0.6", "number = 2.7").replace(
        "xmax = 2.5\n        points", "xmax = 2.6\n        points"
    )
    tiers = read_tiers(_write(tmp_path, "a.TextGrid", text.encode()))
    assert (tiers[2].xmin, tiers[2].xmax) == (0.0, 2.7)  # widened to its point, as praatio did
    assert tiers[2].items == ((1.5, 1.5, "L%"), (2.7, 2.7, "H*"))  # sorted by time
    assert read_textgrid(tmp_path / "a.TextGrid").duration == 2.7


@pytest.mark.parametrize(
    "content,message",
    [
        (LONG[: LONG.index("item [3]")], r"the file ends where the class of tier 3 should be"),
        (SHORT.replace('"IntervalTier"\n"phones"', '"Bogus"\n"phones"'), r"tier 2 is a 'Bogus'"),
        (LONG.replace("size = 3", "size = 2"), r"line 66: more after the last of the 2 tier\(s\)"),
        (LONG.replace("intervals: size = 5", "intervals: size = 1.5", 1), r"line 14: .* is 1.5, not a count"),
        (
            LONG.replace("xmax = 1.0\n            text", "xmax = 0.5\n            text", 1),
            r".*starts at 0.5 s and ends at 0.5 s",
        ),
        (
            LONG.replace(
                'class = "IntervalTier"\n        name = "phones"', 'class = "TextTier"\n        name = "phones"'
            ),
            r"tier 'phones' is a point tier \(TextTier\) but its entries are intervals",
        ),
        (
            LONG.replace('class = "TextTier"', 'class = "IntervalTier"'),
            r"tier 'tones' is an interval tier but its entries are points",
        ),
    ],
)
def test_truncated_or_inconsistent_files_are_refused(tmp_path, content, message):
    with pytest.raises(
        TextGridError, match=r"bad\.TextGrid: malformed or truncated TextGrid \(ParsingError: " + message
    ):
        read_textgrid(_write(tmp_path, "bad.TextGrid", content.encode()))
