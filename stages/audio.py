"""Audio encoder stage: torchaudio log-mel, then a bidirectional GRU/LSTM, pooled to one
vector per sampled frame, with a mask that is False where there is no audio.

The recurrent weights come from a checkpoint that `vidgist train` writes by teaching the
encoder to tell the sample world's sound events apart (silence, tone, noise, chirp,
chord); with `checkpoint: none` it runs from a seeded init and says so in its version.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
import torchaudio
from torch import nn

from stages import checkpoint as ckpt
from stages.base import WindowStage
from stages.devices import autocast, pick_device, to_device, torch_threads
from stages.records import Windows
from stages.settings import AudioConfig, Shared

AUDIO_EVENTS = ("silence", "tone", "noise", "chirp", "chord", "speech")
BUNDLED = "audio_rnn.pt"


def architecture(cfg: AudioConfig, sample_rate: int) -> dict:
    keys = ("n_mels", "win_ms", "hop_ms", "rnn", "hidden", "layers")
    return {**{k: asdict(cfg)[k] for k in keys}, "sample_rate": sample_rate}


class LogMel(nn.Module):
    """Waveform [B, N] in [-1, 1] -> log-mel [B, T, n_mels], scaled to roughly unit range."""

    def __init__(self, sample_rate: int, n_mels: int, win_ms: float, hop_ms: float):
        super().__init__()
        win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=win, win_length=win, hop_length=self.hop, n_mels=n_mels
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        # Fixed affine, not per-clip normalisation: absolute loudness tells sound from silence.
        return ((self.mel(wave.float()) + 1e-6).log() + 6.0).div(4.0).transpose(1, 2)


class AudioRNN(nn.Module):
    """Log-mel -> bidirectional RNN -> one vector per hop; pure compute, no I/O."""

    def __init__(
        self,
        sample_rate: int,
        n_mels: int,
        win_ms: float,
        hop_ms: float,
        rnn: str,
        hidden: int,
        layers: int,
    ):
        super().__init__()
        self.frontend = LogMel(sample_rate, n_mels, win_ms, hop_ms)
        cell = {"gru": nn.GRU, "lstm": nn.LSTM}[rnn]
        self.rnn = cell(n_mels, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.out_dim = 2 * hidden

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.frontend(wave))
        return h

    def per_frame(self, wave: torch.Tensor, n_frames: int, samples_per_frame: int) -> torch.Tensor:
        """[B, n_frames * spf] -> [B, n_frames, out_dim]: the mean over each frame's hops."""
        h = self.forward(wave)
        per = samples_per_frame // self.frontend.hop
        h = h[:, : n_frames * per]
        return h.reshape(h.shape[0], n_frames, per, h.shape[-1]).mean(2)


class AudioEventHead(nn.Module):
    """Training head: per-frame audio event class from the encoder's vector."""

    def __init__(self, dim: int, n_classes: int = len(AUDIO_EVENTS)):
        super().__init__()
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


def describe(cfg: AudioConfig) -> tuple[str, bool]:
    """(version string, trained?) of the model this config loads, without loading it."""
    path = ckpt.resolve(cfg.checkpoint, BUNDLED)
    return f"audio-{cfg.rnn}:{ckpt.file_digest(path, 8)}", path is not None


def build_model(cfg: AudioConfig, sample_rate: int) -> AudioRNN:
    return AudioRNN(
        sample_rate, cfg.n_mels, cfg.win_ms, cfg.hop_ms, cfg.rnn, cfg.hidden, cfg.layers
    )


class AudioEncoder(WindowStage):
    """Stage: windows with `wave` in, `audio` features and `audio_mask` out (wave dropped)."""

    name = "audio"
    config = AudioConfig

    describe = staticmethod(describe)  # its weights' digest goes into the version strings

    def __init__(self, cfg: AudioConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.samples_per_frame = self.shared.samples_per_frame
        self.device = pick_device(self.cfg.device)
        torch.manual_seed(self.cfg.seed)
        sample_rate = self.shared.sample_rate
        self.model = build_model(self.cfg, sample_rate)
        ckpt.load_into(
            self.model, self.cfg.checkpoint, BUNDLED, architecture(self.cfg, sample_rate)
        )
        self.version, self.trained = self.describe(self.cfg)
        self.model.eval().to(self.device)
        self.feature_dim = self.model.out_dim

    @torch.inference_mode()
    def encode(
        self, wave: np.ndarray, wave_from: np.ndarray, wave_to: np.ndarray, n_frames: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """[B, n_frames * spf] float32 -> features [B, n_frames, D], mask [B, n_frames]."""
        spf = self.samples_per_frame
        # A frame has audio when the middle of its slice of samples is real audio.
        centre = (np.arange(n_frames)[None, :] + 0.5) * spf
        mask = (centre >= np.asarray(wave_from)[:, None]) & (centre < np.asarray(wave_to)[:, None])
        feats = np.zeros((len(wave), n_frames, self.feature_dim), np.float32)
        has = mask.any(1)
        if has.any():
            x = to_device(wave[has], self.device)
            with autocast(self.device), torch_threads(self.cfg.threads):
                h = self.model.per_frame(x, n_frames, spf)
            feats[has] = h.float().cpu().numpy()
        feats[~mask] = 0.0
        return feats, mask

    def __call__(self, windows: Windows) -> Windows:
        n_frames = windows.time_s.shape[1]
        windows.audio, windows.audio_mask = self.encode(
            windows.wave, windows.wave_from, windows.wave_to, n_frames
        )
        windows.wave = windows.wave_from = windows.wave_to = None
        return windows
