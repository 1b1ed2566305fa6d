"""The parts a user picks by name in config, the way PySceneDetect picks detectors.

Each slot maps names to stage classes, given as "module:Class" so that listing and
checking names imports nothing heavy (config errors are reported without torch). Adding
an implementation is one module and one line here (or one `register` call, for code
outside vidgist). The chosen names are part of their config sections, so they enter
`model_version` with them.
"""

from __future__ import annotations

import importlib

# slot (the config key that chooses) -> name -> implementation
_SLOTS: dict[str, dict[str, str | type]] = {
    "decode.decoder": {"pyav": "stages.decode:Decoder"},
    "shots.detector": {
        "content": "stages.shots:ContentShots",
        "transnetv2": "stages.transnet:TransNetShots",
        "kts": "stages.shots:KTSShots",
    },
    "audio.encoder": {"rnn": "stages.audio:AudioEncoder"},
    "fusion.model": {"attention": "stages.fusion:FusionScorer"},
    "text.writer": {
        "narrative": "stages.text:NarrativeWriter",
        "template": "stages.text:TemplateWriter",
    },
}


class UnknownName(ValueError):
    """A config names an implementation that is not registered."""


def slots() -> tuple[str, ...]:
    return tuple(_SLOTS)


def names(slot: str) -> list[str]:
    return sorted(_SLOTS[slot])


def register(slot: str, name: str, implementation: str | type) -> None:
    """Make `implementation` ("module:Class" or the class) choosable as `slot=name`."""
    if slot not in _SLOTS:
        raise KeyError(f"no registry slot {slot!r}; slots: {', '.join(_SLOTS)}")
    _SLOTS[slot][name] = implementation


def unregister(slot: str, name: str) -> None:
    _SLOTS[slot].pop(name, None)


def check(slot: str, name: str) -> None:
    if name not in _SLOTS[slot]:
        raise UnknownName(
            f"{slot}={name!r} is not registered; choose one of: {', '.join(names(slot))}"
        )


def pass1_part(detector: type) -> type | None:
    """The window stage a shot detector runs in pass 1 on every decoded frame (its
    `scorer`), or None for a detector that works on the sampled frames' features alone."""
    return getattr(detector, "scorer", None)


def resolve(slot: str, name: str) -> type:
    """The stage class registered as `slot=name` (imported on first use)."""
    check(slot, name)
    target = _SLOTS[slot][name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target
