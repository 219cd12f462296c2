#!/usr/bin/env python3
"""Makes Tests/ImagingTests/Fixtures/expected-imagefolder.json: a dataset tree of the kinds
users drop (nested folders, upper-case extensions, hidden files and folders, macOS's resource
forks and __MACOSX, Jupyter's .ipynb_checkpoints, a viewer's hidden thumbnails folder, an empty class, formats PyTorch does not
read, names that sort differently by case, digits and accents) and what torchvision's own
ImageFolder makes of it: its classes in label order and its samples with their labels, the
independent reference for ImageFolderAgreementTests. ImageFolder lists by name, opening no
file, so the files here are empty.

Run with PyTorch and torchvision (scripts/with-torch python3 scripts/make_imagefolder_fixture.py
after `.venv/bin/pip install --no-deps torchvision`). Only torchvision's Python code is loaded,
without its package __init__, whose C operators need the exact torch build they were made for.
"""
import importlib.util
import json
import os
import sys
import tempfile
import types

spec = importlib.util.find_spec("torchvision")
package = types.ModuleType("torchvision")
package.__path__ = [os.path.dirname(spec.origin)]
sys.modules["torchvision"] = package
datasets = types.ModuleType("torchvision.datasets")
datasets.__path__ = [os.path.join(package.__path__[0], "datasets")]
sys.modules["torchvision.datasets"] = datasets
from torchvision.datasets.folder import ImageFolder  # noqa: E402

version = open(os.path.join(package.__path__[0], "version.py")).read().split("__version__ = ")[1].split("\n")[0].strip("'\"")

tree = [
    "cat/1.png", "cat/2019/2.png", "cat/2019/old/3.jpeg", "cat/._1.png", "cat/.hidden.png", "cat/notes.txt",
    "cat/.thumbnails/1.png",
    "dog/4.JPG", "dog/5.pnm", "dog/6.Tiff", "dog/7.webp", "dog/8.bmp", "dog/9.ppm", "dog/10.pgm", "dog/11.tif",
    "dog/copy.png.part", "dog/draft.png~", "dog/x.tmp",
    "bird/1.gif", "bird/2.heic",
    "empty/",
    "Zebra/1.png", "apple/1.png", "éclair/1.png", "eclair/1.png", "10/1.png", "9/1.png",
    ".ipynb_checkpoints/notebook-checkpoint.ipynb", "__MACOSX/cat/._1.png",
    "README.md", "loose.png",
]
with tempfile.TemporaryDirectory() as root:
    for relative in tree:
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path) if not relative.endswith("/") else path, exist_ok=True)
        if not relative.endswith("/"):
            open(path, "wb").close()
    folder = ImageFolder(root, allow_empty=True)
    expected = {
        "torchvision": version,
        "tree": tree,
        "classes": folder.classes,
        "samples": [[os.path.relpath(path, root), label] for path, label in folder.samples],
    }
out = os.path.join(os.path.dirname(__file__), "..", "Tests", "ImagingTests", "Fixtures", "expected-imagefolder.json")
with open(out, "w") as f:
    json.dump(expected, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(json.dumps(expected["classes"], ensure_ascii=False), len(expected["samples"]), "samples")
