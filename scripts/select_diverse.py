"""Chooses synthetic images by their spread, not at random (docs/quality.md, "Choosing the
most spread-out samples"): an experiment of issue 17, kept so that its rows can be redone.

New real images look harder to a classifier of the real images than the GAN's samples do (their
spread in its features is larger), so this picks, from a large pool of class-checked samples,
PER_CLASS per class that are far apart in such a classifier's features: three small CNNs
(`synthd eval`'s architecture, shifts as augmentation, 600 steps each) trained on REAL alone,
their normalised 128-wide features side by side; a class's candidates are the pool images that
the three give their class a mean probability of at least MIN_PROBABILITY; then greedy
farthest-point selection:

  far-real   each next pick the candidate farthest from the class's real images and the picks
             so far (what real images do not already cover);
  far-synth  the same among the samples only, from a random first pick (spread for its own sake).

    .build/release/synthd generate data/small --state STATE --out out/sel/pool --per-class 3000 --seed 1
    scripts/with-torch python3 scripts/select_diverse.py data/small out/sel/pool/small out/sel/far-real/small 50 far-real 0.5
    .build/release/synthd eval data/small out/sel/far-real/small --test data/fashion-test --seeds 3 --multiples 0.5,1

Writes hard links (no manifest: the pool's images are as drawn). Seeded.
"""
import os
import random
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bound_folders import read_grey_png


def load(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    images, labels, paths = [], [], []
    for index, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(root, name))):
            path = os.path.join(root, name, file)
            images.append(read_grey_png(path))
            labels.append(index)
            paths.append(path)
    x = torch.tensor(np.stack(images), dtype=torch.float32).unsqueeze(1) / 127.5 - 1
    return classes, F.pad(x, (2, 2, 2, 2), value=-1), torch.tensor(labels), paths


class SmallCNN(nn.Module):
    """`Classifier` of Sources/GAN/Evaluation: three stride-2 convolutions, a 128-wide layer."""

    def __init__(self, width=32, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(1, width, 4, 2, 1)
        self.c2, self.b2 = nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width)
        self.c3, self.b3 = nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.BatchNorm2d(4 * width)
        self.f1, self.f2 = nn.Linear(4 * width * 16, 128), nn.Linear(128, classes)

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), 0.2)
        h = F.leaky_relu(self.b2(self.c2(h)), 0.2)
        h = F.leaky_relu(self.b3(self.c3(h)), 0.2)
        features = F.relu(self.f1(h.flatten(1)))
        return self.f2(features), features


def train(x, y, seed, steps=600):
    torch.manual_seed(seed)
    random.seed(seed)
    net = SmallCNN()
    optimiser = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        batch = torch.randint(0, len(x), (128,))
        right, down = random.randint(-2, 2), random.randint(-2, 2)
        shifted = torch.roll(x[batch], (down, right), (2, 3))
        loss = F.cross_entropy(net(shifted)[0], y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


@torch.no_grad()
def embed(nets, x):
    features, probabilities = [], []
    for net in nets:
        logits, f = net(x)
        features.append(F.normalize(f, dim=1))
        probabilities.append(F.softmax(logits, 1))
    return torch.cat(features, 1), torch.stack(probabilities).mean(0)


def main():
    if len(sys.argv) != 7 or sys.argv[5] not in ('far-real', 'far-synth'):
        sys.exit(__doc__)
    real_root, pool_root, out_root = sys.argv[1:4]
    per_class, mode, min_probability = int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
    torch.set_num_threads(os.cpu_count())
    classes, real, real_labels, _ = load(real_root)
    _, pool, pool_labels, paths = load(pool_root)
    nets = [train(real, real_labels, seed) for seed in range(3)]
    real_features, _ = embed(nets, real)
    pool_features, probabilities = embed(nets, pool)
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        candidates = ((pool_labels == index) & (probabilities[:, index] >= min_probability)).nonzero().flatten()
        features = pool_features[candidates]
        if mode == 'far-real':
            nearest = torch.cdist(features, real_features[real_labels == index]).min(1).values
        else:
            first = int(rng.integers(len(candidates)))
            nearest = torch.cdist(features, features[first:first + 1]).flatten()
        chosen = []
        for _ in range(min(per_class, len(candidates))):
            pick = int(nearest.argmax())
            chosen.append(pick)
            nearest = torch.minimum(nearest, torch.cdist(features, features[pick:pick + 1]).flatten())
        print(f'{name}: {len(candidates)} of {int((pool_labels == index).sum())} candidates, {len(chosen)} chosen')
        os.makedirs(os.path.join(out_root, name), exist_ok=True)
        for pick in chosen:
            path = paths[int(candidates[pick])]
            os.link(path, os.path.join(out_root, name, os.path.basename(path)))


if __name__ == '__main__':
    main()
