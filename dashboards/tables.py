"""The paper's table from our runs: mean ± std and n over seeds, the paper's value and the difference."""

from __future__ import annotations

import math

import pandas as pd

from dashboards.spec import Reference, TableSpec

# A cell's status (over its seeds): every run finished; some did (the rest not run yet);
# none did and one is running, failed or was interrupted; nothing run yet.
CELL_STATUSES = ("finished", "partial", "running", "failed", "interrupted", "missing")
_RUN_STATUS = {"RUNNING": "running", "SCHEDULED": "running", "FAILED": "failed", "KILLED": "interrupted"}


def paper_table(
    results: pd.DataFrame, spec: TableSpec, reference: Reference | None, statuses: pd.Series | None = None
) -> pd.DataFrame:
    """Tidy table, one row per cell: the row and column keys, ``ours`` (mean), ``std``, ``runs`` (n),
    ``of`` (runs the cell needs), ``running``, ``failed``, ``interrupted``, ``paper``, ``diff``
    (ours − paper) and ``status`` (one of ``CELL_STATUSES``).

    ``results`` holds one ``value`` per run (NaN for runs not finished); ``runs`` counts finished
    ones. ``statuses`` (MLflow run status by trial hash, the latest run of each) tells running,
    failed and interrupted runs from those not started.
    """
    keys = spec.rows + ([spec.columns] if spec.columns else [])
    state = results["trial_hash"].map(statuses if statuses is not None else {}).map(_RUN_STATUS)
    unfinished = results["value"].isna()
    flagged = results.assign(**{name: unfinished & (state == name) for name in ("running", "failed", "interrupted")})
    table = (
        flagged.groupby(keys, sort=False, dropna=False)
        .agg(ours=("value", "mean"), std=("value", "std"), runs=("value", "count"), of=("value", "size"),
             running=("running", "sum"), failed=("failed", "sum"), interrupted=("interrupted", "sum"))
        .reset_index()
    )
    table["paper"] = float("nan")
    paper = paper_values(reference, spec.metric, spec.columns, spec.columns)
    if paper is not None:
        on = [key for key in keys if key in paper.columns]
        table = table.drop(columns="paper").merge(paper[[*on, "paper"]], on=on, how="left")
    table["diff"] = table["ours"] - table["paper"]
    table["status"] = [_status(row) for row in table.itertuples()]
    return table


def _status(row) -> str:
    if row.runs == row.of:
        return "finished"
    if row.runs:
        return "partial"
    for status in ("running", "failed", "interrupted"):
        if getattr(row, status):
            return status
    return "missing"


def paper_values(
    reference: Reference | None, metric: str, column: str | None, table_columns: str | None
) -> pd.DataFrame | None:
    """The paper's values of ``metric`` with its columns named ``column``, or None if it has none.

    The reference's columns are values of its ``column_key`` (default: the table's columns),
    so they only line up with a table or plot whose ``column`` is that key.
    """
    if reference is None or not reference.records(metric):
        return None
    key = reference.column_key or table_columns
    if column != key:
        return None
    paper = pd.DataFrame(reference.records(metric))
    paper = paper.rename(columns={"column": column}) if column else paper.drop(columns="column")
    paper["paper"] = pd.to_numeric(paper["paper"], errors="coerce")  # null → NaN
    return paper


def wide(table: pd.DataFrame, spec: TableSpec, values: list) -> pd.DataFrame:
    """``values`` (one per row of ``table``) laid out rows × columns as in the paper.

    Rows nest in the order of ``spec.rows``, each key's values in the order they first appear.
    """
    cells = table.assign(cell=values)
    if not spec.columns:
        return cells.set_index(spec.rows)[["cell"]].rename(columns={"cell": spec.metric})
    ranks = {key: {value: rank for rank, value in enumerate(dict.fromkeys(cells[key]))} for key in spec.rows}
    order = cells[spec.rows].drop_duplicates().sort_values(spec.rows, key=lambda column: column.map(ranks[column.name]))
    rows = pd.MultiIndex.from_frame(order) if len(spec.rows) > 1 else pd.Index(order[spec.rows[0]])
    spread = cells.set_index([*spec.rows, spec.columns])["cell"].unstack(spec.columns)
    return spread.reindex(index=rows, columns=list(dict.fromkeys(cells[spec.columns])))


def display_table(table: pd.DataFrame, spec: TableSpec, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Strings for people: ``ours ± std n=… (paper, ours − paper)`` per cell, rows × columns as in
    the paper; ``labels`` rename the row keys and their values (variants, targets)."""
    shown = wide(table, spec, [cell_text(row, spec.decimals) for row in table.itertuples()]).fillna("")
    if labels:
        name = lambda value: labels.get(str(value), value)  # noqa: E731
        shown = shown.rename(index=name).rename_axis([name(n) for n in shown.index.names])
    return shown


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of a display frame (index columns first)."""
    names = [str(n) for n in frame.index.names]
    header = names + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for index, row in frame.iterrows():
        labels = list(index) if isinstance(index, tuple) else [index]
        lines.append("| " + " | ".join(str(v) for v in [*labels, *row.tolist()]) + " |")
    return "\n".join(lines)


def ours_text(row, decimals: int) -> str:
    """Our side of a cell: ``40.5 ± 0.7 n=2``, with what is not finished (``1 running``), or the status."""
    if row.runs == 0:
        return {"missing": "not run"}.get(row.status, row.status)
    ours = f"{row.ours:.{decimals}f}"
    if row.runs > 1 and not math.isnan(row.std):
        ours += f" ± {row.std:.{decimals}f}"
    ours += f" n={row.runs}"
    pending = [f"{getattr(row, s)} {s}" for s in ("running", "failed", "interrupted") if getattr(row, s)]
    left = row.of - row.runs - sum(getattr(row, s) for s in ("running", "failed", "interrupted"))
    pending += [f"{left} not run"] if left else []
    return ours + (f" ({', '.join(pending)})" if pending else "")


def paper_text(row, decimals: int) -> str:
    """The paper's side: ``(41.0, -0.5)``: its value and ours − paper; ``(—)`` where it gives none."""
    if math.isnan(row.paper):
        return "(—)"
    if math.isnan(row.ours):
        return f"({row.paper:.{decimals}f})"
    return f"({row.paper:.{decimals}f}, {row.diff:+.{decimals}f})"


def cell_text(row, decimals: int) -> str:
    return f"{ours_text(row, decimals)} {paper_text(row, decimals)}"
