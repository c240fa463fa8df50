"""What the orchestrator costs: a study of fixed-length trials, its wall time against the trials'.

    .venv/bin/python benchmarks/sweep_overhead.py                # 16 trials, 2 at once
    .venv/bin/python benchmarks/sweep_overhead.py --trials 4     # a quick check

One study (SimCLR on digit pairs, ``small_cnn``, one trial per seed, all of the same length) runs
through ``orchestrator.runner.run_study``, as ``python -m orchestrator run`` does, into a fresh
store in a temporary folder. Printed:

    ideal    = Σ trial times / concurrency    (a trial's time: its MLflow run's end − start)
    overhead = wall / ideal − 1               (target ≤ 10 %)
    first epoch = first epoch's metric timestamp − the command's start   (target ≤ 15 s)

``wall`` runs from the command's start (before any import) to ``run_study``'s return, so Ray's
start, the store's creation and the report count as overhead. ``train/seconds`` (the epochs
alone) is printed beside the runs' times.
"""

from __future__ import annotations

import time

COMMAND_START = time.time()  # before the imports: they are part of what a researcher waits for

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402
from rich.console import Console  # noqa: E402

from orchestrator.runner import run_study  # noqa: E402
from orchestrator.spec import load_study  # noqa: E402


def study(trials: int, epochs: int, concurrency: int) -> dict:
    base = {
        "data": {"name": "digit_pair", "source": "digits", "canvas": 32, "first_size": 16, "second_size": 8,
                 "train_examples": 2048, "test_examples": 512},
        "model": {"backbone": {"name": "small_cnn", "width": 16, "stages": 3}, "head": {"layers": 2, "dim": 32}},
        "method": "simclr",
        "loss": {"name": "nt_xent", "temperature": 0.2},
        "views": {"crop": {"scale": [0.5, 1.0]}},
        "optim": {"name": "adam", "lr": 0.002},
        "train": {"batch_size": 128, "epochs": epochs},
        "eval": {"linear": {"targets": ["first_digit", "second_digit"], "steps": 50}},
    }
    return {
        "study": "sweep_overhead",
        "reproduces": "nothing: the orchestrator's overhead (benchmarks/sweep_overhead.py)",
        "base": base,
        "execution": {"cpus_per_trial": 1, "max_concurrent_trials": concurrency},
        "sweep": {"seeds": list(range(trials))},
        "scales": {"small": {}, "smoke": {}},  # required; the benchmark runs the base (paper)
        "report": {"table": {"rows": ["variant", "target"], "columns": "seed", "metric": "linear_acc"}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8, help="sets a trial's length (8: about 17 s on an idle core)")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as folder:
        root = Path(folder)
        path = root / "sweep_overhead.yaml"
        path.write_text(yaml.safe_dump(study(args.trials, args.epochs, args.concurrency), sort_keys=False))
        uri = f"sqlite:///{root / 'mlflow.db'}"
        summary = run_study(load_study(path), tracking_uri=uri, data_root=root / "data",
                            reports_root=root / "reports", console=Console(stderr=True))
        wall = time.time() - COMMAND_START
        from mlflow import MlflowClient  # here, as the command imports MLflow only once Ray is starting

        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("sweep_overhead").experiment_id
        runs = [r for r in client.search_runs([experiment], "tags.trial_hash != ''", max_results=1000)
                if r.info.status == "FINISHED"]
        if len(runs) != args.trials or summary.failed:
            raise SystemExit(f"{len(runs)} of {args.trials} trials finished; failed: {summary.failed}")
        run_seconds = [(r.info.end_time - r.info.start_time) / 1000 for r in runs]
        train_seconds = [r.data.metrics["train/seconds"] for r in runs]
        first_epoch = min(m.timestamp for r in runs for m in client.get_metric_history(r.info.run_id, "train/loss")
                          if m.step == 1) / 1000 - COMMAND_START
        parent = client.get_run(summary.parent_run_id).info
        phases = {  # seconds since the command, each a run's timestamp in the store
            "parent run opened (imports, store, plan, Ray's start)": parent.start_time / 1000 - COMMAND_START,
            "first trial's run opened (Tune, a worker process, its imports)": min(r.info.start_time for r in runs) / 1e3
            - COMMAND_START,
            "first trial's first epoch logged (data, torch._dynamo's import, one epoch)": first_epoch,
            "last trial's run closed": max(r.info.end_time for r in runs) / 1000 - COMMAND_START,
        }
    ideal = sum(run_seconds) / args.concurrency
    print(f"{args.trials} trials × {args.epochs} epochs, {args.concurrency} at once")
    print(f"trial time (run end − start): mean {statistics.mean(run_seconds):.1f} s "
          f"(min {min(run_seconds):.1f}, max {max(run_seconds):.1f}); train/seconds mean "
          f"{statistics.mean(train_seconds):.1f} s")
    print(f"wall {wall:.1f} s, Σ trial times / concurrency {ideal:.1f} s: overhead {100 * (wall / ideal - 1):.1f} % "
          f"(target ≤ 10 %)")
    print(f"command → first trial's first epoch: {first_epoch:.1f} s (target ≤ 15 s)")
    for phase, seconds in phases.items():
        print(f"  {seconds:6.1f} s  {phase}")
    print(f"  {wall:6.1f} s  run_study returned (report built)")


if __name__ == "__main__":
    main()
