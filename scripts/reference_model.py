"""The reference cDCGAN-32 of shared/REFERENCE-MODEL.md in PyTorch, and synthd's random
streams in NumPy, so that PyTorch can be fed exactly the weights and data the Swift engine uses.

Used by scripts/make_reference_fixture.py (the fixture the Swift tests compare with) and by
Benchmarks/pytorch_train_step.py (the speed comparison). Never used by synthd at run time.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


class RandomGenerator:
    """SplitMix64 as Sources/Engine/Core/RandomGenerator.swift: the n-th output (n from 1) is
    mix(seed + n * golden). Normals are Box-Muller pairs (cos first, then sin)."""

    def __init__(self, seed):
        self.seed = seed & MASK64
        self.counter = 0
        self.spare = None

    def next_uint64(self, n):
        counters = np.arange(self.counter + 1, self.counter + n + 1, dtype=np.uint64)
        self.counter += n
        with np.errstate(over="ignore"):
            z = np.uint64(self.seed) + counters * np.uint64(GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))

    def uniform(self, n, low=0.0, high=1.0):
        u = (self.next_uint64(n) >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
        return np.float32(low) + np.float32(high - low) * u

    def int_below(self, n, bound):
        x = self.next_uint64(n) >> np.uint64(32)
        with np.errstate(over="ignore"):
            return ((x * np.uint64(bound)) >> np.uint64(32)).astype(np.int64)

    def normal(self, n):
        out = []
        if self.spare is not None and n > 0:
            out.append(np.float32(self.spare))
            self.spare = None
        remaining = n - len(out)
        pairs = (remaining + 1) // 2
        if pairs > 0:
            raw = self.next_uint64(2 * pairs)
            u1 = ((raw[0::2] >> np.uint64(11)).astype(np.float64) + 1) * 2.0 ** -53
            u2 = (raw[1::2] >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
            radius = np.sqrt(-2 * np.log(u1))
            first = (radius * np.cos(2 * np.pi * u2)).astype(np.float32)
            second = (radius * np.sin(2 * np.pi * u2)).astype(np.float32)
            values = np.empty(2 * pairs, dtype=np.float32)
            values[0::2], values[1::2] = first, second
            if remaining % 2 == 1:
                self.spare = values[-1]
                values = values[:-1]
            out.extend(values.tolist())
        return np.array(out, dtype=np.float32)

    def fill_normal(self, shape, mean=0.0, std=1.0):
        n = int(np.prod(shape))
        return (np.float32(mean) + np.float32(std) * self.normal(n)).reshape(shape)


class Generator(nn.Module):
    def __init__(self, channels=1, classes=10, latent=128, embed=128):
        super().__init__()
        self.embed = nn.Embedding(classes, embed)
        self.fc = nn.Linear(latent + embed, 256 * 4 * 4)
        self.bn0 = nn.BatchNorm2d(256)
        self.up1 = nn.ConvTranspose2d(256, 128, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(128)
        self.up2 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(64)
        self.up3 = nn.ConvTranspose2d(64, channels, 4, 2, 1)

    # The order of Generator.parameters in Sources/GAN/Generator.swift.
    order = ["embed.weight", "fc.weight", "fc.bias", "bn0.weight", "bn0.bias",
             "up1.weight", "up1.bias", "bn1.weight", "bn1.bias",
             "up2.weight", "up2.bias", "bn2.weight", "bn2.bias", "up3.weight", "up3.bias"]

    def forward(self, z, y):
        h = torch.cat([z, self.embed(y)], dim=1)
        x = self.fc(h).view(-1, 256, 4, 4)
        x = self.up1(F.relu(self.bn0(x)))
        x = self.up2(F.relu(self.bn1(x)))
        x = self.up3(F.relu(self.bn2(x)))
        return torch.tanh(x)


class ProjectionHead(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(classes, features)

    def forward(self, phi, y):
        return self.linear(phi).squeeze(1) + (self.embed(y) * phi).sum(dim=1)


class Discriminator(nn.Module):
    def __init__(self, channels=1, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 4, 2, 1)
        self.conv2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(128)
        self.conv3 = nn.Conv2d(128, 256, 4, 2, 1)
        self.bn3 = nn.BatchNorm2d(256)
        self.head = ProjectionHead(256 * 4 * 4, classes)

    # The order of Discriminator.parameters in Sources/GAN/Discriminator.swift.
    order = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias",
             "conv3.weight", "conv3.bias", "bn3.weight", "bn3.bias",
             "head.linear.weight", "head.linear.bias", "head.embed.weight"]

    def forward(self, x, y):
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.bn2(self.conv2(x)), 0.2)
        x = F.leaky_relu(self.bn3(self.conv3(x)), 0.2)
        return self.head(x.flatten(1), y)


def initialize_dcgan(module, seed):
    """As initializeDCGAN in Sources/GAN/Initialization.swift: parameter k draws from
    RandomGenerator(seed + k); biases 0, BatchNorm gamma N(1, 0.02), the rest N(0, 0.02)."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        for k, name in enumerate(module.order):
            p = params[name]
            rng = RandomGenerator(seed + k)
            if name.endswith(".bias"):
                values = np.zeros(tuple(p.shape), dtype=np.float32)
            elif name.split(".")[-2].startswith("bn"):
                values = rng.fill_normal(tuple(p.shape), 1.0, 0.02)
            else:
                values = rng.fill_normal(tuple(p.shape), 0.0, 0.02)
            p.copy_(torch.from_numpy(values))
    assert set(module.order) == set(params), "parameter order list is out of date"


def make_inputs(seed, batch, channels, classes, latent=128):
    """As GANTests' fixture inputs: real images uniform in [-1, 1) and labels from stream
    `seed`; z from stream seed + 1; fake labels from stream seed + 2."""
    rng = RandomGenerator(seed)
    real = rng.uniform(batch * channels * 32 * 32, -1.0, 1.0).reshape(batch, channels, 32, 32)
    real_labels = rng.int_below(batch, classes)
    z = RandomGenerator(seed + 1).fill_normal((batch, latent))
    fake_labels = RandomGenerator(seed + 2).int_below(batch, classes)
    return (torch.from_numpy(real), torch.from_numpy(real_labels),
            torch.from_numpy(z), torch.from_numpy(fake_labels))


def training_step(G, D, opt_g, opt_d, real, real_labels, z, fake_labels, record=None, read_losses=True):
    """One reference step (shared/REFERENCE-MODEL.md), the one every script of ours runs (the
    fixture, the CPU and GPU speed comparisons, the quality reference). `record(stage, **values)`
    sees intermediate results for the fixture. Returns the two losses as floats, or as tensors
    with `read_losses=False` (no wait for the GPU: a step captured in a CUDA graph, a loop
    that reads them now and then)."""
    fake = G(z, fake_labels)
    opt_d.zero_grad(set_to_none=False)
    real_logits = D(real, real_labels)
    fake_logits = D(fake.detach(), fake_labels)
    ones, zeros = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    loss_d = (F.binary_cross_entropy_with_logits(real_logits, ones)
              + F.binary_cross_entropy_with_logits(fake_logits, zeros))
    loss_d.backward()
    if record:
        record("d", fake=fake, real_logits=real_logits, fake_logits=fake_logits, loss_d=loss_d)
    opt_d.step()

    opt_g.zero_grad(set_to_none=False)
    logits = D(fake, fake_labels)
    loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    loss_g.backward()
    if record:
        record("g", g_logits=logits, loss_g=loss_g)
    opt_g.step()
    if not read_losses:
        return loss_d.detach(), loss_g.detach()
    return loss_d.item(), loss_g.item()
