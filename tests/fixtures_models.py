"""Model fixtures (the offline encoder, a tiny random CLIP checkpoint).

Registered as a pytest plugin by conftest. Session-scoped fixtures run before
the per-test ``_private_home`` fixture, so each one points LOOKALIKE_HOME at a
session folder of its own while it works: no fixture ever writes into the
developer's real cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# A tiny open_clip architecture: a 2-layer ViT (width 64) on 32x32 images and a
# 2-layer text transformer (width 64, the real 77-token context and vocabulary,
# so open_clip's own tokenizer works), into a 32-d joint space.
TINY_CLIP_ARCH = "tiny-test-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def _session_home(tmp_path_factory, label: str):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp(label)
    mp.setenv("LOOKALIKE_HOME", str(home))
    mp.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    return mp


@pytest.fixture(scope="session")
def offline_encoder(tmp_path_factory):
    """The real offline encoder, loaded once per test session (and reused by load_encoder)."""
    from lookalike.core.encoders import load_encoder

    mp = _session_home(tmp_path_factory, "offline-model-home")
    try:
        return load_encoder("offline")
    finally:
        mp.undo()


def build_tiny_clip_state(seed: int = 0) -> dict:
    """Random weights of the tiny architecture (deterministic for a seed)."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def tiny_clip_checkpoint(tmp_path_factory) -> Path:
    """A tiny random CLIP saved in our self-describing checkpoint format.

    ``load_encoder("clip", model_file=path)`` reads the embedded open_clip
    config, registers the architecture with open_clip, builds it and loads the
    file with ``open_clip.load_checkpoint``: the route a user's checkpoint and
    downloaded weights take.
    """
    from lookalike.core.encoders.clip import save_checkpoint

    path = tmp_path_factory.mktemp("tiny-clip") / "tiny-clip.pt"
    return save_checkpoint(path, build_tiny_clip_state(), TINY_CLIP_CONFIG, architecture=TINY_CLIP_ARCH)
