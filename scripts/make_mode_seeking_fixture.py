#!/usr/bin/env python3
"""Prints the expected values of Tests/GANTests/ModeSeekingRegularizationTests.swift's PyTorch
case: MSGAN's mode-seeking term as its authors compute it (Mao et al. 2019, the reference
code's `lz = mean|fake2 - fake1| / mean|z2 - z1|; loss_lz = 1 / (lz + 1e-5)`), times a weight,
on a batch of 4 images of 2x3x3 and latent vectors of 5, and its gradient in the images.

    scripts/with-torch python3 scripts/make_mode_seeking_fixture.py
"""
import math

import torch

BATCH, CHANNELS, SIDE, LATENT, WEIGHT = 4, 2, 3, 5, 0.7


def main():
    torch.set_default_dtype(torch.float64)
    per = CHANNELS * SIDE * SIDE
    fake = torch.tensor([0.9 * math.sin(1.3 * i + 0.2) for i in range(BATCH * per)]).reshape(BATCH, CHANNELS, SIDE, SIDE)
    z = torch.tensor([math.cos(0.7 * i + 0.5) for i in range(BATCH * LATENT)]).reshape(BATCH, LATENT)
    fake.requires_grad_(True)
    half = BATCH // 2
    fake1, fake2 = fake[:half], fake[half:2 * half]
    z1, z2 = z[:half], z[half:2 * half]
    lz = torch.mean(torch.abs(fake2 - fake1)) / torch.mean(torch.abs(z2 - z1))
    loss = WEIGHT / (lz + 1e-5)
    loss.backward()

    def swift(name, t):
        print(f"        let {name}: [Float] = [" + ", ".join(f"{x:.9g}" for x in t.detach().flatten().tolist()) + "]")
    print(f"        let loss: Float = {loss.item():.9g}")
    swift("gradient", fake.grad)


if __name__ == "__main__":
    main()
