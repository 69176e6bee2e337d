"""``aligner models``: the known model specs."""

from __future__ import annotations

from .common import command, write_stdout


@command()
def models() -> None:
    """List known model specs and whether each is available locally."""
    from ..models.registry import list_models  # no torch import: the listing is instant

    rows = [(m.name, "yes" if m.available else "no", m.kind, m.location) for m in list_models()]
    header = ("NAME", "LOCAL", "KIND", "LOCATION")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(3)]
    write_stdout(
        "".join(
            "  ".join(str(v).ljust(w) for v, w in zip(row[:3], widths)) + "  " + str(row[3]) + "\n"
            for row in [header] + rows
        )
    )
