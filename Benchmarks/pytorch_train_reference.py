#!/usr/bin/env python3
"""Trains the plain reference model (cDCGAN-32, shared/REFERENCE-MODEL.md) the way a user with
PyTorch would, eager, for a fixed time, then writes class-conditioned samples as an ImageFolder
tree (OUT/<class>/<n>.png, 28x28 grey, the 32x32 output's centre) that `synthd eval` scores like
synthd's own output. The GPU quality comparison of issue 15 runs it for 4 minutes beside 5
minutes of synthd in one device run; on a CPU it runs too (slowly), which is how it is tested.

    python3 Benchmarks/pytorch_train_reference.py --images t10k-images-idx3-ubyte.gz \\
        --labels t10k-labels-idx1-ubyte.gz --minutes 4 --per-class 3000 --out out/pytorch

Class folders are the label numbers unless --class-names gives them (the order of the labels),
as `synthd import-idx` names them. PNGs are written with zlib alone (no imaging library).
"""
import argparse
import gzip
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from reference_model import Discriminator, Generator, initialize_dcgan, training_step  # noqa: E402


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, kind, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def png_grey(pixels):
    """An 8-bit greyscale PNG of a (height, width) uint8 array."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="IDX images (28x28, optionally .gz)")
    parser.add_argument("--labels", required=True, help="IDX labels")
    parser.add_argument("--out", required=True, help="output ImageFolder root")
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--steps", type=int, default=0, help="stop after this many steps instead (0: by --minutes)")
    parser.add_argument("--deadline-seconds", type=float, default=0,
                        help="with --steps: stop there at the latest, fewer steps said so (0: none)")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--class-names", default="", help="comma-separated, in label order")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    images = read_idx(args.images)
    labels = read_idx(args.labels).astype(np.int64)
    classes = int(labels.max()) + 1
    names = args.class_names.split(",") if args.class_names else [str(k) for k in range(classes)]
    if len(names) < classes:
        sys.exit(f"{len(names)} class names for {classes} classes")
    # [-1, 1], 28x28 padded to 32x32 with the background (-1), the dataset in device memory.
    real = torch.from_numpy(images.copy()).float().div(127.5).sub(1).unsqueeze(1)
    real = F.pad(real, (2, 2, 2, 2), value=-1.0).to(device)
    real_labels = torch.from_numpy(labels).to(device)
    count = real.shape[0]

    G, D = Generator(1, classes).to(device), Discriminator(1, classes).to(device)
    initialize_dcgan(G, 1)
    initialize_dcgan(D, 1001)
    fused = device.type == "cuda"
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=fused)

    start = time.perf_counter()
    steps = 0
    def training():
        elapsed = time.perf_counter() - start
        if not args.steps:
            return elapsed < args.minutes * 60
        return steps < args.steps and not (args.deadline_seconds and elapsed >= args.deadline_seconds)

    while training():
        index = torch.randint(0, count, (args.batch,), device=device)
        x, y = real[index], real_labels[index]
        z = torch.randn(args.batch, 128, device=device)
        fake_labels = torch.randint(0, classes, (args.batch,), device=device)
        loss_d, loss_g = training_step(G, D, opt_g, opt_d, x, y, z, fake_labels, read_losses=False)
        steps += 1
        if steps % 1000 == 0:
            print(f"step {steps}: D {loss_d.item():.3f} G {loss_g.item():.3f}, "
                  f"{steps * args.batch / (time.perf_counter() - start):.0f} images/s", flush=True)
    seconds = time.perf_counter() - start
    print(f"trained {steps} steps ({steps * args.batch} images seen) in {seconds:.0f} s on {device}", flush=True)
    if args.steps and steps < args.steps:
        print(f"stopped at the deadline, {args.steps - steps} steps short of {args.steps}", flush=True)

    # Samples with the running BatchNorm statistics (eval mode), the 28x28 centre, as bytes.
    G.eval()
    written = 0
    with torch.no_grad():
        for k, name in enumerate(names[:classes]):
            folder = os.path.join(args.out, name)
            os.makedirs(folder, exist_ok=True)
            for first in range(0, args.per_class, 500):
                n = min(500, args.per_class - first)
                out = G(torch.randn(n, 128, device=device), torch.full((n,), k, dtype=torch.long, device=device))
                pixels = ((out[:, 0, 2:30, 2:30] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
                for i in range(n):
                    with open(os.path.join(folder, f"{first + i}.png"), "wb") as f:
                        f.write(png_grey(pixels[i]))
                written += n
    print(f"wrote {written} images in {classes} classes to {args.out}")


if __name__ == "__main__":
    main()
