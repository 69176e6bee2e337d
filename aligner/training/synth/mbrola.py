"""MBROLA diphone voices (Debian ``mbrola`` + ``mbrola-us1``/``us2``/``us3``,
in the ``non-free`` component) driven by espeak-ng, with exact phone times.

MBROLA concatenates diphones cut from recordings of a human speaker, so its
voices carry real speakers' spectra (us1 is a woman, us2 and us3 men) while
their timing is fully known: espeak-ng (the system's ``espeak-ng`` program,
``-v mb-usN --pho``) turns the text into MBROLA's phone file (one phone per
line: SAMPA name, duration in ms, pitch points), and ``mbrola`` renders
exactly those durations, each phone starting where the previous one ends
(the wave is the sum of the durations to within a few ms). The phone
boundary of every diphone was marked in the database, so the times are the
acoustic boundaries, not estimates.

Conventions shared with :mod:`aligner.training.phone`: a stop's silent
closure after speech belongs to the stop (MBROLA's stop durations include
it); a stop after a pause starts at its burst (the closure is given to the
silence before it), found as the first sound of the stop's interval.

The databases' boundary marks come a little ahead of the sound:
:data:`LABEL_DELAY_MS` moves every boundary later by a per-voice constant,
measured as the median offset of the shipped phone model's phone starts
against the marks on 16 held-out sentences (us1 +11 ms, us2 +11 ms, us3
+33 ms; the same model is within 1 ms of espeak-ng's and flite's own
boundaries and of human word starts on average).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from .espeak import SynthesisError

__all__ = ["LABEL_DELAY_MS", "MBROLA_TO_ARPABET", "MBROLA_VOICES", "MbrolaSynthesis", "mbrola_available", "synthesize"]

#: Voices this module drives (American English).
MBROLA_VOICES = ("us1", "us2", "us3")
_DATABASE_DIRS = ("/usr/share/mbrola", "/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/mb")

#: MBROLA's American English SAMPA (as espeak-ng writes it for mb-us1/2/3)
#: -> ARPAbet; ``_`` is silence. The flap is a T, as espeak-ng's ``t#`` is
#: in :mod:`aligner.phones`.
MBROLA_TO_ARPABET = {
    "p": "P",
    "p_h": "P",
    "b": "B",
    "t": "T",
    "t_h": "T",
    "d": "D",
    "k": "K",
    "k_h": "K",
    "g": "G",
    "4": "T",
    "f": "F",
    "v": "V",
    "T": "TH",
    "D": "DH",
    "s": "S",
    "z": "Z",
    "S": "SH",
    "Z": "ZH",
    "h": "HH",
    "tS": "CH",
    "dZ": "JH",
    "m": "M",
    "n": "N",
    "N": "NG",
    "m=": "M",
    "n=": "N",
    "l": "L",
    "l=": "L",
    "r": "R",
    "w": "W",
    "j": "Y",
    "i": "IY",
    "I": "IH",
    "E": "EH",
    "{": "AE",
    "A": "AA",
    "O": "AO",
    "O2": "AO",
    "U": "UH",
    "u": "UW",
    "V": "AH",
    "@": "AH",
    "r=": "ER",
    "3": "ER",
    "EI": "EY",
    "AI": "AY",
    "OI": "OY",
    "aU": "AW",
    "@U": "OW",
    "oU": "OW",
}
#: Milliseconds by which each voice's phone boundaries are moved later.
LABEL_DELAY_MS = {"us1": 10, "us2": 10, "us3": 30}
_STOPS = frozenset({"P", "B", "T", "D", "K", "G", "CH", "JH"})
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class MbrolaSynthesis:
    """16 kHz int16 audio and its ARPAbet phones ``(label, start, end)`` in samples."""

    samples: np.ndarray
    sample_rate: int
    phones: tuple[tuple[str, int, int], ...]


def _database(voice: str) -> str | None:
    for folder in _DATABASE_DIRS:
        path = os.path.join(folder, voice, voice)
        if os.path.isfile(path):
            return path
    return None


def mbrola_available(voice: str = "us1") -> bool:
    """Whether ``espeak-ng``, ``mbrola`` and the voice's database are installed."""
    return bool(shutil.which("espeak-ng") and shutil.which("mbrola") and _database(voice))


def _phone_file(text: str, voice: str) -> list[tuple[str, int, str]]:
    """espeak-ng's MBROLA phone file for ``text``: ``(name, ms, pitch points)``."""
    run = subprocess.run(
        ["espeak-ng", "-v", f"mb-{voice}", "-q", "--pho", "--stdin"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if run.returncode != 0:
        raise SynthesisError(f"espeak-ng --pho failed for mb-{voice}: {run.stderr.strip()[:200]}")
    lines = []
    for line in run.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and not line.startswith(";"):
            lines.append((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""))
    if not any(name != "_" for name, _, _ in lines):
        raise SynthesisError(f"espeak-ng gave no phones for {text!r}")
    return lines


def _burst_start(audio: np.ndarray, start: int, end: int, threshold: float) -> int:
    """First sample of ``[start, end)`` whose 2 ms neighbourhood is louder than ``threshold``."""
    window = 32
    segment = np.abs(audio[start:end].astype(np.float32))
    if len(segment) < window:
        return start
    level = np.convolve(segment, np.ones(window, np.float32) / window, mode="valid")
    loud = np.flatnonzero(level > threshold)
    return start + int(loud[0]) if len(loud) else start


def synthesize(
    text: str, voice: str = "us1", *, time_ratio: float = 1.0, pitch_ratio: float = 1.0, lead_ms: int = 60
) -> MbrolaSynthesis:
    """Speak ``text`` with an MBROLA voice; phones timed to the sample.

    Args:
        text: plain words (numbers already spelled out).
        voice: one of :data:`MBROLA_VOICES`.
        time_ratio: every phone's duration is multiplied by this.
        pitch_ratio: every pitch point is multiplied by this.
        lead_ms: silence spoken before the first phone (its diphone onset).

    Raises:
        SynthesisError: the voice is not installed, espeak-ng or mbrola
            fail, or espeak-ng writes a phone this module cannot map.
    """
    if voice not in MBROLA_VOICES:
        raise SynthesisError(f"unknown MBROLA voice {voice!r} (choose from {', '.join(MBROLA_VOICES)})")
    database = _database(voice)
    if database is None or not shutil.which("mbrola"):
        raise SynthesisError(f"MBROLA voice {voice} is not installed (Debian: apt-get install mbrola mbrola-{voice})")
    lines = [("_", lead_ms, "")] + _phone_file(text, voice)
    durations = [max(1, round(ms * time_ratio)) for _, ms, _ in lines]
    for name, _, _ in lines:
        if name != "_" and name not in MBROLA_TO_ARPABET:
            raise SynthesisError(f"unmapped MBROLA phone {name!r} in {text!r}")
    pho = "".join(f"{name} {ms} {pitch}\n" for (name, _, pitch), ms in zip(lines, durations))
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.raw")
        run = subprocess.run(
            ["mbrola", "-e", "-f", f"{pitch_ratio:.4f}", database, "-", out],
            input=pho,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if run.returncode != 0 or not os.path.isfile(out):
            raise SynthesisError(f"mbrola failed: {run.stderr.strip()[:200]}")
        audio = np.fromfile(out, dtype="<i2")
    if len(audio) == 0:
        raise SynthesisError(f"mbrola gave no audio for {text!r}")
    phones: list[tuple[str, int, int]] = []
    position, previous = LABEL_DELAY_MS[voice] * SAMPLE_RATE // 1000, "_"
    threshold = 0.02 * float(np.abs(audio.astype(np.float32)).max())
    for (name, _, _), ms in zip(lines, durations):
        start, end = position, position + ms * SAMPLE_RATE // 1000
        position = end
        start, end = min(start, len(audio)), min(end, len(audio))
        if name == "_" or end <= start:
            previous = name
            continue
        label = MBROLA_TO_ARPABET[name]
        if label in _STOPS and previous == "_":
            start = min(_burst_start(audio, start, end, threshold), end - 1)
        phones.append((label, start, end))
        previous = name
    return MbrolaSynthesis(audio, SAMPLE_RATE, tuple(phones))
