"""Let torchvision's Python code import beside the CPU build of torch, without its compiled ops.

PyPI's torchvision wheels are built against the CUDA build of torch: their
compiled operators (``torchvision/_C.so``: nms, roi_align and friends) link
CUDA's libraries, which the CPU bundle leaves out. torchvision copes with a
missing ``_C`` everywhere except at import, where it registers shape
functions for two operators by name (``torchvision::nms``, ``torchvision::qnms``)
and fails when the operator was never declared.

Lookalike uses torchvision's transforms (through open_clip), its ResNet-50
model and its ImageNet class list: pure Python on top of torch. So when
``_C`` is absent or cannot load, this hook declares those two operator schemas (no kernels)
just before torchvision is first imported. A call to a compiled operator
still fails, with torchvision's own "Couldn't load custom C++ ops" error.

Nothing is imported until torchvision is: torch stays a lazy import.
Used as a PyInstaller runtime hook in the bundle, and through a ``.pth`` file
in the build environment (so PyInstaller's analysis can import torchvision).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

_declared: list = []  # keeps the torch.library.Library alive


def _compiled_ops_load(spec) -> bool:
    """Load torchvision's ``_C`` the way torchvision does; False when it is absent or cannot load."""
    import os

    import torch

    for folder in spec.submodule_search_locations or ():
        for name in os.listdir(folder):
            if name.startswith("_C.") and name.endswith((".so", ".pyd")):
                try:
                    torch.ops.load_library(os.path.join(folder, name))
                    return True
                except (ImportError, OSError):
                    return False
    return False


def _declare_ops() -> None:
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _declared.append(lib)


class _TorchvisionWithoutOps(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)  # once is enough; find the real package
        spec = importlib.util.find_spec("torchvision")
        if spec is not None and not _compiled_ops_load(spec):
            _declare_ops()
        return spec


if not any(isinstance(f, _TorchvisionWithoutOps) for f in sys.meta_path):
    sys.meta_path.insert(0, _TorchvisionWithoutOps())
