#!/usr/bin/env python3
"""Times the cDCGAN-32 reference training step (shared/REFERENCE-MODEL.md) in PyTorch on
random data, in the default layout and in channels_last, and with --bf16 also channels_last
under CPU autocast to bfloat16 (oneDNN's AMX kernels on CPUs that have them: PyTorch's way to
what synthd's AMX products do). Prints, per variant, `pytorch_<variant>_images_per_second=<number>`.

    scripts/with-torch python3 Benchmarks/pytorch_train_step.py --batch 64 --steps 20 --warmup 3
"""
import argparse
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from reference_model import Discriminator, Generator, initialize_dcgan, training_step  # noqa: E402


def measure(layout, args):
    torch.manual_seed(args.seed)
    G, D = Generator(args.channels, args.classes), Discriminator(args.channels, args.classes)
    initialize_dcgan(G, 1)
    initialize_dcgan(D, 1001)
    real = torch.rand(args.batch, args.channels, 32, 32) * 2 - 1
    real_labels = torch.randint(0, args.classes, (args.batch,))
    if layout.startswith("channels_last"):
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        real = real.contiguous(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step():
        z = torch.randn(args.batch, 128)
        fake_labels = torch.randint(0, args.classes, (args.batch,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=layout.endswith("bf16")):
            training_step(G, D, opt_g, opt_d, real, real_labels, z, fake_labels)

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"pytorch {layout}: median step {median * 1e3:.2f} ms, min {min(times) * 1e3:.2f} ms")
    return args.batch / median


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="also channels_last under bfloat16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    variants = ("default", "channels_last") + (("channels_last_bf16",) if args.bf16 else ())
    results = {variant: measure(variant, args) for variant in variants}
    print(f"pytorch_peak_resident_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}")
    for layout, images_per_second in results.items():
        print(f"pytorch_{layout}_images_per_second={images_per_second:.1f}")


if __name__ == "__main__":
    main()
