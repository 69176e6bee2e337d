from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aligner.errors import AlignerError, ModelError, TranscriptError
from aligner.text import (
    ENGLISH_LABELS,
    Transcript,
    TranscriptWord,
    UnrepresentableCharacterWarning,
    normalize_transcript,
    read_transcript,
)

# torchaudio WAV2VEC2_ASR_*_960H labels (blank "-", separator "|").
EN = (
    "-",
    "|",
    "E",
    "T",
    "A",
    "O",
    "N",
    "I",
    "H",
    "S",
    "R",
    "D",
    "L",
    "U",
    "M",
    "W",
    "C",
    "F",
    "G",
    "Y",
    "P",
    "B",
    "V",
    "K",
    "'",
    "X",
    "J",
    "Q",
    "Z",
)
# torchaudio MMS_FA labels with the star (no separator).
MMS = (
    "-",
    "a",
    "i",
    "e",
    "n",
    "o",
    "u",
    "t",
    "s",
    "r",
    "m",
    "k",
    "l",
    "d",
    "g",
    "h",
    "y",
    "b",
    "p",
    "w",
    "c",
    "v",
    "j",
    "z",
    "f",
    "'",
    "q",
    "x",
    "*",
)


def en(text: str, **kwargs) -> list[str]:
    """Normalized form of each word with the English labels."""
    return [w.normalized for w in normalize_transcript(text, EN, **kwargs).words]


def mms(text: str, star: str | None = "*", **kwargs) -> list[str]:
    return [w.normalized for w in normalize_transcript(text, MMS, separator=None, star=star, **kwargs).words]


def ids(labels: tuple[str, ...], spelled: str) -> tuple[int, ...]:
    return tuple(labels.index(c) for c in spelled)


# ----------------------------------------------------------------- words and case


def test_word_keeps_original_spelling_and_apostrophe():
    transcript = normalize_transcript("Don't, stop!", EN)
    assert [w.text for w in transcript.words] == ["Don't,", "stop!"]
    assert transcript.words[0].tokens == ids(EN, "DON'T")
    assert transcript.words[0].normalized == "DON'T"
    assert transcript.words[1].normalized == "STOP"
    assert transcript.dropped == ()


def test_case_follows_the_labels():
    assert en("hello World") == ["HELLO", "WORLD"]
    assert mms("HELLO World") == ["hello", "world"]
    mixed = ("-", "|", "a", "A", "b")
    words = normalize_transcript("aB Ab", mixed).words
    assert [w.normalized for w in words] == ["ab", "Ab"]  # case kept where it has a label


def test_typographic_apostrophes_become_the_label_apostrophe():
    assert en("don’t it‘s o`clock manʼs") == ["DON'T", "IT'S", "O'CLOCK", "MAN'S"]
    assert mms("l’école") == ["l'ecole"]


def test_apostrophes_removed_without_label_and_at_word_edges():
    no_apostrophe = tuple(c for c in EN if c != "'")
    words = normalize_transcript("don't", no_apostrophe).words
    assert words[0].normalized == "DONT"
    assert en("'quoted' students' rock'n'roll") == ["QUOTED", "STUDENTS", "ROCK'N'ROLL"]


def test_punctuation_removed_but_kept_in_text():
    transcript = normalize_transcript('"Hello," she said... (U.S.A.)', EN)
    assert [w.text for w in transcript.words] == ['"Hello,"', "she", "said...", "(U.S.A.)"]
    assert [w.normalized for w in transcript.words] == ["HELLO", "SHE", "SAID", "USA"]


def test_hyphen_slash_underscore_split_into_subwords():
    assert en("well-known and/or snake_case long—dash") == ["WELL|KNOWN", "AND|OR", "SNAKE|CASE", "LONG|DASH"]
    assert mms("well-known and/or") == ["wellknown", "andor"]


def test_nfkc_and_format_characters():
    # fullwidth letters, ligature, soft hyphen and zero-width joiner
    assert en("ＡＢＣ ﬁne soft\u00adware a\u200db") == ["ABC", "FINE", "SOFTWARE", "AB"]


# ----------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "text, expected",
    [
        ("42", "FORTY|TWO"),
        ("3.5", "THREE|POINT|FIVE"),
        ("2.50", "TWO|POINT|FIVE|ZERO"),
        (".5", "POINT|FIVE"),
        ("1,000", "ONE|THOUSAND"),
        ("1,000,000", "ONE|MILLION"),
        ("1999", "NINETEEN|NINETY|NINE"),
        ("2005", "TWO|THOUSAND|AND|FIVE"),
        ("1066", "ONE|THOUSAND|AND|SIXTY|SIX"),  # not a year (before 1100)
        ("1st", "FIRST"),
        ("21st", "TWENTY|FIRST"),
        ("22nd", "TWENTY|SECOND"),
        ("3rd", "THIRD"),
        ("4th", "FOURTH"),
        ("50%", "FIFTY|PERCENT"),
        ("3.5%", "THREE|POINT|FIVE|PERCENT"),
        ("$5", "FIVE|DOLLARS"),
        ("$1", "ONE|DOLLAR"),
        ("$5.50", "FIVE|DOLLARS|FIFTY|CENTS"),
        ("$1.01", "ONE|DOLLAR|ONE|CENT"),
        ("$0.99", "NINETY|NINE|CENTS"),
        ("$1,000,000", "ONE|MILLION|DOLLARS"),
        ("£3", "THREE|POUNDS"),
        ("€10", "TEN|EUROS"),
        ("10€", "TEN|EUROS"),
        ("-5", "MINUS|FIVE"),
        ("1990s", "NINETEEN|NINETIES"),
        ("1999-2005", "NINETEEN|NINETY|NINE|TWO|THOUSAND|AND|FIVE"),
        ("3:30pm", "THREE|THIRTY|PM"),
        ("mp3", "MP|THREE"),
        ("007", "ZERO|ZERO|SEVEN"),
        (
            "12345678901234567890",
            "|".join(["ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE", "ZERO"] * 2),
        ),
        ("R&D", "R|AND|D"),
        ("$5.50,", "FIVE|DOLLARS|FIFTY|CENTS"),
        ("(1999).", "NINETEEN|NINETY|NINE"),
    ],
)
def test_numbers_english(text, expected):
    assert en(text) == [expected]


def test_numbers_without_separator_are_concatenated():
    assert mms("$5.50 1999 21st") == ["fivedollarsfiftycents", "nineteenninetynine", "twentyfirst"]


def test_numbers_other_language():
    assert mms("42 3,5 5€ 50%", language="fr") == ["quarantedeux", "troisvirgulecinq", "cinqeuros", "cinquantepourcent"]
    assert mms("1999", language="deu") == ["neunzehnhundertneunundneunzig"]


def test_numbers_kept_when_model_has_digit_labels():
    labels = EN + tuple("0123456789")
    assert [w.normalized for w in normalize_transcript("42", labels).words] == ["42"]


def test_numbers_in_unsupported_language_are_dropped_with_hint():
    with pytest.warns(
        UnrepresentableCharacterWarning, match=r"'2', '4' \(numbers cannot be spelled out for language 'xyz'\)"
    ):
        transcript = normalize_transcript("hello 42", MMS, separator=None, language="xyz")
    assert [w.tokens for w in transcript.words][1] == ()


# ----------------------------------------------------------------- unrepresentable


def test_accents_stripped_when_not_a_label():
    assert en("café naïve Straße") == ["CAFE", "NAIVE", "STRASSE"]
    assert mms("cafe\u0301") == ["cafe"]  # decomposed accent
    with_accent = EN + ("É",)
    assert [w.normalized for w in normalize_transcript("café", with_accent).words] == ["CAFÉ"]


def test_non_latin_romanized_with_uroman():
    assert mms("привет мир") == ["privet", "mir"]
    assert mms("你好") == ["nihao"]
    assert en("Москва-city") == ["MOSKVA|CITY"]


def test_star_replaces_each_run_of_unrepresentable_characters():
    transcript = normalize_transcript("a€€b 😀 ok €.€x", MMS, separator=None, star="*")
    assert [w.normalized for w in transcript.words] == ["a*b", "*", "ok", "*x"]
    assert transcript.words[1].tokens == (MMS.index("*"),)
    assert transcript.dropped == ()


def test_dropped_characters_warn_once_and_word_is_kept():
    with pytest.warns(UnrepresentableCharacterWarning) as record:
        transcript = normalize_transcript("a€b € 😀 ok €", EN, source="transcript.txt")
    assert len(record) == 1
    assert str(record[0].message) == ("transcript.txt: dropped characters the model cannot represent: '€', '😀'")
    assert [w.text for w in transcript.words] == ["a€b", "€", "😀", "ok", "€"]
    assert [w.tokens for w in transcript.words][1:3] == [(), ()]
    assert transcript.dropped == ("€", "😀")


def test_non_latin_labels_do_not_romanize():
    cyrillic = ("-", "|", "а", "б", "в")
    with pytest.warns(UnrepresentableCharacterWarning, match=r"'x', 'y'"):
        transcript = normalize_transcript("ба xy", cyrillic)
    assert [w.normalized for w in transcript.words] == ["ба", ""]


def test_no_warning_when_everything_is_representable():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize_transcript("Hello, $5 café", EN)


# ----------------------------------------------------------------- targets


def test_targets_with_separator():
    with pytest.warns(UnrepresentableCharacterWarning):
        transcript = normalize_transcript("a €, b-c", EN)
    targets, word_index = transcript.targets(EN.index("|"))
    assert "".join(EN[t] for t in targets) == "A|B|C"
    assert word_index == [0, -1, 2, 2, 2]


def test_targets_without_separator():
    transcript = normalize_transcript("hi there", MMS, separator=None, star="*")
    targets, word_index = transcript.targets(None)
    assert targets == list(ids(MMS, "hithere"))
    assert word_index == [0, 0, 1, 1, 1, 1, 1]


def test_records_are_frozen_and_compare_by_value():
    word = TranscriptWord("a", (4,))
    assert word.normalized == ""  # no labels attached
    assert word == TranscriptWord("a", (4,), EN)
    assert Transcript((word,)).targets(1) == ([4], [0])
    with pytest.raises(AttributeError):
        word.text = "b"  # type: ignore[misc]


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_transcript(text):
    with pytest.raises(TranscriptError, match=r"^a\.txt: transcript is empty"):
        normalize_transcript(text, EN, source="a.txt")


def test_nothing_representable():
    with pytest.raises(
        TranscriptError,
        match=r"^b\.lab: no character of the transcript can be "
        r"represented by the model's labels.*'😀'",
    ):
        normalize_transcript("... 😀 —", EN, source="b.lab")
    # stars alone are not an alignable transcript either
    with pytest.raises(TranscriptError, match="no character of the transcript"):
        normalize_transcript("😀 €", MMS, separator=None, star="*")


def test_bad_special_labels():
    with pytest.raises(ModelError, match="separator '#' is not one of the model's labels"):
        normalize_transcript("a", EN, separator="#")
    with pytest.raises(ModelError, match="star label '\\*' is not one of"):
        normalize_transcript("a", EN, star="*")
    with pytest.raises(ModelError, match="blank id 99 is out of range"):
        normalize_transcript("a", EN, blank=99)
    with pytest.raises(ModelError, match="separator label '-' is the blank label"):
        normalize_transcript("a", EN, separator="-")


# ----------------------------------------------------------------- read_transcript


def test_read_transcript_utf8_bom_and_newlines(tmp_path):
    path = tmp_path / "a.lab"
    path.write_bytes("\ufeffHello  there\r\n\n  café\nend ".encode("utf-8"))
    assert read_transcript(path) == "Hello  there café end"
    txt = tmp_path / "b.txt"
    txt.write_text("one\ntwo", encoding="utf-8")
    assert read_transcript(str(txt)) == "one two"


def test_read_transcript_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(
        TranscriptError,
        match=r"latin1\.txt: not valid UTF-8: byte 0xe9 at offset 3.*"
        r"re-save the file as UTF-8",
    ):
        read_transcript(path)


def test_read_transcript_missing(tmp_path):
    with pytest.raises(TranscriptError, match=r"transcript file not found: .*nope\.txt"):
        read_transcript(tmp_path / "nope.txt")
    with pytest.raises(AlignerError, match="is a directory"):
        read_transcript(tmp_path)


# ----------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40), english=st.booleans())
def test_property_ids_valid_and_one_word_per_whitespace_word(text, english):
    labels, kwargs = (EN, {}) if english else (MMS, {"separator": None, "star": "*"})
    assume(text.strip())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnrepresentableCharacterWarning)
        try:
            transcript = normalize_transcript(text, labels, **kwargs)
        except TranscriptError:
            # only allowed when the text has no plain letter at all
            assert not any(c.isascii() and c.isalpha() for c in text)
            return
    # control characters separate words like whitespace (they never reach an output)
    expected = re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).split()
    assert len(transcript.words) == len(expected)
    assert [w.text for w in transcript.words] == expected
    for word in transcript.words:
        assert all(0 < t < len(labels) for t in word.tokens)
    targets, word_index = transcript.targets(labels.index("|") if english else None)
    assert len(targets) == len(word_index)
    assert all(0 < t < len(labels) for t in targets)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$25 billion,", [("$25", "TWENTY|FIVE"), ("billion,", "BILLION|DOLLARS")]),
        ("$1.5 billion", [("$1.5", "ONE|POINT|FIVE"), ("billion", "BILLION|DOLLARS")]),
        ("(£3 Million)", [("(£3", "THREE"), ("Million)", "MILLION|POUNDS")]),
        ("€2 trillion", [("€2", "TWO"), ("trillion", "TRILLION|EUROS")]),
        ("$25 apples", [("$25", "TWENTY|FIVE|DOLLARS"), ("apples", "APPLES")]),
        ("25 billion", [("25", "TWENTY|FIVE"), ("billion", "BILLION")]),
    ],
)
def test_money_with_a_scale_word_is_read_as_people_say_it(text, expected):
    """ "$25 billion" is "twenty five billion dollars", not "twenty five dollars billion"."""
    words = normalize_transcript(text, ENGLISH_LABELS).words
    assert [(word.text, word.normalized) for word in words] == expected
