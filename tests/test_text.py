"""The narrative writer: summaries and captions that say what was said, shown and written."""

import numpy as np

from stages.records import (
    Probe,
    ScreenLine,
    ScreenText,
    Segments,
    Selection,
    Transcript,
    VideoRecord,
    VideoRef,
)
from stages.settings import TextConfig
from stages.text import NarrativeWriter, centrality, sentences
from tests.records import features_at_2fps


def _record(
    said: list[tuple[float, float, str]] = (),
    kinds: list[str] | None = None,
    written: list[tuple[float, str, int]] = (),
    tags: list[list[str]] | None = None,
    importance: np.ndarray | None = None,
    selected=(False, True, True),
) -> VideoRecord:
    """30 s at 2 fps in three 10-s segments; the last two chosen by default."""
    n = 60
    f = features_at_2fps(
        n,
        colour_hist=np.tile(np.eye(12, dtype=np.float32)[5], (n, 1)),  # all blue
        loudness_db=np.full(n, -70.0, np.float32),
    )
    seg = Segments(
        np.array([0, 20, 40]),
        np.array([20, 40, 60]),
        np.array([0.0, 10.0, 20.0]),
        np.array([10.0, 20.0, 30.0]),
        30.0,
        shot_index=np.array([0, 1, 2]),
    )
    chosen = np.array(selected)
    sel = Selection(
        seg,
        np.array([0.2, 0.6, 0.9]),
        chosen,
        np.flatnonzero(chosen) * 20 + 5,
        np.flatnonzero(chosen),
    )
    tr = Transcript(
        np.array([a for a, _, _ in said], float),
        np.array([b for _, b, _ in said], float),
        [t for _, _, t in said],
        np.full(len(said), 0.9, np.float32),
        kinds or ["speech"] * len(said),
    )
    screen = ScreenText([], np.zeros(0), [ScreenLine(t, x, 0.99, s) for t, x, s in written])
    return VideoRecord(
        VideoRef("v", "/v.mp4"),
        Probe(duration_s=30.0, has_audio=True),
        features=f,
        importance=importance if importance is not None else np.full(n, 0.5),
        selection=sel,
        tags=tags,
        screen_text=screen,
        transcript=tr,
    )


def test_the_summary_leads_with_what_was_said_written_and_shown():
    text = NarrativeWriter()(
        _record(
            said=[(11.0, 13.0, "Welcome back to the evening news.")],
            written=[(1.0, "Chapter 2: The Harbour", 0)],
            tags=[[], ["balloon"], []],
        )
    ).text
    assert text.summary.startswith(
        "Speech: \u201cWelcome back to the evening news.\u201d "
        "On screen: \u201cChapter 2: The Harbour\u201d. Shows balloon."
    )
    assert text.transcript_excerpt == "Welcome back to the evening news."
    assert text.tags == ["balloon"]
    first, second = text.captions
    assert first.text == "shows balloon; says \u201cWelcome back to the evening news.\u201d"
    assert (second.start_s, second.end_s) == (20.0, 30.0)


def test_a_caption_quotes_whole_sentences_said_during_its_segment_only():
    said = [(2.0, 4.0, "Not this one."), (9.0, 12.0, "This crosses in. And this is inside.")]
    cap = NarrativeWriter()(_record(said=said)).text.captions[0]
    assert cap.text == "says \u201cThis crosses in. And this is inside.\u201d"


def test_key_sentences_are_central_and_important_and_come_in_time_order():
    said = [
        (1.0, 3.0, "The harbour opens at dawn."),
        (5.0, 7.0, "Lunch is at noon."),
        (12.0, 14.0, "Boats leave the harbour at dawn."),
        (22.0, 24.0, "The harbour closes when boats return."),
    ]
    importance = np.full(60, 0.2)
    importance[44:48] = 1.0  # the last sentence's moment matters most
    writer = NarrativeWriter(TextConfig(max_quotes=2))
    quotes = writer.key_sentences(_record(said=said, importance=importance))
    assert [q.text for q in quotes] == [
        "Boats leave the harbour at dawn.",
        "The harbour closes when boats return.",
    ]


def test_sentences_are_split_and_timed_by_their_share_of_the_span():
    record = _record(said=[(0.0, 10.0, "One two three. Four five six seven eight nine ten!")])
    first, second = sentences(record)
    assert first.text == "One two three." and second.text.startswith("Four")
    assert first.start_s == 0.0 and 2.0 < first.end_s == second.start_s < 4.0


def test_textrank_puts_the_sentence_sharing_most_words_first():
    rank = centrality(
        [
            "Boats leave early.",
            "Boats and nets fill the harbour.",
            "Nets dry slowly.",
            "The harbour is calm.",
            "Cats sleep.",
        ]
    )
    assert rank.argmax() == 1 and rank.argmin() == 4


def test_without_speech_text_or_tags_each_look_is_said_once():
    text = NarrativeWriter()(_record()).text
    assert text.summary == (
        "Mostly blue, still; silence. 0:30 video, 3 segments; summary of 2 segments (20.0 s)."
    )
    assert text.transcript_excerpt == "" and text.tags == []


def test_unclear_speech_is_reported_and_never_quoted():
    record = _record(said=[(11.0, 13.0, "")], kinds=["unclear"])
    text = NarrativeWriter()(record).text
    assert "Possible speech was heard but not transcribed" in text.summary
    assert "\u201c" not in text.summary and text.transcript_excerpt == ""
