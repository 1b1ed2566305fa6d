"""The 1000 ImageNet-1k class names, in class order: the labels of the CNN's classifier
and of the tags.

A text file beside this module, written from torchvision's own list (a test checks they
agree), so that the tagger, which runs in pass 2's workers, need not import torchvision.
"""

from __future__ import annotations

import functools
from pathlib import Path

CATEGORIES_FILE = Path(__file__).with_name("imagenet_categories.txt")


@functools.cache
def imagenet_categories() -> list[str]:
    return CATEGORIES_FILE.read_text(encoding="utf-8").splitlines()
