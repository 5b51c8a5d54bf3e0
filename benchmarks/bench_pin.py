"""What pinning the CPU kernels costs: training throughput (images/s), pinned vs native.

Each setting runs in a fresh process (the kernels are chosen when torch is imported), the
settings alternate over ``--repeats`` rounds so that drift in machine load hits them alike, and
the median images/s and CPU-seconds per image of ResNet-20 training steps are printed with the
kernel torch reports. "native" is the host's fastest kernels with the same single thread, so the
difference is the instruction-set pin alone; on an AVX2-only host it is expected to be ~0.

    .venv/bin/python benchmarks/bench_pin.py [--width 16] [--batch-size 64] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from prunedissect.reproducibility import cpu_environment

STEPS = r"""
import json, sys, time
import torch
from torch.nn import functional as F
from prunedissect.models import get_model
width, batch, steps = (int(v) for v in sys.argv[1:4])
torch.manual_seed(0)
model = get_model("resnet20", num_classes=10, width=width)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
images, targets = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
for step in range(steps + 3):
    if step == 3:
        wall, cpu = time.perf_counter(), time.process_time()
    loss = F.cross_entropy(model(images), targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"images_s": batch * steps / wall, "cpu_ms_image": 1000 * cpu / (batch * steps),
                  "capability": torch.backends.cpu.get_cpu_capability(),
                  "threads": torch.get_num_threads()}))
"""


def run(env: dict[str, str], args: argparse.Namespace) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STEPS, str(args.width), str(args.batch_size), str(args.steps)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pinned = cpu_environment(pin_kernels=True, threads=1)
    base = {k: v for k, v in os.environ.items() if k not in pinned}
    settings = {
        "pinned (AVX2, 1 thread)": {**base, **cpu_environment(pin_kernels=True, threads=1)},
        "native (host ISA, 1 thread)": {**base, "OMP_NUM_THREADS": "1"},
    }
    results: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(args.repeats):
        for name, env in settings.items():
            results[name].append(run(env, args))
    medians = {}
    for name, runs in results.items():
        medians[name] = statistics.median(r["images_s"] for r in runs)
        cpu = statistics.median(r["cpu_ms_image"] for r in runs)
        print(f"{name:28s} {medians[name]:7.1f} images/s  {cpu:6.2f} CPU-ms/image  "
              f"(torch capability {runs[0]['capability']})")  # fmt: skip
    pinned, native = medians.values()
    print(f"pinned / native throughput: {pinned / native:.3f}")


if __name__ == "__main__":
    main()
