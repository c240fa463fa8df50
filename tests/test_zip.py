"""Zip axes: parallel lists varied together beside the grid, validated, replaceable, reportable."""

from __future__ import annotations

import pytest
from conftest import tiny_study

from orchestrator.cli import main
from orchestrator.errors import StudyError
from orchestrator.expansion import expand
from orchestrator.spec import load_study

ZIP = {"optim.lr": [0.001, 0.002, 0.004], "train.batch_size": [16, 32, 64]}


def zipped(**sweep) -> dict:
    return tiny_study(sweep={"grid": {"data.second_size": [8, 16]}, "zip": ZIP,
                             "variants": {"t02": {}, "t05": {"loss.temperature": 0.5}}, "seeds": [0, 1], **sweep})


def plain(sweep: dict) -> dict:
    """The tiny study with ``sweep`` and a table that names no swept key."""
    return tiny_study(sweep=sweep, report={"table": {"rows": ["variant", "target"], "metric": "linear_acc"}})


def error_of(path, scale="paper", overrides=()) -> str:
    with pytest.raises(StudyError) as caught:
        load_study(path, scale=scale, overrides=overrides)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(str(path))
    return text


def test_cells_are_variants_times_grid_times_zip_rows_times_seeds(write_study):
    cells = expand(load_study(write_study(zipped())))
    assert len(cells) == 2 * 2 * 3 * 2
    # Written out by hand: the first variant's first grid point, each zip row, each seed.
    expected = [(8, 0.001, 16, 0), (8, 0.001, 16, 1), (8, 0.002, 32, 0), (8, 0.002, 32, 1),
                (8, 0.004, 64, 0), (8, 0.004, 64, 1), (16, 0.001, 16, 0)]
    got = [(c.config.data.second_size, c.config.optim.lr, c.config.train.batch_size, c.seed) for c in cells[:7]]
    assert got == expected
    assert {c.variant for c in cells[:12]} == {"t02"} and cells[12].config.loss.temperature == 0.5
    # The rows are varied together: no cell pairs lr 0.001 with batch 64.
    assert {(c.config.optim.lr, c.config.train.batch_size) for c in cells} == {(0.001, 16), (0.002, 32), (0.004, 64)}
    assert len({c.hash for c in cells}) == len(cells)


def test_zipped_keys_are_coordinates_of_the_cell(write_study):
    cell = expand(load_study(write_study(zipped())))[2]
    assert cell.labels() == {"variant": "t02", "data.second_size": 8, "optim.lr": 0.002, "train.batch_size": 32,
                             "seed": 0}
    assert cell.name == "t02 second_size=8 lr=0.002 batch_size=32 seed=0"


def test_how_a_cell_is_reached_does_not_change_its_hash(write_study):
    by_zip = expand(load_study(write_study(plain({"zip": {"optim.lr": [0.001, 0.004]}}))))
    by_grid = expand(load_study(write_study(plain({"grid": {"optim.lr": [0.001, 0.004]}}))))
    by_variants = expand(load_study(write_study(plain({"variants": {
        "slow": {"optim.lr": 0.001}, "fast": {"optim.lr": 0.004}}}))))
    assert [c.hash for c in by_zip] == [c.hash for c in by_grid] == [c.hash for c in by_variants]


def test_a_study_without_zip_expands_as_before(write_study):
    cells = expand(load_study(write_study(tiny_study())))
    assert [dict(c.point) for c in cells[:4]] == [{"data.second_size": 8}] * 2 + [{"data.second_size": 16}] * 2


def test_unequal_lengths_name_the_key_and_both_lengths(write_study):
    text = error_of(write_study(zipped(zip={"optim.lr": [0.001, 0.002, 0.004], "train.batch_size": [16, 32]})))
    assert "sweep.zip.train.batch_size" in text
    assert "optim.lr has 3 values, train.batch_size has 2" in text


def test_zip_may_not_be_empty_or_overlap_grid_seed_variants_or_itself(write_study):
    assert "sweep.zip.optim.lr: has no values" in error_of(write_study(zipped(zip={"optim.lr": []})))
    text = error_of(write_study(zipped(zip={"data.second_size": [8, 16]})))
    assert "sweep.zip.data.second_size" in text and "also swept by sweep.grid.data.second_size" in text
    text = error_of(write_study(zipped(zip={"data": [{"name": "digit_pair"}]})))
    assert "sweep.zip.data" in text and "sweep.grid.data.second_size" in text
    assert "sweep.seeds" in error_of(write_study(zipped(zip={"seed": [1, 2]})))
    text = error_of(write_study(zipped(variants={"hot": {"train.batch_size": 32}})))
    assert "variant hot sets train.batch_size, which would override the sweep's train.batch_size" in text
    text = error_of(write_study(zipped(zip={"optim": [{"name": "adam"}], "optim.lr": [0.1]})))
    assert "sweep.zip.optim.lr: overlaps the zipped key optim" in text


def test_every_zipped_cell_is_validated_as_it_runs(write_study):
    text = error_of(write_study(zipped(zip={"optim.lr": [0.001, 0.002], "train.batch_size": [16, 1000]})))
    assert "sweep cell (variant t02, data.second_size=8, optim.lr=0.002, train.batch_size=1000)" in text
    assert "more than the 128 training examples" in text


def test_scales_and_set_replace_zipped_lists(write_study):
    study = plain({"zip": ZIP})
    study["scales"]["smoke"] = {"sweep.zip.optim.lr": [0.01, 0.02, 0.03]}
    path = write_study(study)
    smoke = load_study(path, scale="smoke")
    assert smoke.spec.sweep.zip == {"optim.lr": [0.01, 0.02, 0.03], "train.batch_size": [16, 32, 64]}
    both = ["sweep.zip.optim.lr=[0.1]", "sweep.zip.train.batch_size=[8]"]
    assert [c.config.optim.lr for c in load_study(path, overrides=both).cells] == [0.1]
    text = error_of(path, overrides=["sweep.zip.optim.lr=[0.1]"])
    assert "--set sweep.zip.optim.lr=[0.1]" in text and "optim.lr has 1 values, train.batch_size has 3" in text
    replaced = load_study(path, overrides=["sweep.zip={train.epochs: [1, 3]}"])
    assert [c.config.train.epochs for c in replaced.cells] == [1, 3]


def test_report_tables_and_plots_can_use_a_zipped_key(write_study, tmp_path, capsys):
    study = tiny_study(sweep={"zip": ZIP, "variants": {"t02": {}}},
                       report={"table": {"rows": ["variant", "target"], "columns": "optim.lr", "metric": "linear_acc"},
                               "plots": [{"x": "train.batch_size", "y": "linear_acc", "hue": "variant"}]})
    study["scales"]["smoke"] = {}
    path = write_study(study)
    assert main(["report", str(path), "--scale", "smoke", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
                 "--reports", str(tmp_path / "reports")]) == 0
    report = (tmp_path / "reports" / "tiny" / "smoke" / "report.md").read_text()
    assert "0.001" in report and "0.004" in report and "| t02 | first_digit | not run (—) |" in report
    bad = tiny_study(sweep={"zip": ZIP}, report={"table": {"rows": ["variant"], "columns": "optim.momentum",
                                                           "metric": "train/loss"}})
    text = error_of(write_study(bad))
    assert "report.table.columns" in text and "optim.lr" in text and "train.batch_size" in text
    capsys.readouterr()
