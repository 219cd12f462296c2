#!/usr/bin/env python3
"""Prints the expected values of Tests/EngineTests/SpectralNormalizationTests.swift's PyTorch
case: torch.nn.utils.spectral_norm on a 3x5 weight, one power iteration from a given u, and
the gradient of sum(C * W_sn) with respect to the raw weight.

    scripts/with-torch python3 scripts/make_spectral_fixture.py
"""
import math

import torch

ROWS, COLUMNS = 3, 5


def main():
    torch.set_default_dtype(torch.float64)
    w = torch.tensor([[0.5 * math.sin(1 + r * COLUMNS + c) for c in range(COLUMNS)] for r in range(ROWS)])
    u0 = torch.tensor([0.3, -0.5, 0.8])
    cost = torch.tensor([[math.cos(r * COLUMNS + c) for c in range(COLUMNS)] for r in range(ROWS)])

    layer = torch.nn.Linear(COLUMNS, ROWS, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    layer = torch.nn.utils.spectral_norm(layer, n_power_iterations=1, dim=0)
    with torch.no_grad():
        layer.weight_u.copy_(u0 / u0.norm())
    layer.train()
    layer(torch.zeros(1, COLUMNS))          # the forward pre-hook iterates and sets weight
    normalized = layer.weight
    (cost * normalized).sum().backward()
    sigma = (layer.weight_orig / normalized)[0, 0]

    def swift(name, t):
        print(f"        let {name}: [Float] = [" + ", ".join(f"{x:.9g}" for x in t.detach().flatten().tolist()) + "]")
    print(f"        let sigma: Float = {sigma.item():.9g}")
    swift("u", layer.weight_u)
    swift("normalized", normalized)
    swift("gradient", layer.weight_orig.grad)


if __name__ == "__main__":
    main()
