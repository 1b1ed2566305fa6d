"""One-line reasons for bad input, shared by every stage that reports them."""

from __future__ import annotations


class BadInput(Exception):
    """The input itself is unusable (truncated, no video stream, too slow to decode...)."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` on one line, without FFmpeg's errno noise, at most `limit` chars."""
    msg = str(exc).replace("\n", " ").strip()
    errno = getattr(exc, "errno", None)
    if errno is not None and msg.startswith(f"[Errno {errno}] "):
        msg = msg[len(f"[Errno {errno}] ") :]
    text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
