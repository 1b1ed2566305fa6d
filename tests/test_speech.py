"""The speech stage: what was said comes back as timed English; nothing is invented."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.sources import make_sources
from stages import speech
from stages.decode import probe
from stages.metrics import word_errors
from stages.records import VideoRecord
from stages.settings import SpeechConfig
from stages.speech import Heard, SpeechRecognizer, looped, quietest_cut, split_at_pauses
from tests.conftest import SPOKEN


def _record(path) -> VideoRecord:
    (ref,) = make_sources([str(path)])
    return VideoRecord(ref, probe(ref.uri))


@pytest.fixture(scope="module")
def recognizer() -> SpeechRecognizer:
    return SpeechRecognizer(SpeechConfig(threads=1))


def test_a_spoken_sentence_comes_back_as_timed_english(recognizer, talking_clip):
    tr = recognizer(_record(talking_clip)).transcript
    spoken = tr.speech
    assert len(spoken) == 1, (tr.text, tr.kind)
    (i,) = spoken
    errors, words = word_errors(SPOKEN, tr.text[i])
    assert errors <= 0.25 * words, tr.text[i]
    # Said from 3.3 s (0.3 s into the second shot) for about 2.5 s; Whisper's word
    # times are good to a few tenths of a second.
    assert tr.start_s[i] == pytest.approx(3.3, abs=0.5) and tr.end_s[i] <= 7.5
    assert 0.6 <= tr.confidence[i] <= 1.0


def test_silence_tones_and_noise_give_no_words(recognizer, tiny_clip):
    tr = recognizer(_record(tiny_clip)).transcript
    assert len(tr.speech) == 0, tr.text


def test_a_video_without_an_audio_track_has_an_empty_transcript(recognizer, silent_clip):
    record = _record(silent_clip)
    assert not record.probe.has_audio
    assert len(recognizer(record).transcript) == 0


def test_long_audio_is_read_in_chunks_cut_at_pauses_with_the_same_words(recognizer, talking_clip):
    record = _record(talking_clip)
    small = SpeechRecognizer(replace(recognizer.cfg, chunk_s=6.0))
    pieces = list(small.chunks(record))
    assert len(pieces) >= 3
    # Contiguous and complete: each chunk starts where the previous one ended.
    ends = [offset + len(audio) / speech.SAMPLE_RATE for offset, audio in pieces]
    np.testing.assert_allclose([o for o, _ in pieces[1:]], ends[:-1], atol=1e-6)
    assert ends[-1] == pytest.approx(record.probe.duration_s, abs=0.1)
    tr = small(record).transcript
    errors, words = word_errors(SPOKEN, " ".join(tr.text[i] for i in tr.speech))
    assert errors <= 0.25 * words


def test_a_chunk_is_cut_in_the_quietest_moment_near_its_end():
    sr = 1000
    audio = np.ones(10 * sr, np.float32)
    audio[8500:8520] = 0.0  # a gap between words...
    audio[9000:9400] = 0.0  # ... and a pause between sentences, nearer the end
    assert 9000 <= quietest_cut(audio, sr) < 9400
    # Never in the first half, so every chunk moves on.
    assert quietest_cut(np.ones(100, np.float32), 1000) >= 50


def test_a_segment_is_split_where_its_words_pause():
    words = [SimpleNamespace(start=s, end=s + 0.3) for s in (0.0, 0.4, 0.8, 3.0, 3.4)]
    runs = split_at_pauses(words, max_pause_s=1.0)
    assert [len(r) for r in runs] == [3, 2]


def test_loops_and_unsure_spans_are_marked_unclear_not_transcribed():
    assert looped("Chinese letter, Chinese letter, Japanese letter, Japanese letter,", 0.5)
    assert looped("1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2-1-2", 0.5)
    assert not looped("Today we look at the weather across the country.", 0.5)
    r = SpeechRecognizer(SpeechConfig(enabled=False))
    sure = Heard(0.0, 2.0, "Welcome back.", -0.3, 0.05, 0.9, False)
    assert r.trusted(sure)
    assert not r.trusted(replace(sure, avg_logprob=-1.4))  # e.g. German heard as English
    assert not r.trusted(replace(sure, word_prob=0.4))  # "Mm-hmm" over music
    assert not r.trusted(replace(sure, no_speech_prob=0.9))
    assert not r.trusted(replace(sure, looped=True))


def test_a_disabled_stage_gives_an_empty_transcript_without_loading_a_model(tiny_clip):
    r = SpeechRecognizer(SpeechConfig(enabled=False))
    assert r.model is None and len(r(_record(tiny_clip)).transcript) == 0


def test_bundled_weights_whose_hash_differs_are_refused(monkeypatch):
    monkeypatch.setitem(speech.BUNDLED_SHA256, "config.json", "0" * 64)
    with pytest.raises(speech.ModelMismatch, match=r"config\.json has SHA-256"):
        speech.bundled_model_dir()
