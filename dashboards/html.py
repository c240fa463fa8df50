"""HTML pages: one per study report (findings first, then the table and plots), and an index of them all.

Pages are self-contained: the PNGs are embedded as base64, the style is inline, nothing is
fetched. Each of our table cells links to its run's page in the MLflow UI.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from dashboards.tables import paper_text, wide

if TYPE_CHECKING:
    from dashboards.report import Report

DEFAULT_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves a local store

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.reproduces { font-size: 1.1em; } .note { color: #666; font-size: 0.9em; }
.description pre, .description p { margin: 0.4em 0; } .description { color: #444; }
ul.findings { list-style: none; padding: 0; } ul.findings li { margin: 0.5em 0; }
.verdict { display: inline-block; min-width: 9em; padding: 0.1em 0.5em; border-radius: 0.3em;
  font-weight: bold; color: white; text-align: center; }
.reproduced .verdict { background: #2e7d32; } .not-reproduced .verdict { background: #c62828; }
.not-enough-runs .verdict { background: #9e9e9e; }
.detail { color: #555; font-size: 0.9em; margin-left: 10em; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; }
td.cell { text-align: right; white-space: nowrap; } .n, .paper, .seeds { color: #666; font-size: 0.85em; }
td.missing { color: #999; background: #fafafa; } td.running { background: #e3f2fd; }
td.failed, td.interrupted { background: #ffebee; } td.partial { background: #fffde7; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
"""

VERDICT_CLASS = {"reproduced": "reproduced", "not reproduced": "not-reproduced", "not enough runs": "not-enough-runs"}


def ui_base(tracking_uri: str | None) -> tuple[str, bool]:
    """The MLflow UI serving ``tracking_uri`` and whether it is a guess (a local store: ``mlflow ui``'s default)."""
    if tracking_uri and tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/"), False
    return DEFAULT_UI, True


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def report_page(report: Report) -> str:
    """The study's page: what it reproduces, the verdicts, the table, the plots."""
    spec = report.spec
    body = [f"<h1>{escape(report.study)} @ {escape(report.scale)}</h1>",
            f"<p class=\"reproduces\"><b>Reproduces:</b> {escape(report.reproduces)}</p>"]
    if report.description:
        body.append(f"<div class=\"description\">{_description(report.description)}</div>")
    counts = report.counts
    if counts:
        body.append(f"<p class=\"note\">{counts['cells']} cells, {counts['trials']} distinct trials: "
                    f"{counts.get('finished', 0)} finished, {counts.get('running', 0)} running, "
                    f"{counts.get('failed', 0)} failed.</p>")
    if report.verdicts:
        reproduced = sum(v.status == "reproduced" for v in report.verdicts)
        items = "".join(
            f"<li class=\"{VERDICT_CLASS.get(v.status, 'not-reproduced')}\"><span class=\"verdict\">"
            f"{escape(v.status)}</span> {escape(v.claim)}<div class=\"detail\">{escape(v.detail)}</div></li>"
            for v in report.verdicts
        )
        body.append(f"<h2>Findings: {reproduced} of {len(report.verdicts)} reproduced</h2>"
                    f"<ul class=\"findings\">{items}</ul>")
    if report.table is not None and spec.table is not None:
        body += ["<h2>Table</h2>", _table(report), f"<p class=\"note\">{escape(report.caption)}</p>"]
        where = "the MLflow UI at " + escape(report.ui_base)
        if report.ui_guessed:
            where += (" (the tracking store is local, so this assumes <code>mlflow ui</code> on its default "
                      "address; start it in the folder holding the store)")
        body.append(f"<p class=\"note\">Our values link to their runs in {where}.</p>")
    if report.plots:
        body.append("<h2>Plots</h2>")
        body += [_figure(path) for path in report.plots]
    return _page(f"{report.study} @ {report.scale}", "\n".join(body))


def _table(report: Report) -> str:
    spec, table = report.spec, report.table
    decimals = spec.table.decimals
    cells = [_cell_html(row, links, decimals) for row, links in zip(table.itertuples(), report.links or
                                                                      [[]] * len(table), strict=True)]
    shown = wide(table, spec.table, cells)
    names = [spec.label(name) for name in spec.table.rows]
    head = ""
    if spec.table.columns:
        head = (f"<tr><th colspan=\"{len(names)}\"></th><th colspan=\"{len(shown.columns)}\">"
                f"{escape(spec.label(spec.table.columns))}</th></tr>")
    head += "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names)
    head += "".join(f"<th>{escape(str(c))}</th>" for c in shown.columns) + "</tr>"
    rows = []
    for index, row in shown.iterrows():
        labels = list(index) if isinstance(index, tuple) else [index]
        rows.append("<tr>" + "".join(f"<th>{escape(spec.label(v))}</th>" for v in labels)
                    + "".join(v if isinstance(v, str) else "<td class=\"missing\"></td>" for v in row.tolist())
                    + "</tr>")
    return f"<table class=\"paper-table\"><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _cell_html(row, links: list[tuple[str, str]], decimals: int) -> str:
    if row.runs:
        ours = f"{row.ours:.{decimals}f}"
        if row.runs > 1 and not math.isnan(row.std):
            ours += f" ± {row.std:.{decimals}f}"
    else:
        ours = {"missing": "not run"}.get(row.status, row.status)
    if len(links) == 1:
        ours = f"<a href=\"{escape(links[0][1])}\">{escape(ours)}</a>"
        seeds = ""
    else:
        ours = escape(ours)
        seeds = " ".join(f"<a href=\"{escape(url)}\">{escape(label or 'run')}</a>" for label, url in links)
        seeds = f" <span class=\"seeds\">seeds {seeds}</span>" if seeds else ""
    n = f" <span class=\"n\">n={row.runs}/{row.of}</span>" if row.runs else ""
    paper = f"<br><span class=\"paper\">paper {escape(paper_text(row, decimals))}</span>"
    return f"<td class=\"cell {row.status}\" title=\"{row.status}\">{ours}{n}{seeds}{paper}</td>"


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(path.stem)}\">"
            f"<figcaption class=\"note\">{escape(path.name)}</figcaption></figure>")


def _description(text: str) -> str:
    """Paragraphs; indented lines (commands) kept as they are."""
    parts = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("  ") for line in lines):
            parts.append(f"<pre>{escape(chr(10).join(line.strip() for line in lines))}</pre>")
        else:
            parts.append(f"<p>{escape(' '.join(line.strip() for line in lines))}</p>")
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_index(root: Path) -> Path:
    """``root/index.html``: every report under ``root`` (``<study>/<scale>/summary.json``), linked."""
    rows = []
    for summary in sorted(root.glob("*/*/summary.json")):
        try:
            record = json.loads(summary.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        link = f"{summary.parent.parent.name}/{summary.parent.name}/index.html"
        found, reproduced = record.get("findings", 0), record.get("reproduced", 0)
        rows.append(
            f"<tr><td><a href=\"{escape(link)}\">{escape(record.get('study', ''))}</a></td>"
            f"<td>{escape(record.get('scale', ''))}</td><td>{escape(record.get('reproduces', ''))}</td>"
            f"<td>{record.get('trials', 0)}</td><td>{record.get('finished', 0)}</td>"
            f"<td>{record.get('running', 0)}</td><td>{record.get('failed', 0)}</td>"
            f"<td>{reproduced} of {found}</td></tr>"
        )
    head = ("<tr><th>study</th><th>scale</th><th>reproduces</th><th>trials</th><th>finished</th>"
            "<th>running</th><th>failed</th><th>findings reproduced</th></tr>")
    table = f"<table class=\"studies\"><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    note = "<p class=\"note\">No reports yet.</p>" if not rows else ""
    path = root / "index.html"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(_page("contrastive-sweeps: reports", f"<h1>Reports</h1>{table}{note}"))
    return path
