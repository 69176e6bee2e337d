"""Listen to and correct an alignment: one self-contained HTML page.

:func:`view_page` builds the page of ``aligner view`` (and of
:func:`show` / ``Alignment._repr_html_`` in Jupyter): waveform and
spectrogram, one row per tier, playback, click-to-play, zoom and scroll,
boundary dragging with undo, and a "Download TextGrid" button. Everything
is embedded: the audio (compressed), a waveform envelope and spectrogram
images precomputed here at a few resolutions (the page draws only the
visible window of the right resolution, so an hour-long recording stays
responsive), the script and the styles (``viz/view_assets/``: hand-written
vanilla JavaScript, no dependency). Nothing is fetched from a network.

Every labelled interval is an element with ``data-tier``, ``data-index``,
``data-start``, ``data-end`` and ``data-label`` attributes (and
``data-score`` when known); a reference alignment's tiers are named
``reference:<tier>``. Interval ``data-index`` counts all intervals of the
tier, empty ones included, as in the downloaded TextGrid.

Tiers: a TextGrid's interval tiers as they are (point tiers are not
shown); an :class:`~aligner.records.Alignment` or our JSON gives the tiers
``aligner align`` writes (:func:`aligner.writers.to_textgrid`: ``words``,
``chars``/``phones``, and ``unaligned``/``skipped`` when present) with the
words' and labels' scores.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from aligner.errors import AlignerError, AudioError, TextGridError
from aligner.records import Alignment, CharSpan, WordSpan

__all__ = [
    "AUDIO_FORMATS",
    "LOW_SCORE",
    "Tier",
    "View",
    "ViewInfo",
    "encode_audio",
    "envelope_levels",
    "page_tiers",
    "read_alignment",
    "show",
    "spectrogram_levels",
    "view_page",
    "write_view",
]

#: Words (and labels) scoring below this are highlighted (as ``confidence.tsv``'s low words).
LOW_SCORE = 0.2
#: Embedded audio formats: name -> (soundfile format, subtype, MIME type).
AUDIO_FORMATS: dict[str, tuple[str, str, str]] = {
    "vorbis": ("OGG", "VORBIS", "audio/ogg; codecs=vorbis"),
    "opus": ("OGG", "OPUS", "audio/ogg; codecs=opus"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
}
#: Vorbis quality (soundfile's compression_level): about 32 kbit/s for 16 kHz speech.
VORBIS_LEVEL = 0.75
#: Lossy formats are resampled to at most this rate (speech needs no more).
LOSSY_MAX_RATE = 32000
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)

#: Waveform envelope: finest bin (s), at most this many bins, 4x coarser per level.
ENVELOPE_BIN = 0.002
ENVELOPE_MAX_BINS = 1_500_000
#: Spectrogram: finest column (s), at most this many columns, tile width, look (as viz.plot_alignment).
SPECTROGRAM_HOP = 0.005
SPECTROGRAM_MAX_COLUMNS = 240_000
SPECTROGRAM_TILE = 1024
SPECTROGRAM_FMAX = 5000.0
SPECTROGRAM_WINDOW = 0.008
SPECTROGRAM_RANGE_DB = 50.0
_COARSEST = 1500  # levels stop once this many bins/columns cover the recording
#: The page first shows the whole recording up to this length, else its beginning.
INITIAL_SPAN = 20.0

_ASSETS = "view_assets"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TOLERANCE = 1e-9


# ----------------------------------------------------------------------- tiers


@dataclass(frozen=True)
class Tier:
    """One interval tier as the page holds it.

    Attributes:
        name: tier name.
        bounds: ``n + 1`` increasing times: interval ``i`` is
            ``[bounds[i], bounds[i + 1]]``.
        labels: ``n`` labels, ``""`` for an empty interval.
        scores: ``n`` scores (None where unknown).
    """

    name: str
    bounds: tuple[float, ...]
    labels: tuple[str, ...]
    scores: tuple[float | None, ...]

    @property
    def labelled(self) -> list[int]:
        """Indices of the intervals with a label."""
        return [i for i, label in enumerate(self.labels) if label]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bounds": list(self.bounds),
            "labels": list(self.labels),
            "scores": list(self.scores) if any(s is not None for s in self.scores) else None,
        }


def _clean(text: Any) -> str:
    return _CONTROL.sub("", str(text)).strip()


def _score(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return round(value, 4) if math.isfinite(value) else None


def _tier_from_items(
    name: str,
    items: Sequence[tuple[float, float, str]],
    xmin: float,
    xmax: float,
    scores: Sequence[float | None] | None,
    source: str,
) -> Tier:
    """A :class:`Tier` from labelled intervals, gaps filled with empty intervals."""
    bounds, labels = [float(xmin)], []
    tier_scores: list[float | None] = []
    for k, (start, end, label) in enumerate(items):
        start, end = float(start), float(end)
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise TextGridError(f"{source}: tier {name!r} has an interval with bad times ({start}, {end})")
        if start < bounds[-1] - _TOLERANCE:
            raise TextGridError(
                f"{source}: tier {name!r}: interval {label!r} at {start:g} s overlaps the "
                f"previous one (ending at {bounds[-1]:g} s)"
            )
        if end - start <= _TOLERANCE and not label:
            continue
        if start > bounds[-1] + _TOLERANCE:  # a gap: an empty interval
            labels.append("")
            tier_scores.append(None)
            bounds.append(start)
        labels.append(label)
        tier_scores.append(None if scores is None else scores[k])
        bounds.append(max(end, bounds[-1]))
    if float(xmax) > bounds[-1] + _TOLERANCE:
        labels.append("")
        tier_scores.append(None)
        bounds.append(float(xmax))
    if not labels:
        labels, tier_scores, bounds = [""], [None], [float(xmin), max(float(xmax), float(xmin) + 1e-3)]
    return Tier(name, tuple(bounds), tuple(labels), tuple(tier_scores))


def _alignment_tiers(alignment: Alignment) -> list[Tier]:
    """The tiers ``aligner align`` writes for ``alignment``, with scores."""
    from aligner.writers import to_textgrid

    grid = to_textgrid(alignment)
    tiers = []
    for tier in grid.tiers:
        items = [(iv.minTime, iv.maxTime, _clean(iv.mark or "")) for iv in tier.intervals]
        source: Sequence[Any] | None = {
            "words": alignment.words,
            "chars": alignment.chars,
            "phones": alignment.chars,
        }.get(tier.name)
        scores: list[float | None] = [None] * len(items)
        if source is not None:  # the labelled intervals are the spans, in order
            spans = iter(source)
            for k, (_, _, label) in enumerate(items):
                if not label:
                    continue
                for span in spans:
                    if _clean(getattr(span, "text", None) or getattr(span, "label", "")) == label:
                        scores[k] = _score(span.score) if getattr(span, "aligned", True) else 0.0
                        break
        tiers.append(_tier_from_items(tier.name, items, grid.minTime, grid.maxTime, scores, "alignment"))
    return tiers


def _textgrid_tiers(path: Path) -> tuple[list[Tier], list[str]]:
    """The interval tiers of a TextGrid, and the names of its point tiers."""
    from aligner.readers import read_tiers

    tiers, points = [], []
    for tier in read_tiers(path):
        if not tier.is_interval:
            points.append(tier.name)
            continue
        items = [(start, end, _clean(label)) for start, end, label in tier.items]
        tiers.append(_tier_from_items(tier.name, items, tier.xmin, tier.xmax, None, str(path)))
    if not tiers:
        raise TextGridError(f"{path}: the TextGrid has no interval tier to show")
    return tiers, points


def _number(value: Any, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AlignerError(f"{path}: not an alignment JSON file ({what} is {value!r}, not a number of seconds)")
    return float(value)


def read_alignment(path: str | os.PathLike[str]) -> Alignment:
    """Read our JSON (:func:`aligner.writers.to_json`) back into an
    :class:`~aligner.records.Alignment`; a TextGrid goes through
    :func:`aligner.readers.read_textgrid`.

    Raises:
        AlignerError: the file is missing, unreadable or not an alignment
            (:class:`~aligner.errors.TextGridError` for a TextGrid).
    """
    path = Path(path)
    if not _is_json(path):
        from aligner.readers import read_textgrid

        return read_textgrid(path)
    record = _load_json(path)
    labels_key = "phones" if any("phones" in w for w in record["words"] if isinstance(w, dict)) else "chars"
    words = []
    for k, item in enumerate(record["words"]):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise AlignerError(f'{path}: not an alignment JSON file (word {k + 1} has no "text")')
        chars = []
        for label in item.get(labels_key) or ():
            if not isinstance(label, dict) or not isinstance(label.get("label"), str):
                raise AlignerError(f'{path}: not an alignment JSON file (a label of word {k + 1} has no "label")')
            chars.append(
                CharSpan(
                    label["label"],
                    _number(label.get("start"), "a label start", path),
                    _number(label.get("end"), "a label end", path),
                    _score(label.get("score")) or math.nan,
                )
            )
        score = _score(item.get("score"))
        words.append(
            WordSpan(
                item["text"],
                str(item.get("normalized") or ""),
                _number(item.get("start"), f"the start of word {k + 1}", path),
                _number(item.get("end"), f"the end of word {k + 1}", path),
                math.nan if score is None else score,
                tuple(chars),
                bool(item.get("aligned", True)),
            )
        )
    duration = _number(record.get("duration"), '"duration"', path)
    if duration <= 0:
        raise AlignerError(f"{path}: the alignment's duration is {duration} s; it must be positive")
    skipped = []
    for item in record.get("skipped") or ():
        if not isinstance(item, list) or len(item) != 2:
            raise AlignerError(f'{path}: not an alignment JSON file ("skipped" holds {item!r}, not [start, end])')
        skipped.append((_number(item[0], "a skipped start", path), _number(item[1], "a skipped end", path)))
    return Alignment(
        tuple(words),
        duration,
        phonetic=labels_key == "phones",
        audio=record.get("audio"),
        model=record.get("model"),
        skipped=tuple(skipped),
        suspect=tuple(str(s) for s in record.get("suspect") or ()),
    )


def _is_json(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return True
    if path.suffix.lower() == ".textgrid" or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
    except OSError:
        return False


def _load_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise AlignerError(f"{path}: alignment file not found")
    if path.is_dir():
        raise AlignerError(f"{path}: is a folder, not an alignment file")
    try:
        record = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise AlignerError(f"{path}: cannot read the alignment ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise AlignerError(f"{path}: not an alignment JSON file (not UTF-8 text)") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise AlignerError(
            f"{path}: not valid JSON ({getattr(error, 'msg', 'nested too deeply')}, "
            f"line {getattr(error, 'lineno', '?')})"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("words"), list):
        raise AlignerError(
            f'{path}: not an alignment JSON file (no "words" list; expected the JSON of `aligner align -o x.json`)'
        )
    return record


def _pick(tiers: list[Tier], names: Sequence[str] | None, source: str, points: Sequence[str] = ()) -> list[Tier]:
    if names is None:
        return tiers
    picked = []
    for name in names:
        found = next((t for t in tiers if t.name == name), None)
        if found is None:
            matches = [t for t in tiers if t.name.casefold() == name.casefold()]
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            if name in points:
                raise TextGridError(f"{source}: tier {name!r} is a point tier; only interval tiers can be shown")
            present = ", ".join(repr(t.name) for t in tiers)
            raise TextGridError(f"{source}: no tier named {name!r} (--tiers); tiers present: {present}")
        if found not in picked:
            picked.append(found)
    if not picked:
        raise TextGridError(f"{source}: --tiers names no tier")
    return picked


def page_tiers(
    alignment: Alignment | str | os.PathLike[str], tiers: Sequence[str] | None = None
) -> tuple[list[Tier], list[str]]:
    """The tiers the page shows for ``alignment`` (an ``Alignment``, a
    TextGrid or our JSON), restricted to and ordered by ``tiers`` when
    given, and warnings (point tiers left out).

    Raises:
        AlignerError: unreadable alignment, or a tier of ``tiers`` is absent.
    """
    if isinstance(alignment, Alignment):
        return _pick(_alignment_tiers(alignment), tiers, "alignment"), []
    path = Path(alignment)
    if _is_json(path):
        return _pick(_alignment_tiers(read_alignment(path)), tiers, str(path)), []
    found, points = _textgrid_tiers(path)
    warnings = [f"{path}: point tier(s) not shown: {', '.join(map(repr, points))}"] if points else []
    return _pick(found, tiers, str(path), points), warnings


def _parse_tiers(tiers: str | Sequence[str] | None) -> list[str] | None:
    if tiers is None:
        return None
    names = tiers.split(",") if isinstance(tiers, str) else list(tiers)
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise AlignerError("--tiers names no tier (give names separated by commas, e.g. words,phones)")
    return names


def _comparison(main: list[Tier], reference: list[Tier]) -> dict[str, Any]:
    """Which word tier of each side is compared, and the matched interval pairs."""
    from viz.compare import boundary_differences

    def words_tier(tiers: list[Tier], prefer: str | None) -> Tier:
        for name in (prefer, "words"):
            for tier in tiers:
                if name is not None and tier.name.casefold() == name.casefold():
                    return tier
        return tiers[0]

    def as_alignment(tier: Tier) -> tuple[Alignment, list[int]]:
        index = tier.labelled
        words = tuple(
            WordSpan(tier.labels[i], tier.labels[i], tier.bounds[i], tier.bounds[i + 1], math.nan) for i in index
        )
        return Alignment(words, tier.bounds[-1]), index

    ours = words_tier(main, None)
    theirs = words_tier(reference, ours.name)
    a, a_index = as_alignment(ours)
    r, r_index = as_alignment(theirs)
    result = boundary_differences(a, r)
    pairs = [[a_index[i], r_index[j]] for i, j in zip(result.alignment_index, result.reference_index)]
    return {"tier": ours.name, "reference_tier": theirs.name, "pairs": pairs, "summary": result.summary()}


# ----------------------------------------------------------------------- audio


def _mono(audio: Any, source: str) -> np.ndarray:
    if hasattr(audio, "detach"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 2:  # (samples, channels) or (channels, samples): the longer axis holds samples
        data = data.mean(axis=1 if data.shape[0] >= data.shape[1] else 0, dtype=np.float32)
    if data.ndim != 1:
        raise AudioError(f"{source}: audio must be 1-D or 2-D samples, got shape {np.shape(audio)}")
    if data.size == 0:
        raise AudioError(f"{source}: audio contains no samples (zero length)")
    if not np.isfinite(data).all():
        raise AudioError(f"{source}: audio contains NaN or infinite samples")
    return data


def _load_audio(audio: Any, sample_rate: int | None) -> tuple[np.ndarray, int, str]:
    """``(mono samples, rate, name)`` of a path, ``(samples, rate)`` or samples + ``sample_rate``."""
    if isinstance(audio, (str, os.PathLike)):
        from aligner.audio import read_mono

        data, rate = read_mono(audio)
        return _mono(data, str(audio)), int(rate), Path(audio).name
    if isinstance(audio, tuple) and len(audio) == 2 and sample_rate is None:
        audio, sample_rate = audio
    if sample_rate is None:
        raise AudioError("audio given as samples needs its sample_rate (or pass (samples, rate))")
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float, np.integer, np.floating))
        or not 1000 <= sample_rate <= 768_000
    ):
        raise AudioError(f"sample rate {sample_rate!r} is not usable (1,000 to 768,000 Hz)")
    return _mono(audio, "<audio>"), int(sample_rate), "audio"


def _resample(data: np.ndarray, rate: int, target: int) -> np.ndarray:
    if target == rate:
        return data
    import soxr

    return soxr.resample(data, rate, target).astype(np.float32)


def encode_audio(data: np.ndarray, rate: int, audio_format: str = "vorbis") -> tuple[bytes, str, int]:
    """``(file bytes, MIME type, rate)`` of mono ``data`` in ``audio_format``.

    Raises:
        AlignerError: an unknown format, or libsndfile cannot write it.
    """
    if audio_format not in AUDIO_FORMATS:
        raise AlignerError(f"unknown audio format {audio_format!r}; use one of {', '.join(AUDIO_FORMATS)}")
    import soundfile

    fmt, subtype, mime = AUDIO_FORMATS[audio_format]
    target = rate
    options: dict[str, Any] = {}
    if audio_format == "opus":
        target = next(r for r in _OPUS_RATES if r >= min(rate, LOSSY_MAX_RATE))
    elif audio_format == "vorbis":
        target = rate if rate <= LOSSY_MAX_RATE else 24000
        options["compression_level"] = VORBIS_LEVEL
    samples = np.clip(_resample(data, rate, target), -1.0, 1.0)
    buffer = io.BytesIO()
    try:  # in blocks: libsndfile's Vorbis encoder crashes on one call of minutes of audio
        with soundfile.SoundFile(buffer, "w", target, 1, format=fmt, subtype=subtype, **options) as handle:
            for start in range(0, samples.size, 1 << 16):
                handle.write(samples[start : start + (1 << 16)])
    except Exception as error:  # noqa: BLE001 - libsndfile without this codec
        raise AlignerError(
            f"cannot encode the audio as {audio_format} ({error}); try another --audio-format"
        ) from error
    return buffer.getvalue(), mime, target


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_levels(data: np.ndarray, rate: int) -> dict[str, Any]:
    """Min/max waveform envelope at a few resolutions (int8, ``bin`` seconds per bin)."""
    peak = float(np.abs(data).max()) or 1.0
    step = max(1, int(round(ENVELOPE_BIN * rate)), math.ceil(data.size / ENVELOPE_MAX_BINS))
    count = math.ceil(data.size / step)
    padded = np.zeros(count * step, np.float32)
    padded[: data.size] = data
    blocks = padded.reshape(count, step)
    low = np.round(blocks.min(axis=1) / peak * 127).astype(np.int8)
    high = np.round(blocks.max(axis=1) / peak * 127).astype(np.int8)
    levels, seconds = [], step / rate
    while True:
        pairs = np.empty(2 * low.size, np.int8)
        pairs[0::2], pairs[1::2] = low, high
        levels.append({"bin": seconds, "n": int(low.size), "data": _b64(pairs.tobytes())})
        if low.size <= _COARSEST:
            break
        n = math.ceil(low.size / 4)
        low = np.pad(low, (0, 4 * n - low.size), mode="edge").reshape(n, 4).min(axis=1)
        high = np.pad(high, (0, 4 * n - high.size), mode="edge").reshape(n, 4).max(axis=1)
        seconds *= 4
    return {"peak": peak, "levels": levels}


def _spectrogram_db(data: np.ndarray, rate: int, hop: int) -> np.ndarray:
    """Power in dB, ``(columns, rows)``: column ``c`` is centred on ``(c + 0.5) * hop``
    samples, rows go up to :data:`SPECTROGRAM_FMAX`."""
    window = max(8, int(round(SPECTROGRAM_WINDOW * rate)))
    n_fft = max(256, 1 << (2 * window - 1).bit_length())
    rows = int(min(SPECTROGRAM_FMAX, rate / 2) / (rate / n_fft)) + 1
    emphasised = np.append(data[:1], data[1:] - 0.97 * data[:-1]).astype(np.float32)
    columns = math.ceil(data.size / hop)
    pad = window
    signal = np.zeros(pad + columns * hop + 2 * window, np.float32)
    signal[pad : pad + data.size] = emphasised
    taper = np.hanning(window).astype(np.float32)
    first = pad + hop // 2 - window // 2  # start sample of column 0's frame
    out = np.empty((columns, rows), np.float32)
    block = 8192
    for c0 in range(0, columns, block):
        c1 = min(columns, c0 + block)
        starts = first + np.arange(c0, c1) * hop
        frames = signal[starts[:, None] + np.arange(window)[None, :]] * taper
        power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)[:, :rows]) ** 2
        out[c0:c1] = 10.0 * np.log10(power + 1e-12)
    return out


def _jpeg_tiles(image: np.ndarray) -> list[str]:
    from PIL import Image

    tiles = []
    for c0 in range(0, image.shape[1], SPECTROGRAM_TILE):
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image[:, c0 : c0 + SPECTROGRAM_TILE]), "L").save(
            buffer, "JPEG", quality=50, optimize=True
        )
        tiles.append("data:image/jpeg;base64," + _b64(buffer.getvalue()))
    return tiles


def spectrogram_levels(data: np.ndarray, rate: int) -> dict[str, Any]:
    """Grayscale spectrogram images (Praat-like: dark = loud, 0 to 5 kHz, 50 dB)
    at a few resolutions, cut into JPEG tiles of :data:`SPECTROGRAM_TILE` columns."""
    hop = max(1, int(round(SPECTROGRAM_HOP * rate)), math.ceil(data.size / SPECTROGRAM_MAX_COLUMNS))
    db = _spectrogram_db(data, rate, hop)
    top = float(db.max()) if db.size else 0.0
    shade = np.clip((db - (top - SPECTROGRAM_RANGE_DB)) / SPECTROGRAM_RANGE_DB, 0.0, 1.0)
    image = np.round(255.0 * (1.0 - shade.T[::-1])).astype(np.uint8)  # rows: high frequency first
    levels, seconds = [], hop / rate
    while True:
        levels.append({"col": seconds, "n": int(image.shape[1]), "tile": SPECTROGRAM_TILE, "tiles": _jpeg_tiles(image)})
        if image.shape[1] <= _COARSEST:
            break
        n = math.ceil(image.shape[1] / 4)
        image = np.pad(image, ((0, 0), (0, 4 * n - image.shape[1])), mode="edge")
        image = image.reshape(image.shape[0], n, 4).mean(axis=2).round().astype(np.uint8)
        seconds *= 4
    return {"fmax": min(SPECTROGRAM_FMAX, rate / 2), "rows": int(image.shape[0]), "levels": levels}


# ------------------------------------------------------------------------ page


@dataclass(frozen=True)
class ViewInfo:
    """What :func:`write_view` wrote: the page and a summary for the command line."""

    path: Path | None
    bytes: int
    tiers: tuple[str, ...]
    intervals: int
    audio_bytes: int
    comparison: str | None
    warnings: tuple[str, ...]


def _asset(name: str) -> str:
    return (resources.files("viz") / _ASSETS / name).read_text(encoding="utf-8")


def _attr(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _tier_row(tier: Tier, key: str, threshold: float, reference: bool) -> str:
    """One tier's row: an element per labelled interval, placed by the script."""
    css, shown_name = (" tv-ref", f"reference:{tier.name}") if reference else ("", tier.name)
    caption = f"ref: {tier.name}" if reference else tier.name
    parts = [
        f'<div class="tv-row tv-tier{css}" data-row="{key}"><div class="tv-name" title="{_attr(shown_name)}">'
        f'{html.escape(caption)}</div><div class="tv-track"><div class="tv-more"></div>'
    ]
    for i in tier.labelled:
        label, score = tier.labels[i], tier.scores[i]
        extra, title = "", label
        if score is not None:
            low = " tv-low" if score < threshold else ""
            extra = f' data-score="{score:g}" style="--s:{min(max(score, 0.0), 1.0):.3f}"'
            title = f"{label} — score {score:.2f}" + (" (low)" if low else "")
            css_class = "tv-iv tv-scored" + low
        else:
            css_class = "tv-iv"
        parts.append(
            f'<div class="{css_class}" data-tier="{_attr(shown_name)}" data-index="{i}" '
            f'data-start="{tier.bounds[i]!r}" data-end="{tier.bounds[i + 1]!r}" '
            f'data-label="{_attr(label)}"{extra} title="{_attr(title)}">{html.escape(label)}</div>'
        )
    parts.append("</div></div>")
    return "".join(parts)


def _summary(tiers: list[Tier], threshold: float) -> str:
    words = next((t for t in tiers if t.name.casefold() == "words"), tiers[0])
    index = words.labelled
    scores = [s for s in (words.scores[i] for i in index) if s is not None]
    text = f"{len(index)} {'words' if words.name.casefold() == 'words' else 'intervals'}"
    if scores:
        low = sum(1 for s in scores if s < threshold)
        text += f", mean score {sum(scores) / len(scores):.2f}, {low} below {threshold:g}"
    return text


def _payload_json(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # nothing in it may close the <script> element or start a comment
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _audio_parts(
    audio: Any, sample_rate: int | None, audio_format: str, label_end: float, source: str
) -> tuple[dict[str, Any], str, int]:
    """The payload's ``audio``, ``envelope`` and ``spectrogram`` entries, the
    audio's name and its encoded size in bytes."""
    data, rate, name = _load_audio(audio, sample_rate)
    seconds = data.size / rate
    if label_end > seconds + max(0.5, 0.01 * seconds):
        raise AlignerError(
            f"{source}: its intervals go on until {label_end:.2f} s, after the end of the audio "
            f"{name} ({seconds:.2f} s); is it the alignment of another recording?"
        )
    encoded, mime, _ = encode_audio(data, rate, audio_format)
    parts = {
        "audio": {"mime": mime, "format": audio_format, "data": _b64(encoded), "duration": seconds},
        "envelope": envelope_levels(data, rate),
        "spectrogram": spectrogram_levels(data, rate),
    }
    return parts, name, len(encoded)


def _names(alignment: Alignment | str | os.PathLike[str]) -> tuple[str, str]:
    """How the page names the alignment, and the stem of the downloaded TextGrid."""
    if isinstance(alignment, Alignment):
        name = f"alignment by {alignment.model}" if alignment.model else "alignment"
        return name, Path(alignment.audio).stem if alignment.audio else "alignment"
    name = Path(alignment).name
    return name, re.sub(r"\.(textgrid|json)$", "", name, flags=re.IGNORECASE) or "alignment"


def _legend(tiers: list[Tier], threshold: float) -> str:
    """The colour key, only when some interval on the page has a score (a
    TextGrid carries none: its words are drawn uncoloured)."""
    if not any(tier.scores[i] is not None for tier in tiers for i in tier.labelled):
        return ""
    return (
        'Colours: word score from red (0) to green (1); <span class="tv-lowkey">outlined</span>: '
        f"below {threshold:g} (hover for the score)."
    )


def _html(payload: dict[str, Any], main: list[Tier], reference: list[Tier], title: str, threshold: float) -> str:
    """The page: the template of ``view_assets`` filled in."""
    rows = [_tier_row(t, f"m{k}", threshold, False) for k, t in enumerate(main)]
    head = _summary(main, threshold)
    if payload["reference"] is not None:
        rows.append(
            '<div class="tv-row tv-diff"><div class="tv-name" title="boundary differences from the '
            'reference (ms)">Δ ms</div><div class="tv-track"><canvas></canvas></div></div>'
        )
        rows += [_tier_row(t, f"r{k}", threshold, True) for k, t in enumerate(reference)]
        head += (
            f" · vs {html.escape(payload['reference']['name'])}: "
            f'<span class="tv-cmp">{html.escape(payload["reference"]["summary"])}</span>'
        )
    track = '<div class="tv-track"><canvas></canvas></div></div>'
    spectrogram = payload["spectrogram"]
    fields = {
        "ID": f"tv-{secrets.token_hex(4)}",
        "TITLE": html.escape(title),
        "HEAD": head,
        "ROWS": "\n".join(rows),
        "AUDIO": "" if payload["audio"] is None else '<audio class="tv-audio" preload="auto"></audio>',
        "WAVE": ""
        if payload["envelope"] is None
        else '<div class="tv-row tv-wave"><div class="tv-name">waveform</div>' + track,
        "SPEC": ""
        if spectrogram is None
        else '<div class="tv-row tv-spec"><div class="tv-name">spectrogram<br>'
        f"<small>0–{spectrogram['fmax'] / 1000:g} kHz</small></div>" + track,
        "LEGEND": _legend(main + reference, threshold),
        "STYLE": _asset("view.css"),
        "SCRIPT": _asset("view.js"),
        "DATA": _payload_json(payload),
    }
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: fields[m.group(1)], _asset("view.html"))


def _build(
    alignment: Alignment | str | os.PathLike[str],
    audio: Any = None,
    *,
    sample_rate: int | None = None,
    reference: Alignment | str | os.PathLike[str] | None = None,
    tiers: str | Sequence[str] | None = None,
    title: str | None = None,
    threshold: float = LOW_SCORE,
    audio_format: str = "vorbis",
) -> tuple[str, ViewInfo]:
    """The page of :func:`view_page` and what it holds."""
    names = _parse_tiers(tiers)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise AlignerError(f"threshold must be a number from 0 to 1, got {threshold!r}")
    if audio_format not in AUDIO_FORMATS:
        raise AlignerError(f"unknown audio format {audio_format!r}; use one of {', '.join(AUDIO_FORMATS)}")
    main, warnings = page_tiers(alignment, names)
    ref_tiers, comparison = [], None
    if reference is not None:
        ref_all, ref_warnings = page_tiers(reference)
        warnings += ref_warnings
        wanted = {t.name.casefold() for t in main}
        ref_tiers = [t for t in ref_all if t.name.casefold() in wanted] or ref_all[:1]
        comparison = {
            "name": _names(reference)[0],
            "tiers": [t.to_json() for t in ref_tiers],
            **_comparison(main, ref_tiers),
        }
    shown = main + ref_tiers
    start, end = min(t.bounds[0] for t in shown), max(t.bounds[-1] for t in shown)
    alignment_name, stem = _names(alignment)
    parts: dict[str, Any] = {"audio": None, "envelope": None, "spectrogram": None}
    audio_name, audio_bytes = None, 0
    if audio is not None:
        label_end = max((t.bounds[i + 1] for t in shown for i in t.labelled), default=start)
        source = "the alignment" if isinstance(alignment, Alignment) else str(alignment)
        parts, audio_name, audio_bytes = _audio_parts(audio, sample_rate, audio_format, label_end, source)
        start, end = min(start, 0.0), max(end, parts["audio"]["duration"])
    if title is None:
        title = f"{audio_name} — {alignment_name}" if audio_name else alignment_name
    payload = {
        "version": 1,
        "start": start,
        "end": end,
        "initial": end - start if end - start <= 30 else INITIAL_SPAN,
        "threshold": threshold,
        "stem": stem,
        "tiers": [t.to_json() for t in main],
        "reference": comparison,
        **parts,
    }
    page = _html(payload, main, ref_tiers, title, threshold)
    info = ViewInfo(
        None,
        len(page.encode("utf-8")),
        tuple(t.name for t in main),
        sum(len(t.labelled) for t in main),
        audio_bytes,
        None if comparison is None else comparison["summary"],
        tuple(warnings),
    )
    return page, info


def view_page(
    alignment: Alignment | str | os.PathLike[str],
    audio: Any = None,
    *,
    sample_rate: int | None = None,
    reference: Alignment | str | os.PathLike[str] | None = None,
    tiers: str | Sequence[str] | None = None,
    title: str | None = None,
    threshold: float = LOW_SCORE,
    audio_format: str = "vorbis",
) -> str:
    """The self-contained HTML page of ``alignment``.

    Args:
        alignment: an ``Alignment``, or the path of a TextGrid or of our JSON.
        audio: None (tiers only, no playback), an audio file path,
            ``(samples, rate)``, or samples with ``sample_rate``.
        reference: another alignment (same kinds) shown below, with the
            word boundary differences (:func:`viz.compare.boundary_differences`).
        tiers: names of the tiers to show, in order (a list or ``"a,b"``;
            default: all interval tiers).
        title: the page title (default: the file names).
        threshold: words scoring below it are highlighted.
        audio_format: ``"vorbis"`` (Ogg Vorbis, the default: small, quick to
            encode), ``"opus"`` (smaller, slow to encode), ``"flac"``
            (lossless, larger, plays in every browser).

    Raises:
        AlignerError: unreadable inputs, an unknown tier, audio much shorter
            than the alignment.
    """
    return _build(
        alignment,
        audio,
        sample_rate=sample_rate,
        reference=reference,
        tiers=tiers,
        title=title,
        threshold=threshold,
        audio_format=audio_format,
    )[0]


def write_view(
    audio: Any,
    alignment: Alignment | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    reference: Alignment | str | os.PathLike[str] | None = None,
    tiers: str | Sequence[str] | None = None,
    threshold: float = LOW_SCORE,
    audio_format: str = "vorbis",
    sample_rate: int | None = None,
) -> ViewInfo:
    """Write the page of :func:`view_page` to ``output`` atomically; an
    output that is one of the input files is refused.

    Raises:
        OutputError: ``output`` is an input, or cannot be written.
        AlignerError: as :func:`view_page`.
    """
    from aligner.atomic import atomic_write_text, check_not_input

    inputs = [x for x in (audio, alignment, reference) if isinstance(x, (str, os.PathLike))]
    check_not_input(output, inputs)
    page, info = _build(
        alignment,
        audio,
        sample_rate=sample_rate,
        reference=reference,
        tiers=tiers,
        threshold=threshold,
        audio_format=audio_format,
    )
    path = atomic_write_text(output, page)
    return ViewInfo(path, info.bytes, info.tiers, info.intervals, info.audio_bytes, info.comparison, info.warnings)


# -------------------------------------------------------------------- Jupyter


class View:
    """The page of an alignment for Jupyter: displays inline (an ``<iframe
    srcdoc>``, so several views on one page never clash); :attr:`html` is the
    whole page and :meth:`save` writes it.

    Built by :func:`show`; arguments as :func:`view_page`.
    """

    def __init__(self, alignment: Alignment | str | os.PathLike[str], audio: Any = None, **options: Any) -> None:
        self.html, self.info = _build(alignment, audio, **options)
        rows = len(self.info.tiers) * (2 if self.info.comparison is not None else 1)
        # bar, title, axis, overview and help; tiers; the difference row; waveform and spectrogram
        self.height = 260 + 29 * rows + (27 if self.info.comparison else 0) + (206 if audio is not None else 0)

    def _repr_html_(self) -> str:
        return (
            f'<iframe class="aligner-view" srcdoc="{html.escape(self.html, quote=True)}" '
            f'style="width:100%;height:{self.height}px;border:1px solid #ddd" '
            'allow="autoplay"></iframe>'
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the page to ``path`` atomically."""
        from aligner.atomic import atomic_write_text

        return atomic_write_text(path, self.html)


def show(alignment: Alignment | str | os.PathLike[str], audio: Any = None, **options: Any) -> View:
    """The interactive view of ``alignment`` with ``audio`` (a path,
    ``(samples, rate)``, or samples with ``sample_rate=``), shown inline
    when it is the value of a notebook cell (``display(viz.show(...))``
    elsewhere). Options as :func:`view_page` (``reference``, ``tiers``, ...)."""
    return View(alignment, audio, **options)
