"""The settings of ``daar report``: one dataclass, light to import (the command builds its flags from it)."""

from __future__ import annotations

from dataclasses import dataclass

from ... import keys
from ...errors import ConfigError
from ...options import Name, OneOf, Settings, option


@dataclass(frozen=True)
class ReportConfig(Settings):
    """Every setting of ``daar report``; each field is also its command-line option (``options``)."""

    out: str = option(check=Name("a directory"), help="directory for report.txt, report.html and the PNG plots")
    recipe: str | None = option(
        None,
        check=Name("a recipe file", nullable=True),
        help="the recipe that made the selection: the report states its selector's rule, and takes from it the scored pool "
        "(stats_export_path), the selection (export_path), the bundle and the score not given here",
    )
    pool: str | None = option(
        None, check=Name("a scored pool file", nullable=True), help="scored pool JSONL (the filter's stats_export_path output)"
    )
    selection: str | None = option(None, check=Name("a selection file", nullable=True), help="selected JSONL written by dj-process")
    id_key: str | None = option(
        None,
        check=Name("a field name", nullable=True),
        help="field identifying rows, to mark the selected ones in the pool (default: whole-row match)",
    )
    score: str | None = option(
        None,
        check=OneOf(tuple(keys.SCORES), nullable=True),
        help=f"the score the selector ranked by (default: the recipe's selector's, else {keys.DEFAULT_SCORE})",
    )
    bundle: str | None = option(
        None,
        check=Name("a bundle directory", nullable=True),
        help="the bundle that scored the pool: adds its training facts to report.html",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.recipe is None and (self.pool is None or self.selection is None):
            raise ConfigError("give --pool and --selection, or --recipe (the recipe that made the selection)", option="pool")
