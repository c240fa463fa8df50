"""bfloat16 autocast vs float32 for one full SimCLR training step, in the same run.

    .venv/bin/python benchmarks/precision.py [--device cuda] [--threads 1] [--repeats 5]

The step is the flagship study's small scale (`studies/feature_suppression.yaml`): two views of
256 two-digit 56×56 canvases, a 4-stage small_cnn of width 16, NT-Xent, Adam; views made,
forward, backward and update, exactly as `workers.trainer.train` runs it with
`train.precision` float32 or bfloat16. Prints both times and the speed-up (float32 / bf16).
"""

from __future__ import annotations

import argparse

import torch
from timing import timed

from workers import TrialConfig

CONFIG = {
    "data": {"name": "digit_pair", "source": "digits", "canvas": 112, "first_size": 20, "second_size": 80,
             "render_scale": 0.5},
    "model": {"backbone": {"name": "small_cnn", "width": 16, "stages": 4}},
    "method": "simclr",
    "loss": {"name": "nt_xent", "temperature": 0.2},
    "views": {"crop": {"scale": [0.5, 1.0]}},
    "train": {"batch_size": 256},
}


def step_time(config: TrialConfig, mixed: bool, repeats: int, device: torch.device) -> float:
    torch.manual_seed(0)
    dataset = config.data.build("unused", device)
    method = config.method.build(config, dataset).to(device)
    optimizer, _ = config.optim.build(method, steps_per_epoch=1, epochs=1)
    generator = torch.Generator(device=device).manual_seed(0)
    index = torch.arange(config.train.batch_size, device=device)
    labels = {target: values[index] for target, values in dataset.train.labels.items()}

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
            loss, online = method.training_loss(dataset.train.images(index), labels, generator)
        optimizer.zero_grad(set_to_none=True)
        (loss + online).backward()
        optimizer.step()

    return timed(step, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (a trial gets cpus_per_trial)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = TrialConfig.model_validate(CONFIG)
    full = step_time(config, mixed=False, repeats=args.repeats, device=device)
    half = step_time(config, mixed=True, repeats=args.repeats, device=device)
    print(f"device {device}, {args.threads} thread(s), batch {config.train.batch_size}, mean of {args.repeats} steps")
    print(f"float32 {full * 1e3:7.1f} ms   bfloat16 {half * 1e3:7.1f} ms   speed-up ×{full / half:.2f}")


if __name__ == "__main__":
    main()
