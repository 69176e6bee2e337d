"""The confidence rows of a corpus run, kept where a killed run cannot lose them.

``confidence.tsv`` is written when a run ends; a run killed before that
(``SIGKILL``, a lost machine) would lose the rows of the files it aligned,
and the next run skips those files, their outputs being there. So every
aligned file's row is first appended to a journal in the output folder
(:data:`JOURNAL_FILE`, one complete line per write), *then* its outputs are
written: a file whose outputs exist always has its row. The next run's
reports take the rows of ``confidence.tsv``, then the journal's, then its
own, and remove the journal once ``confidence.tsv`` holds them. A file with
outputs and no row anywhere (outputs of an older version's killed run, or a
journal removed by hand) gets its row rebuilt from its JSON output when
there is one (:func:`row_from_outputs`).
"""

from __future__ import annotations

import csv
import io
import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .align import FileResult

__all__ = ["JOURNAL_FILE", "Journal", "confidence_row", "row_from_outputs"]

#: The journal of confidence rows, in the output folder (hidden: never a corpus file).
JOURNAL_FILE = ".confidence.journal.tsv"


def confidence_row(result: FileResult) -> list[str]:
    """The ``confidence.tsv`` row of an aligned file."""
    return [
        result.key,
        f"{result.score:.4f}",
        str(result.words),
        str(result.low_words),
        str(result.unaligned_words),
        f"{result.skipped_seconds:.2f}",
        " ".join(result.worst_words),
        "; ".join(" ".join(reason.split()) for reason in result.suspect),
        "" if math.isnan(result.first_pass_score) else f"{result.first_pass_score:.4f}",
        result.model,
    ]


class Journal:
    """Append-only confidence rows of one output folder (thread-safe)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / JOURNAL_FILE
        self._lock = threading.Lock()

    def append(self, row: list[str]) -> None:
        """Add one row: a single write of one complete line, flushed (a
        process killed now leaves it whole or absent)."""
        buffer = io.StringIO()
        csv.writer(buffer, delimiter="\t", lineterminator="\n").writerow(row)
        with self._lock, self.path.open("a", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()

    def rows(self, width: int) -> dict[str, list[str]]:
        """The journal's rows by file (the last one of a file wins); a line
        cut short by a kill, or of another width, is left out."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return {}
        complete = text[: text.rfind("\n") + 1]  # a last line without its newline was cut short
        try:
            rows = list(csv.reader(io.StringIO(complete, newline=""), delimiter="\t"))
        except csv.Error:
            return {}
        return {row[0]: row for row in rows if len(row) == width}

    def remove(self) -> None:
        """Remove the journal (its rows are in ``confidence.tsv`` now)."""
        self.path.unlink(missing_ok=True)


def row_from_outputs(key: str, json_path: Path | None, model_column: str = "") -> list[str] | None:
    """The confidence row of ``key`` rebuilt from its JSON output (the
    scores, flags and skipped audio it holds), or None without one or when
    it cannot be read. Without ``--adapt`` the row is the one the run that
    wrote it made; the first-pass score of an adapted run is not in the
    JSON and stays empty."""
    import json

    from ..records import Alignment, WordSpan
    from .align import _confidence

    if json_path is None or not json_path.is_file():
        return None
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        words = tuple(
            WordSpan(
                str(word["text"]),
                str(word.get("normalized") or ""),
                float(word["start"]),
                float(word["end"]),
                math.nan if word["score"] is None else float(word["score"]),
                (),
                bool(word["aligned"]),
            )
            for word in data["words"]
        )
        alignment = Alignment(
            words,
            float(data["duration"]),
            skipped=tuple((float(start), float(end)) for start, end in data.get("skipped", ())),
            suspect=tuple(str(reason) for reason in data.get("suspect", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    result = _confidence(key, alignment.duration, alignment)
    row = confidence_row(result)
    row[-1] = model_column
    return row
