"""The settings of ``daar report``: one dataclass, light to import (the command builds its flags from it)."""

from __future__ import annotations

from dataclasses import dataclass

from ... import keys
from ...options import Name, Settings, option


@dataclass(frozen=True)
class ReportConfig(Settings):
    """Every setting of ``daar report``; each field is also its command-line option (``options``)."""

    pool: str = option(check=Name("a scored pool file"), help="scored pool JSONL (the filter's stats_export_path output)")
    selection: str = option(check=Name("a selection file"), help="selected JSONL written by dj-process")
    out: str = option(check=Name("a directory"), help="directory for report.txt, report.html and the PNG plots")
    id_key: str | None = option(
        None,
        check=Name("a field name", nullable=True),
        help="field identifying rows, to mark the selected ones in the pool (default: whole-row match)",
    )
    score: str = option(keys.DEFAULT_SCORE, check=keys.SCORE_SOURCE, help="the score the selector ranked by (the ops' default)")
    bundle: str | None = option(
        None,
        check=Name("a bundle directory", nullable=True),
        help="the bundle that scored the pool: adds its training facts to report.html",
    )
