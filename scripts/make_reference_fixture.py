#!/usr/bin/env python3
"""Writes Tests/GANTests/Fixtures/reference_step.json: one reference training step of
cDCGAN-32 computed by PyTorch, on the weights and inputs that synthd's seeded streams make.

The Swift test (Tests/GANTests/ReferenceStepTests.swift) rebuilds the same weights and inputs
from the seeds, runs its own step, and compares. Each tensor is summarised by 64 evenly spaced
elements (index j * n // 64) and its L2 norm, which keeps the fixture small enough to commit.

Run once, when the reference step changes:
    scripts/with-torch python3 scripts/make_reference_fixture.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_model import (Discriminator, Generator, initialize_dcgan,  # noqa: E402
                             make_inputs, training_step)

BATCH, CHANNELS, CLASSES = 16, 1, 10
G_SEED, D_SEED, DATA_SEED = 100, 1100, 7
SAMPLES = 64


def summary(tensor):
    flat = tensor.detach().double().flatten()
    n = flat.numel()
    indices = sorted({j * n // SAMPLES for j in range(SAMPLES)}) if n > SAMPLES else list(range(n))
    return {"count": n, "indices": indices, "values": [flat[i].item() for i in indices],
            "norm": flat.norm().item()}


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    G, D = Generator(CHANNELS, CLASSES), Discriminator(CHANNELS, CLASSES)
    initialize_dcgan(G, G_SEED)
    initialize_dcgan(D, D_SEED)
    G.train()
    D.train()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real, real_labels, z, fake_labels = make_inputs(DATA_SEED, BATCH, CHANNELS, CLASSES)

    expected = {}

    def record(stage, **values):
        for key, value in values.items():
            expected[key] = summary(value)
        if stage == "d":
            for name, p in D.named_parameters():
                expected["grad:D." + name] = summary(p.grad)
        else:
            for name, p in G.named_parameters():
                expected["grad:G." + name] = summary(p.grad)

    training_step(G, D, opt_g, opt_d, real, real_labels, z, fake_labels, record)
    for prefix, module in (("G.", G), ("D.", D)):
        for name, tensor in module.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                expected["after:" + prefix + name] = summary(tensor)

    fixture = {
        "about": "One cDCGAN-32 reference step by PyTorch " + torch.__version__
                 + "; written by scripts/make_reference_fixture.py",
        "batch": BATCH, "channels": CHANNELS, "classes": CLASSES,
        "generator_seed": G_SEED, "discriminator_seed": D_SEED, "data_seed": DATA_SEED,
        "real_labels": real_labels.tolist(), "fake_labels": fake_labels.tolist(),
        "generator_parameters": ["G." + n for n in Generator.order],
        "discriminator_parameters": ["D." + n for n in Discriminator.order],
        "inputs": {"real": summary(real), "z": summary(z)},
        "expected": expected,
    }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "Tests", "GANTests", "Fixtures", "reference_step.json")
    with open(path, "w") as f:
        json.dump(fixture, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"wrote {os.path.normpath(path)}: {len(expected)} tensors summarised")


if __name__ == "__main__":
    main()
