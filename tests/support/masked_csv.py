"""Reading a CSV table of an export as a person reads it: the masked cells show the marker.

An export's CSV writes a masked cell empty with ``<column>__masked = true`` (as Parquet). Tests that ask
"which cells are masked" read it through :func:`marked`, which puts :data:`MASK_MARKER` in every flagged
cell and drops the flag columns, after checking that every flagged cell is empty.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from oncopipe.delivery.disclosure import MASK_MARKER, MASK_SUFFIX


def marked(table: pd.DataFrame | Path) -> pd.DataFrame:
    """A CSV frame (or file) with :data:`MASK_MARKER` in each cell its flag column marks, flags dropped."""
    frame = pd.read_csv(table, dtype=str, keep_default_na=False) if isinstance(table, Path) else table.copy()
    for flag in [c for c in frame.columns if str(c).endswith(MASK_SUFFIX)]:
        column = flag[: -len(MASK_SUFFIX)]
        assert set(frame[flag]) <= {"true", "false"}, (flag, set(frame[flag]))
        hidden = frame[flag] == "true"
        assert (frame.loc[hidden, column] == "").all(), f"a masked {column} cell is not empty"
        frame[column] = frame[column].where(~hidden, MASK_MARKER)
        frame = frame.drop(columns=flag)
    return frame
