"""Every stage's config section, in one torch-free module.

Each stage is built from its own section (plus `Shared`, the few facts several stages
need). The sections live here, not beside the stages, so that parsing and validating a
config never imports torch: a typo in a key is reported in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shared:
    """Facts several stages need, taken from the `decode` section and passed in one way."""

    fps: float = 2.0  # sampled frames per second
    sample_rate: int = 16000  # audio samples per second (mono)
    # Does the shot detector need every decoded frame (tiny) in pass 1?
    shot_frames: bool = False
    # Widths of the stored features, known once pass 1 has run (pass 2's stages need them).
    visual_dim: int = 0
    audio_dim: int = 0

    @property
    def samples_per_frame(self) -> int:
        """Audio samples per sampled frame; must be whole, or audio drifts from the frames."""
        spf = self.sample_rate / self.fps
        if abs(spf - round(spf)) > 1e-9:
            raise ValueError(
                f"decode.sample_rate / decode.fps must be whole, got {self.sample_rate} / "
                f"{self.fps:g}"
            )
        return int(round(spf))


@dataclass
class DecodeConfig:
    fps: float = 2.0  # sampled frames per second of video
    frame_size: int = 224  # sampled frames are resized (squashed) to frame_size x frame_size
    window: int = 32  # sampled frames per window
    sample_rate: int = 16000  # audio resampled to this rate, mono float32
    threads: int = 0  # decoder threads; 0 lets FFmpeg choose
    timeout_s: float = 900.0  # a video that takes longer to decode is reported as an error
    min_decoded_fraction: float = 0.9  # decoding less of the stated duration means truncated

    def shared(self) -> Shared:
        return Shared(self.fps, self.sample_rate)


@dataclass
class MeasureConfig:
    min_loudness_db: float = -60.0  # floor for silence


@dataclass
class VisualConfig:
    backbone: str = "efficientnet_lite0"  # or any torchvision classification model name
    weights: str = "bundled"  # bundled (lite0) | torch-cache | none (seeded init) | a file path
    batch_size: int = 64  # frames per forward pass
    top_k: int = 5  # ImageNet labels kept per frame
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0  # init seed when weights is none
    threads: int = 0  # CPU intra-op threads; 0 keeps torch's (Ray sets it from num_cpus)


@dataclass
class AudioConfig:
    encoder: str = "rnn"  # registered audio encoder (stages.registry)
    n_mels: int = 64
    win_ms: float = 25.0
    hop_ms: float = 10.0
    rnn: str = "gru"  # gru | lstm
    hidden: int = 64  # per direction; the feature is 2 * hidden wide
    layers: int = 1
    checkpoint: str = "bundled"  # bundled | none (seeded init) | a file path
    device: str = "auto"
    seed: int = 0


@dataclass
class FusionConfig:
    model: str = "attention"  # registered fusion model (stages.registry)
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ff: int = 256
    dropout: float = 0.1
    max_context: int = 1024  # frames per attention chunk (8.5 min at 2 fps)
    checkpoint: str = "bundled"  # bundled | none (seeded init) | a file path
    device: str = "auto"
    seed: int = 0


@dataclass
class ShotsConfig:
    detector: str = "content"  # registered (stages.registry): content | transnetv2 | kts
    # content: a cut needs this much mean HSV change (0-255 scale) between two frames...
    min_cut_change: float = 15.0
    # ... and this many times the change of its 2 neighbours each side (adaptive threshold).
    cut_ratio: float = 3.0
    # A gradual transition needs this much change across 25 decoded frames at its peak.
    min_gradual_change: float = 25.0
    max_gradual_s: float = 3.0  # longer raised change is motion, not a dissolve or fade
    min_shot_s: float = 0.5  # boundaries closer than this keep only the strongest
    # transnetv2: a frame is in a transition above this probability (the reference's 0.5).
    transnet_threshold: float = 0.5
    transnet_batch: int = 8  # 100-frame inputs per forward pass
    device: str = "auto"  # for detectors with a model
    min_segment_s: float = 1.0  # KTS never makes a segment shorter than this
    max_segment_s: float = 30.0  # a longer shot is split by KTS where its content changes
    max_change_points: int = 500  # upper bound for KTS's search over the number of change points
    max_mean_segment_s: float = 30.0  # KTS returning longer segments on average counts as "too few"
    fallback_segment_s: float = 5.0  # then segments of about this length are used instead
    max_steps: int = 1200  # longer sequences are segmented on block-averaged features
    use_audio: bool = False  # add audio features to the KTS kernel


@dataclass
class SelectConfig:
    budget: float = 0.15  # summary length as a fraction of the video
    resolution_s: float = 0.1  # knapsack weight unit


@dataclass
class KeyframeConfig:
    jpeg_quality: int = 90
    max_keyframes: int = 0  # at most this many per video, best first; 0: one per selected segment


@dataclass
class TextConfig:
    writer: str = "template"  # registered text writer (stages.registry)
    label_min_prob: float = 0.3  # mean top-1 probability needed to name what a shot shows
    colour_min_fraction: float = 0.15  # a colour is named when it covers this much
    # Median grey-level change per sampled frame; on the training clips moving-object
    # shots have a median of 0.003 (95% above 0.0004) and static shots 0.0.
    motion_threshold: float = 0.001
    silence_db: float = -50.0
    loud_db: float = -18.0
    noise_flatness: float = 0.3  # spectral flatness above this is noise, below is tonal
