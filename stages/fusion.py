"""Fusion stage: temporal attention over projected visual + audio features -> importance.

Each sampled frame's visual and audio vectors are normalised, projected to one width,
summed (audio only where the mask says there is audio), given a sinusoidal position and
passed through a small Transformer encoder; a linear head and a sigmoid give an
importance in [0, 1] per frame. The encoder's output is kept as contextual features for
the text head. Long videos are scored in overlapping chunks of `max_context` frames so
attention memory stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from stages import checkpoint as ckpt
from stages.devices import autocast, pick_device, to_device

BUNDLED = "fusion.pt"


@dataclass
class FusionConfig:
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ff: int = 256
    dropout: float = 0.1
    max_context: int = 1024  # frames per attention chunk (8.5 min at 2 fps)
    checkpoint: str = "bundled"  # bundled | none (seeded init) | a file path
    device: str = "auto"
    seed: int = 0


def architecture(cfg: FusionConfig, visual_dim: int, audio_dim: int) -> dict:
    keys = ("d_model", "heads", "layers", "ff")
    return {**{k: asdict(cfg)[k] for k in keys}, "visual_dim": visual_dim, "audio_dim": audio_dim}


def sinusoid(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
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
    ):
        super().__init__()
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
        pad_mask: torch.Tensor | None = None,  # [B, T] bool, True on padding
    ) -> tuple[torch.Tensor, torch.Tensor]:
        change = torch.diff(visual, dim=1, prepend=visual[:, :1])
        x = self.visual_in(visual) + self.change_in(change)
        x = x + self.audio_in(audio) * audio_mask[..., None].to(visual.dtype)
        x = x + sinusoid(x.shape[1], self.d_model, x.device).to(x.dtype)
        ctx = self.norm(self.encoder(x, src_key_padding_mask=pad_mask))
        return torch.sigmoid(self.head(ctx).squeeze(-1)), ctx


def describe(cfg: FusionConfig) -> tuple[str, bool]:
    """(version string, trained?) of the model this config loads, without loading it."""
    path = ckpt.resolve(cfg.checkpoint, BUNDLED)
    return f"fusion:{ckpt.file_digest(path, 8)}", path is not None


def build_model(cfg: FusionConfig, visual_dim: int, audio_dim: int) -> TemporalAttentionScorer:
    return TemporalAttentionScorer(
        visual_dim, audio_dim, cfg.d_model, cfg.heads, cfg.layers, cfg.ff, cfg.dropout
    )


def chunk_spans(length: int, size: int) -> list[tuple[int, int]]:
    """Overlapping [start, end) spans of at most `size` covering 0..length (half overlap)."""
    if length <= size:
        return [(0, length)]
    step = size // 2
    spans = [(s, min(s + size, length)) for s in range(0, length - size + step, step)]
    if spans[-1][1] < length:
        spans.append((length - size, length))
    return spans


class FusionScorer:
    """Stage: one video's features in, `importance` (and contextual features) out."""

    def __init__(
        self, cfg: FusionConfig | None = None, visual_dim: int = 1280, audio_dim: int = 128
    ):
        self.cfg = cfg or FusionConfig()
        self.device = pick_device(self.cfg.device)
        torch.manual_seed(self.cfg.seed)
        self.model = build_model(self.cfg, visual_dim, audio_dim)
        path = ckpt.resolve(self.cfg.checkpoint, BUNDLED)
        self.meta: dict = {}
        if path is not None:
            state, self.meta = ckpt.load(path)
            ckpt.check_matches(self.meta, architecture(self.cfg, visual_dim, audio_dim), path)
            self.model.load_state_dict(state)
        self.version, self.trained = describe(self.cfg)
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
            v = to_device(visual[a:b][None].astype(np.float32), self.device)
            au = to_device(audio[a:b][None].astype(np.float32), self.device)
            m = to_device(audio_mask[a:b][None].astype(bool), self.device)
            with autocast(self.device):
                s, _ = self.model(v, au, m)
            # Triangular weights: a frame trusts the chunk in which it sits most centrally.
            n = b - a
            w = np.minimum(np.arange(1, n + 1), np.arange(n, 0, -1)).astype(np.float64)
            total[a:b] += s[0].float().cpu().numpy() * w
            weight[a:b] += w
        return (total / weight).astype(np.float32)

    def __call__(self, row: dict) -> dict:
        importance = self.score(row["visual"], row["audio_feat"], row["audio_mask"])
        return {**row, "importance": importance}
