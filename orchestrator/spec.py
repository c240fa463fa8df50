"""The study file: what a study reproduces, how it sweeps, at which scales, how it reports.

    study = load_study("studies/feature_suppression.yaml", scale="smoke", overrides=["train.epochs=1"])

A scale and each ``--set`` are dotted-key assignments. Keys whose first part is a section of
the study file (``sweep``, ``execution``, ``report``, ...) address the study; every other key
addresses the base trial config (``loss.temperature``). ``sweep.grid.<key>``, ``sweep.zip.<key>``,
``sweep.variants.<name>[.<key>]`` and ``search.space.<key>`` replace one axis, one zipped list,
one variant or one searched distribution. Every cell of the sweep is
validated before anything runs, and every problem is one line naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from dashboards.claims import Finding
from dashboards.spec import Reference, ReportSpec
from orchestrator.errors import StudyError, study_error
from orchestrator.overrides import OverrideError, parse_assignment, set_path
from orchestrator.search_space import Search, check_search
from orchestrator.strict import DuplicateKey, UniqueKeyLoader, check_finite, check_no_bool_numbers
from orchestrator.sweep import Point, Sweep
from orchestrator.sweep import SpecModel as _Spec
from workers.config import TrialConfig
from workers.trainer import EPOCH_METRICS, TARGET_METRICS, TRIAL_METRICS

PAPER = "paper"
REQUIRED_SCALES = ("small", "smoke")
METRICS = (*TARGET_METRICS, *EPOCH_METRICS, *TRIAL_METRICS)


class Execution(_Spec):
    """Where trials run. Never part of a trial's identity."""

    cpus_per_trial: float = Field(1, gt=0)
    gpus_per_trial: Annotated[float, Field(ge=0)] | Literal["auto"] = Field(
        "auto", description="auto: 1 if the cluster has GPUs, else 0"
    )
    max_concurrent_trials: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(1, ge=1, description="epochs between a trial's checkpoints (resume)")
    lease_minutes: float = Field(
        10, gt=0, allow_inf_nan=False, description="an open run or claim with no heartbeat for longer is stale"
    )


class StudySpec(_Spec):
    study: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="also the MLflow experiment name")
    reproduces: str
    base: dict[str, Any] = Field(description="one trial's complete config")
    sweep: Sweep = Field(default_factory=Sweep)
    scales: dict[str, dict[str, Any]] = Field(default_factory=dict)
    execution: Execution = Field(default_factory=Execution)
    report: ReportSpec = Field(default_factory=ReportSpec)
    reference: Reference | None = None
    findings: list[Finding] = Field(default_factory=list)
    search: Search | None = Field(None, description="Optuna samples the trials (orchestrator.search_space)")

    @model_validator(mode="after")
    def _has_scales(self) -> StudySpec:
        missing = [name for name in REQUIRED_SCALES if name not in self.scales]
        if missing:
            raise ValueError(f"scales needs {', '.join(missing)} (paper is the base itself)")
        return self


@dataclass(frozen=True)
class Cell:
    """One cell of the sweep: a variant, a point (grid and zip values) and a seed, and the config they resolve to."""

    variant: str
    point: Point
    seed: int
    config: TrialConfig


@dataclass(frozen=True)
class Study:
    """A study file loaded at one scale with its overrides applied and every cell validated."""

    path: Path
    spec: StudySpec
    base: TrialConfig
    cells: tuple[Cell, ...]
    scale: str
    overrides: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.study


def load_study(path: str | Path, scale: str = PAPER, overrides: list[str] | tuple[str, ...] = ()) -> Study:
    """Read, validate, scale and override a study file, or raise one :class:`StudyError`."""
    path = Path(path)
    file = str(path)
    raw = _read(path)
    written = _check(file, raw, where="")
    _check_variant_names(file, written)
    scales = {PAPER: {}, **written.scales}
    if scale not in scales:
        raise StudyError(file, f"unknown scale {scale!r}; allowed: {', '.join(scales)}", key="--scale")
    spec, base = written, TrialConfig.model_validate(written.base)
    if scales[scale]:
        for key, value in scales[scale].items():
            raw = _assign(file, raw, key, value, where=f"scales.{scale}")
        spec, base = _check(file, raw, where=f"scales.{scale}"), None
    if overrides:
        spec, base = _apply_overrides(file, raw, overrides), None
    where = f"scales.{scale}" if scales[scale] or overrides else ""
    _check_report_names(file, spec, where=where)
    if spec.search is not None:  # the trials are sampled as the search goes: no cells to expand
        check_search(file, spec, base or TrialConfig.model_validate(spec.base), _validate_trial, where=where)
    cells = () if spec.search is not None else tuple(_cells(file, spec))
    return Study(path, spec, base or TrialConfig.model_validate(spec.base), cells, scale, tuple(overrides))


def _apply_overrides(file: str, raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> StudySpec:
    """The study after every ``--set``; an error is blamed on the first ``--set`` that brought it.

    The study only has to be valid once all of them are applied: two zipped lists change length
    together (``--set sweep.zip.optim.lr=[..] --set sweep.zip.train.batch_size=[..]``).
    """
    first_errors: list[StudyError] = []
    for text in overrides:
        try:
            key, value = parse_assignment(text)
        except OverrideError as error:
            raise StudyError(file, str(error), where="--set") from None
        raw = _assign(file, raw, key, value, where=f"--set {text}")
        try:
            _check(file, raw, where=f"--set {text}")
        except StudyError as error:
            first_errors.append(error)
    try:
        return _check(file, raw, where=f"--set {overrides[-1]}")
    except StudyError as final:
        same = [e for e in first_errors if (e.key, e.message) == (final.key, final.message)]
        raise (same[0] if same else final) from None


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StudyError(str(path), "no such study file")
    try:
        raw = yaml.load(path.read_text(), Loader=UniqueKeyLoader)  # a SafeLoader
    except DuplicateKey as error:
        raise StudyError(str(path), str(error), key=f"line {error.line}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else ""
        raise StudyError(str(path), f"not valid YAML: {getattr(error, 'problem', error)}", key=line) from None
    if not isinstance(raw, dict):
        raise StudyError(str(path), "a study file is a mapping with study, reproduces, base, sweep, scales, ...")
    return raw


def _check(file: str, raw: dict[str, Any], *, where: str) -> StudySpec:
    """The study and its base trial config, validated; problems are blamed on ``where``."""
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as error:
        raise study_error(file, error, StudySpec, where=where) from None
    check_finite(file, raw, "", where=where)
    check_no_bool_numbers(file, raw, spec.model_dump(), "", where=where)
    if "seed" in spec.base:
        raise StudyError(file, "seeds come from the sweep: set sweep.seeds instead", key="base.seed", where=where)
    _validate_trial(file, spec.base, where=where, prefix="base")
    return spec


def _validate_trial(file: str, raw: dict[str, Any], *, where: str, prefix: str) -> TrialConfig:
    try:
        config = TrialConfig.model_validate(raw)
    except ValidationError as error:
        raise study_error(file, error, TrialConfig, where=where, prefix=prefix) from None
    check_finite(file, raw, prefix, where=where)
    check_no_bool_numbers(file, raw, config.model_dump(), prefix, where=where)
    return config


def _assign(file: str, raw: dict[str, Any], key: str, value: Any, *, where: str) -> dict[str, Any]:
    """Apply one dotted assignment to the raw study (see the module docstring for the routing)."""
    head, _, rest = key.partition(".")
    try:
        if head == "search" and rest.startswith("space."):  # a dotted key names one distribution
            search = dict(raw.get("search") or {})
            return {**raw, "search": {**search, "space": {**(search.get("space") or {}), rest[6:]: value}}}
        if head == "sweep" and rest.startswith(("grid.", "zip.", "variants.")):
            section, _, name = rest.partition(".")
            sweep = dict(raw.get("sweep") or {})
            entries = dict(sweep.get(section) or {})
            if section == "variants" and "." in name:
                name, _, variant_key = name.partition(".")
                if name not in entries:
                    raise OverrideError(f"no variant {name!r}; variants: {', '.join(entries)}")
                entries[name] = {**(entries[name] or {}), variant_key: value}
            else:
                entries[name] = value
            return {**raw, "sweep": {**sweep, section: entries}}
        if head in StudySpec.model_fields:
            return set_path(raw, key, value)
        return set_path(raw, f"base.{key}", value)
    except OverrideError as error:
        raise StudyError(file, str(error), key=key, where=where) from None


def _cells(file: str, spec: StudySpec):
    """Every cell in file order (variant, grid point, zip row, seed), each validated as it will run."""
    for variant, overrides in spec.sweep.variant_overrides().items():
        for point in spec.sweep.points():
            for seed in spec.sweep.seeds:
                raw = spec.base
                for key, value in [*point, *overrides.items(), ("seed", seed)]:
                    raw = set_path(raw, key, value)
                label = ", ".join([f"variant {variant}", *(f"{k}={v!r}" for k, v in point)])
                config = _validate_trial(file, raw, where=f"sweep cell ({label})", prefix="")
                yield Cell(variant, point, seed, config)


def _check_variant_names(file: str, spec: StudySpec) -> None:
    """Findings and reference rows may only name variants the study file defines."""
    variants = spec.sweep.variant_overrides()
    checks = [(i, finding.check) for i, finding in enumerate(spec.findings)]
    named = [(f"findings[{i}].check.{key}", name) for i, check in checks for key, name in check.named_variants()]
    rows = spec.reference.rows if spec.reference else []
    named += [(f"reference.rows[{i}].variant", row.get("variant")) for i, row in enumerate(rows)]
    for key, name in named:
        if name is not None and name not in variants:
            raise StudyError(file, f"no variant {name!r}; variants: {', '.join(variants)}", key=key)


def _check_report_names(file: str, spec: StudySpec, *, where: str) -> None:
    """Tables, plots, references and findings may only name columns and metrics the runs produce."""
    columns = {"variant", "target", "seed", *spec.sweep.axes(), *(spec.search.space if spec.search else ())}
    uses: list[tuple[str, str, str]] = []  # (key in the file, column named, metric it is read with)
    table = spec.report.table
    if table:
        uses += [("report.table.metric", "", table.metric)]
        uses += [("report.table.rows", name, table.metric) for name in table.rows]
        uses += [("report.table.columns", table.columns, table.metric)] if table.columns else []
    for i, plot in enumerate(spec.report.plots):
        keys = [k for k in ("x", "hue", "facet") if getattr(plot, k)]
        uses += [(f"report.plots[{i}].{k}", getattr(plot, k), plot.y) for k in keys]
    for i, finding in enumerate(spec.findings):
        check, key = finding.check, f"findings[{i}].check"
        metrics = {"metric": check.metric} | ({"exceeds": check.exceeds} if check.exceeds else {})
        for name, metric in metrics.items():  # each column the check uses must go with each metric it reads
            uses += [(f"{key}.{name}", "", metric), (f"{key}.along", check.along or "", metric)]
            uses += [(f"{key}.{k}", k, metric) for k in check.selectors()]
            uses += [(f"{key}.cells[{j}]", k, metric) for j, cell in enumerate(check.cells or []) for k in cell]
    if spec.reference:
        reference_keys = {k for row in spec.reference.rows for k in row if k not in ("values", "metric")}
        table_keys = set(table.rows if table else [])
        for name in sorted(reference_keys - table_keys):
            raise StudyError(file, f"{name!r} is not a row key of report.table", key="reference.rows", where=where)
        uses += [("reference.metric", "", spec.reference.metric)]
        uses += [(f"reference.rows[{i}].metric", "", row["metric"])
                 for i, row in enumerate(spec.reference.rows) if "metric" in row]
        if spec.reference.column_key:
            uses += [("reference.column_key", spec.reference.column_key, metric) for metric in spec.reference.metrics()]
    for key, column, metric in uses:
        if metric not in METRICS:
            raise StudyError(file, f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}", key=key, where=where)
        if column and column not in columns:
            allowed = ", ".join(sorted(columns))
            raise StudyError(file, f"{column!r} is not a result column; allowed: {allowed}", key=key, where=where)
        if column == "target" and metric not in TARGET_METRICS:
            message = f"{metric} has no targets; only {', '.join(TARGET_METRICS)} do"
            raise StudyError(file, message, key=key, where=where)
    names = columns | set(spec.sweep.variant_overrides())
    for key, message in spec.report.unknown_names(names, set(METRICS), _targets(spec)):
        raise StudyError(file, message, key=key, where=where)
    for i, finding in enumerate(spec.findings):
        if finding.check.against_paper is not None:
            _check_paper_cells(file, spec, i, where=where)


def _targets(spec: StudySpec) -> set[str]:
    """The targets the base config's dataset can be probed on (labels may name them)."""
    try:
        return set(TrialConfig.model_validate(spec.base).data.targets)
    except ValidationError:
        return set()


def _check_paper_cells(file: str, spec: StudySpec, index: int, *, where: str) -> None:
    """An ``against_paper`` finding needs the paper's numbers of its metric, one for each of its cells."""
    check, key = spec.findings[index].check, f"findings[{index}].check"
    if spec.reference is None or check.metric not in spec.reference.metrics():
        held = f"holds {', '.join(sorted(spec.reference.metrics()))}" if spec.reference else "is missing"
        message = f"against_paper compares {check.metric} with the study's reference, which {held}"
        raise StudyError(file, message, key=f"{key}.against_paper", where=where)
    table_columns = spec.report.table.columns if spec.report.table else None
    for j, cell in enumerate(check.cells or []):
        try:
            spec.reference.paper_value({**check.selectors(), **cell}, table_columns, check.metric)
        except ValueError as error:
            raise StudyError(file, str(error), key=f"{key}.cells[{j}]", where=where) from None
