"""The command line: exit codes, one-line errors, dry runs and reports without runs."""

from __future__ import annotations

from conftest import TINY_BASE, tiny_study

from orchestrator.cli import main


def test_bad_study_exits_2_with_one_line(write_study, capsys):
    path = write_study(tiny_study(base={**TINY_BASE, "loss": {"name": "nt_xent", "temprature": 0.1}}))
    assert main(["run", str(path), "--scale", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: {path}: base.loss.temprature: unknown key")


def test_dry_run_lists_every_cell_with_its_hash(write_study, capsys):
    assert main(["run", str(write_study(tiny_study())), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 cells, 8 distinct trials" in out
    assert out.count("seed=") == 8


def test_report_without_runs_shows_empty_cells(write_study, tmp_path, capsys):
    path = write_study(tiny_study())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["report", str(path), "--scale", "smoke", "--tracking-uri", uri,
                 "--reports", str(tmp_path / "reports")]) == 0
    assert "tiny @ smoke" in capsys.readouterr().out
    report = (tmp_path / "reports" / "tiny" / "smoke" / "report.md").read_text()
    assert "0 of 2 cells finished" in report
    assert "| t02 | first_digit | not run (—) |" in report


def test_console_off_a_terminal_is_wide_enough_not_to_fold(monkeypatch):
    from orchestrator.cli import make_console

    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()  # pytest captures output: not a terminal
    assert not console.is_terminal and console.width == 200
    monkeypatch.setenv("COLUMNS", "90")
    assert make_console().width == 90
