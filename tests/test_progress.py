"""The compact progress line a scheduled job's log gets."""

from pipeline.progress import Progress


def test_a_line_is_logged_only_when_the_interval_has_passed_with_rate_and_eta():
    now = [0.0]
    lines: list[str] = []
    p = Progress(10, lines.append, every_s=5.0, clock=lambda: now[0])
    now[0] = 2.0
    p.decoded(30.0)
    assert lines == []  # too soon
    now[0] = 6.0
    p.finished(ok=1, errors=1)
    assert lines == [
        "progress: 2/10 videos done, 1 errors; 30 s of video decoded at 5.0 s/s; ETA 0m24s"
    ]
    now[0] = 7.0
    p.decoded(10.0)
    assert len(lines) == 1


def test_no_line_is_logged_when_progress_lines_are_off():
    lines: list[str] = []
    now = [0.0]
    p = Progress(3, lines.append, every_s=0.0, clock=lambda: now[0])
    now[0] = 100.0
    p.finished(ok=3, errors=0)
    assert lines == []
