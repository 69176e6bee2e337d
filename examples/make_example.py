"""Re-create the example recording (deterministic): ``python examples/make_example.py``.

Writes ``example.wav`` (espeak-ng, 16 kHz mono), ``example.txt`` (its
transcript as written) and ``example.reference.TextGrid`` (the synthesizer's
exact word and phone timings, for comparing an alignment against truth).
espeak-ng is given the transcript as the aligner's normalizer reads it
(``render_speech``'s ``spell_out``: "1969" as "nineteen sixty nine", "$25" as
"twenty five dollars"), not its own reading of the digits and symbols, so
the audio says what the transcript means to the aligner. Needs Debian's
``libespeak-ng1``.
"""

from pathlib import Path

import soundfile

from aligner.training.synth.corpus import render_speech
from aligner.writers import write_alignment

TEXT = "In 1969, two astronauts walked on the Moon; the whole trip cost about $25 billion, and nobody forgot it."
HERE = Path(__file__).resolve().parent


def main() -> None:
    speech = render_speech(TEXT, "en-us", rate=165, pitch=45, lead=0.4, trail=0.5, spell_out=True)
    soundfile.write(HERE / "example.wav", speech.audio, speech.sample_rate, subtype="PCM_16")
    (HERE / "example.txt").write_text(TEXT + "\n", encoding="utf-8")
    write_alignment(speech.alignment, HERE / "example.reference.TextGrid")


if __name__ == "__main__":
    main()
