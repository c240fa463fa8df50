"""What a study file asks of its report: the table, the curves, the paper's numbers (its claims: dashboards.claims)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ABSENT = object()


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSpec(Spec):
    """``rows`` and ``columns`` name result columns: ``variant``, ``target``, ``seed`` or a grid key."""

    rows: list[str] = Field(min_length=1)
    columns: str | None = None
    metric: str
    decimals: int = Field(1, ge=0)


class PlotSpec(Spec):
    """A metric ``y`` along a swept key ``x``, or against another measured metric ``x_metric``.

    With ``x_metric`` (e.g. ``{x_metric: i_nce, y: linear_acc, hue: variant}``) each trial is one
    point, labelled with its value of ``annotate`` (default: the one swept key besides variant
    and seed, if there is exactly one).
    """

    x: str | None = Field(None, description="a swept key (a result column)")
    x_metric: str | None = Field(None, description="a measured metric, instead of x")
    y: str = Field(description="a metric, e.g. linear_acc")
    hue: str | None = None
    facet: str | None = None
    annotate: str | None = Field(None, description="x_metric: the column each point is labelled with")
    title: str | None = None
    xlabel: str | None = Field(None, description="default: the label of x")
    ylabel: str | None = Field(None, description="default: the label of the metric")

    @model_validator(mode="after")
    def _one_x(self) -> PlotSpec:
        if (self.x is None) == (self.x_metric is None):
            raise ValueError("give exactly one of x (a swept key) and x_metric (a measured metric)")
        if self.annotate is not None and self.x_metric is None:
            raise ValueError("annotate labels the points of an x_metric plot: give x_metric")
        return self

    @property
    def horizontal(self) -> str:
        """What the x axis shows: the swept key or the metric."""
        return self.x or self.x_metric


class HistogramSpec(Spec):
    """Each test image's cosine similarity s = f(x)ᵀf(x') to its positive and to its 10 most similar
    negatives (Wang & Liu 2021's "pos" / "ntop10" distributions), read from each trial's ``similarities.npz``.

    One panel per value of ``by`` (e.g. ``loss.temperature``), one row of panels per value of
    ``rows`` (e.g. ``variant``); the finished runs of a panel (its seeds) are pooled. ``where``
    keeps only the cells with those values (``{data.second_size: 80}``); values outside ``range``
    count in its end bins::

        histograms: {by: loss.temperature, rows: variant, bins: 40}
    """

    by: str = Field(description="a result column: one panel per value")
    rows: str | None = Field(None, description="a result column: one row of panels per value")
    where: dict[str, Any] = Field(default_factory=dict, description="result column → the value kept")
    bins: int = Field(40, ge=2, le=500)
    range: tuple[float, float] = (-1.0, 1.0)
    title: str | None = None

    @model_validator(mode="after")
    def _sensible(self) -> HistogramSpec:
        if self.range[0] >= self.range[1]:
            raise ValueError("range is [low, high] with low < high")
        if self.rows == self.by:
            raise ValueError("by and rows name the same column")
        return self


class ReportSpec(Spec):
    """The table, the plots, and how they name things.

    ``labels`` gives a name for people to a variant, a result column (grid key, ``target``), a
    target or a metric, used in table headers, legends, axis and facet titles::

        labels: {simclr_t02: "SimCLR τ=0.2", data.second_size: "size of the 2nd digit (px)"}

    ``chance`` is a metric's chance level, drawn as a dotted grey line on its plots: a number,
    or one per target (``{linear_acc: 10}``, ``{linear_acc: {first_digit: 10, image: 10}}``).
    ``histograms`` draws the saved similarity distributions (:class:`HistogramSpec`).
    """

    table: TableSpec | None = None
    plots: list[PlotSpec] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    chance: dict[str, float | dict[str, float]] = Field(default_factory=dict)
    histograms: HistogramSpec | None = None

    def label(self, name: Any) -> str:
        """What people read for ``name``: its label, else the name itself."""
        return self.labels.get(str(name), str(name))

    def chance_level(self, metric: str, target: Any = None) -> float | None:
        """The chance level of ``metric`` (for ``target``, when given per target), or None."""
        level = self.chance.get(metric)
        if isinstance(level, dict):
            level = level.get(str(target)) if target is not None else None
        return None if level is None else float(level)

    def unknown_names(
        self, names: set[str], metrics: set[str], targets: set[str] = frozenset()
    ) -> list[tuple[str, str]]:
        """``(key, message)`` for each label, chance level or plot metric naming nothing the study has.

        ``names``: variants and result columns; ``metrics``: what the runs log; ``targets``: the
        evaluated targets. For the orchestrator's check of the report's names before anything runs.
        """
        known = set(names) | set(metrics) | set(targets)
        problems = [
            (f"report.labels.{name}", f"{name!r} names no variant, result column, target or metric")
            for name in self.labels if name not in known
        ]
        problems += [(f"report.chance.{m}", f"unknown metric {m!r}") for m in self.chance if m not in metrics]
        for metric, level in self.chance.items():
            if isinstance(level, dict):
                problems += [(f"report.chance.{metric}.{t}", f"no target {t!r}") for t in level if t not in targets]
        problems += [
            (f"report.plots[{i}].x_metric", f"unknown metric {plot.x_metric!r}")
            for i, plot in enumerate(self.plots) if plot.x_metric and plot.x_metric not in metrics
        ]
        problems += [
            (f"report.plots[{i}].annotate", f"{plot.annotate!r} is not a result column")
            for i, plot in enumerate(self.plots) if plot.annotate and plot.annotate not in names
        ]
        if self.histograms:
            used = [("by", self.histograms.by), ("rows", self.histograms.rows)]
            used += [(f"where.{key}", key) for key in self.histograms.where]
            problems += [(f"report.histograms.{key}", f"{name!r} is not a result column")
                         for key, name in used if name is not None and name not in names]
        return problems


class Reference(Spec):
    """The paper's numbers, laid out like the table: one entry per table row, one value per column.

    A value the paper does not give (or that could not be transcribed) is ``null``; it is shown
    as missing, never filled in. The numbers are of ``metric``; a row that gives ``metric:``
    holds another one (Table 1's uniformity and tolerance beside its accuracy), which the plots
    and ``against_paper`` checks of that metric read.
    """

    source: str
    note: str | None = None
    metric: str
    column_key: str | None = Field(None, description="what the columns are values of; default: the table's columns")
    columns: list[Any] = Field(default_factory=lambda: [None])
    rows: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rows_match_columns(self) -> Reference:
        for index, row in enumerate(self.rows):
            values = row.get("values")
            if not isinstance(values, list) or len(values) != len(self.columns):
                raise ValueError(
                    f"rows[{index}] needs 'values': a list of {len(self.columns)} numbers or nulls, one per column"
                )
        return self

    def metrics(self) -> set[str]:
        """Every metric the reference holds numbers of."""
        return {self.row_metric(row) for row in self.rows} or {self.metric}

    def row_metric(self, row: dict[str, Any]) -> str:
        return row.get("metric", self.metric)

    def records(self, metric: str | None = None) -> list[dict[str, Any]]:
        """One dict per cell of ``metric`` (default: the reference's): the row's labels, ``column`` and ``paper``."""
        metric = metric or self.metric
        return [
            {**{k: v for k, v in row.items() if k not in ("values", "metric")}, "column": column, "paper": value}
            for row in self.rows if self.row_metric(row) == metric
            for column, value in zip(self.columns, row["values"], strict=True)
        ]

    def paper_value(self, cell: dict[str, Any], column_key: str | None, metric: str | None = None) -> float | None:
        """The paper's value of ``metric`` at ``cell`` (row labels and ``column_key``); ``None`` where it gives none.

        ``column_key`` is what the columns are values of when the reference does not say
        (the table's columns). Raises ValueError unless exactly one of the paper's cells matches.
        """
        key = self.column_key or column_key
        matches = [
            record for record in self.records(metric)
            if all(k in ("column", "paper") or cell.get(k, _ABSENT) == v for k, v in record.items())
            and (key is None or cell.get(key, _ABSENT) == record["column"])
        ]
        if len(matches) != 1:
            shown = ", ".join(f"{k}={v}" for k, v in cell.items())
            labels = {k for row in self.rows for k in row if k not in ("values", "metric")}
            labels = sorted(labels | ({key} if key else set()))
            how = "no" if not matches else f"{len(matches)} of the"
            raise ValueError(f"{how} paper's cells match {shown}; a cell names {', '.join(labels)}")
        value = matches[0]["paper"]
        return None if value is None else float(value)
