"""Small readers shared by the generator's integration tests (not a test module)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def read_source(out: Path, source: str, date: str) -> pd.DataFrame:
    """Every part file of one extraction of a source, concatenated in file order."""
    parts = sorted((Path(out) / source / f"extraction={date}").glob("part-*.parquet"))
    assert parts, f"no part file for {source} at {date} in {out}"
    return pa.concat_tables([pq.read_table(p) for p in parts]).to_pandas()


def read_truth(out: Path, date: str) -> dict:
    return json.loads((Path(out) / "_truth" / f"extraction={date}" / "truth.json").read_text())
