#!/usr/bin/env python3
"""Times the cDCGAN-32 reference training step (shared/REFERENCE-MODEL.md) in PyTorch on an
NVIDIA GPU, the two ways the CUDA backend is compared with: eager (fused Adam, TF32 allowed)
and written as an expert would, the whole step (batch gather from the dataset in device
memory, latent sampling, both forwards and backwards, both Adam updates) captured in one CUDA
graph and replayed. Random data of Fashion-MNIST's size stands in for the dataset. Prints,
per mode and batch, `pytorch_cuda_<mode>_b<batch>_images_per_second=<number>`.

    python3 Benchmarks/pytorch_cuda_train_step.py --batches 64,256,1024 --steps 200
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from reference_model import Discriminator, Generator, initialize_dcgan, training_step  # noqa: E402


def build(mode, batch, args, images, labels):
    torch.manual_seed(args.seed)
    G, D = Generator(1, args.classes), Discriminator(1, args.classes)
    initialize_dcgan(G, 1)
    initialize_dcgan(D, 1001)
    G, D = G.cuda(), D.cuda()
    capturable = mode == "graph"
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True, capturable=capturable)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True, capturable=capturable)
    count = images.shape[0]

    def step():
        index = torch.randint(0, count, (batch,), device="cuda")
        real = images[index].float().mul_(2.0 / 255.0).sub_(1.0)
        real_labels = labels[index]
        z = torch.randn(batch, 128, device="cuda")
        fake_labels = torch.randint(0, args.classes, (batch,), device="cuda")
        training_step(G, D, opt_g, opt_d, real, real_labels, z, fake_labels, read_losses=False)

    if mode == "eager":
        return step
    # Warm up on a side stream (allocations, cuBLAS workspaces), then capture one step.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def measure(mode, batch, args, images, labels):
    step = build(mode, batch, args, images, labels)
    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    print(f"pytorch cuda {mode}, batch {batch}: {seconds * 1e3:.3f} ms per step")
    return batch / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="64,256,1024")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark runs on the GPU machine")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    print(f"PyTorch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (args.images, 1, 32, 32), dtype=torch.uint8, generator=generator).cuda()
    labels = torch.randint(0, args.classes, (args.images,), generator=generator).cuda()
    for batch in [int(b) for b in args.batches.split(",")]:
        for mode in ("eager", "graph"):
            rate = measure(mode, batch, args, images, labels)
            print(f"pytorch_cuda_{mode}_b{batch}_images_per_second={rate:.0f}")


if __name__ == "__main__":
    main()
