"""Fusion stage: temporal attention over projected visual + audio features -> importance.

Each sampled frame's visual and audio vectors are normalised, projected to one width,
summed (audio only where the mask says there is audio), given a sinusoidal position and
passed through a small Transformer encoder; a linear head and a sigmoid give an
importance in [0, 1] per frame. Long videos are scored in overlapping chunks of
`max_context` frames so attention memory stays bounded; positions stay absolute, so a
chunk sees the same inputs as the whole sequence would.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from stages import checkpoint as ckpt
from stages.base import VideoStage
from stages.devices import autocast, pick_device, to_device
from stages.records import VideoRecord
from stages.settings import FusionConfig, Shared

BUNDLED = "fusion.pt"


INPUTS = ("visual+audio", "visual", "audio")
# What checkpoints written before `inputs` existed saw.
LEGACY_ARCHITECTURE = {"inputs": "visual+audio"}


def architecture(cfg: FusionConfig, visual_dim: int, audio_dim: int) -> dict:
    keys = ("d_model", "heads", "layers", "ff", "inputs")
    return {**{k: asdict(cfg)[k] for k in keys}, "visual_dim": visual_dim, "audio_dim": audio_dim}


def sinusoid(
    length: int, dim: int, device: torch.device | None = None, offset: int = 0
) -> torch.Tensor:
    pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class TemporalAttentionScorer(nn.Module):
    def __init__(
        self,
        visual_dim: int,
        audio_dim: int,
        d_model: int,
        heads: int,
        layers: int,
        ff: int,
        dropout: float,
        inputs: str = "visual+audio",
    ):
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"fusion.inputs must be one of {INPUTS}, not {inputs!r}")
        self.sees_visual, self.sees_audio = "visual" in inputs, "audio" in inputs
        self.visual_in = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, d_model))
        # Change between neighbouring frames: a pooled CNN vector barely moves when an
        # object moves, but its frame-to-frame difference does.
        self.change_in = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, d_model))
        self.audio_in = nn.Sequential(nn.LayerNorm(audio_dim), nn.Linear(audio_dim, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)
        self.d_model = d_model

    def forward(
        self,
        visual: torch.Tensor,  # [B, T, Dv]
        audio: torch.Tensor,  # [B, T, Da]
        audio_mask: torch.Tensor,  # [B, T] bool, True where there is audio
        offset: int = 0,  # position of the first step (a chunk of a longer sequence)
    ) -> torch.Tensor:
        """Importance [B, T] in [0, 1]."""
        x = torch.zeros(*visual.shape[:2], self.d_model, device=visual.device, dtype=visual.dtype)
        if self.sees_visual:
            change = torch.diff(visual, dim=1, prepend=visual[:, :1])
            x = x + self.visual_in(visual) + self.change_in(change)
        if self.sees_audio:
            x = x + self.audio_in(audio) * audio_mask[..., None].to(visual.dtype)
        x = x + sinusoid(x.shape[1], self.d_model, x.device, offset).to(x.dtype)
        ctx = self.norm(self.encoder(x))
        return torch.sigmoid(self.head(ctx).squeeze(-1))


def describe(cfg: FusionConfig) -> tuple[str, bool]:
    """(version string, trained?) of the model this config loads, without loading it."""
    path = ckpt.resolve(cfg.checkpoint, BUNDLED)
    return f"fusion:{ckpt.file_digest(path, 8)}", path is not None


def build_model(cfg: FusionConfig, visual_dim: int, audio_dim: int) -> TemporalAttentionScorer:
    return TemporalAttentionScorer(
        visual_dim, audio_dim, cfg.d_model, cfg.heads, cfg.layers, cfg.ff, cfg.dropout, cfg.inputs
    )


def refuse_other_features(meta: dict, features: str, path) -> None:
    """A model scores only the features it was trained on: another backbone's vectors (even
    of the same width) mean other things in every dimension."""
    trained_on = meta.get("encoder_version")
    if trained_on and trained_on != features:
        raise ckpt.CheckpointMismatch(
            f"fusion checkpoint {path} was trained on features {trained_on!r}, not on "
            f"{features!r}; retrain it on these with `vidgist train` or pick another checkpoint"
        )


def load_trained(path, features: str, device: str = "auto") -> FusionScorer:
    """The fusion stage for a checkpoint file, built from its own metadata, after checking
    that `features` (an encoder version or a data set's backbone) is what it was trained on."""
    _, meta = ckpt.load(path)
    refuse_other_features(meta, features, path)
    arch = {**LEGACY_ARCHITECTURE, **meta["architecture"]}
    cfg = FusionConfig(
        **{k: arch[k] for k in ("d_model", "heads", "layers", "ff", "inputs")},
        checkpoint=str(path),
        device=device,
    )
    return FusionScorer(cfg, Shared(visual_dim=arch["visual_dim"], audio_dim=arch["audio_dim"]))


def chunk_spans(length: int, size: int) -> list[tuple[int, int]]:
    """Overlapping [start, end) spans of at most `size` covering 0..length (half overlap)."""
    if length <= size:
        return [(0, length)]
    step = size // 2
    spans = [(s, min(s + size, length)) for s in range(0, length - size + step, step)]
    if spans[-1][1] < length:
        spans.append((length - size, length))
    return spans


class FusionScorer(VideoStage):
    """Stage: a video's features in, its `importance` per sampled frame out.

    The feature widths come from `shared.visual_dim` / `shared.audio_dim` (what pass 1
    wrote), so a checkpoint for other features is refused when the stage is built.
    """

    name = "fusion"
    config = FusionConfig

    describe = staticmethod(describe)  # its weights' digest goes into the version strings

    def __init__(self, cfg: FusionConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.device = pick_device(self.cfg.device)
        torch.manual_seed(self.cfg.seed)
        dims = (self.shared.visual_dim, self.shared.audio_dim)
        if not all(dims):
            raise ValueError("fusion needs the stored feature widths: shared.visual_dim/audio_dim")
        self.model = build_model(self.cfg, *dims)
        arch = architecture(self.cfg, *dims)
        self.meta = ckpt.load_into(
            self.model, self.cfg.checkpoint, BUNDLED, arch, LEGACY_ARCHITECTURE
        )
        self.version, self.trained = self.describe(self.cfg)
        self.model.eval().to(self.device)

    @torch.inference_mode()
    def score(self, visual: np.ndarray, audio: np.ndarray, audio_mask: np.ndarray) -> np.ndarray:
        """[T, Dv], [T, Da], [T] -> importance [T] in [0, 1]."""
        t = len(visual)
        if t == 0:
            return np.zeros(0, np.float32)
        total = np.zeros(t)
        weight = np.zeros(t)
        for a, b in chunk_spans(t, self.cfg.max_context):
            # One step of lead-in, so the chunk's first frame sees its true visual change.
            lead = 1 if a > 0 else 0
            span = slice(a - lead, b)
            v = to_device(visual[span][None].astype(np.float32), self.device)
            au = to_device(audio[span][None].astype(np.float32), self.device)
            m = to_device(audio_mask[span][None].astype(bool), self.device)
            with autocast(self.device):
                s = self.model(v, au, m, offset=a - lead)[0, lead:]
            # Triangular weights: a frame trusts the chunk in which it sits most centrally.
            n = b - a
            w = np.minimum(np.arange(1, n + 1), np.arange(n, 0, -1)).astype(np.float64)
            total[a:b] += s.float().cpu().numpy() * w
            weight[a:b] += w
        return (total / weight).astype(np.float32)

    def score_visual(self, visual: np.ndarray) -> np.ndarray:
        """Importance from visual features alone (data sets without sound, e.g. SumMe's h5)."""
        t = len(visual)
        return self.score(
            visual, np.zeros((t, self.shared.audio_dim), np.float32), np.zeros(t, bool)
        )

    def __call__(self, record: VideoRecord) -> VideoRecord:
        f = record.features
        record.importance = self.score(f.visual, f.audio, f.audio_mask)
        return record
