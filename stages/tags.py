"""Tags stage: what each segment shows, as the ImageNet labels that hold across it.

The visual CNN's classifier head already gives every sampled frame its top labels (pass
1 stores them). A segment is tagged with a label only when the CNN is confident of it on
most of the segment's frames: one confident frame is a guess, a label that persists
through a shot is an observation. No tag is better than a wrong one, so an untrained
encoder, a short segment or a hesitant CNN gives none.
"""

from __future__ import annotations

import numpy as np

from stages.base import VideoStage
from stages.imagenet import imagenet_categories
from stages.records import Features, VideoRecord
from stages.settings import Shared, TagsConfig


class Tagger(VideoStage):
    """Stage: a video's segments and per-frame labels in, tags per segment out."""

    name = "tags"
    config = TagsConfig

    def __init__(self, cfg: TagsConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.categories = imagenet_categories()

    def tag(self, f: Features, a: int, b: int) -> list[str]:
        """Labels confident on at least `min_fraction` of frames [a, b), most frequent first."""
        c = self.cfg
        n = b - a
        if not c.enabled or not f.visual_trained or n < max(1, c.min_frames):
            return []
        ids, probs = f.label_ids[a:b], f.label_probs[a:b]
        confident = (probs >= c.min_prob) & (ids >= 0)
        labels, frames = np.unique(ids[confident], return_counts=True)
        # A label appears at most once per frame (top-k are distinct), so counts are frames.
        order = np.argsort(-frames, kind="stable")
        return [
            self.categories[int(labels[i])].lower()
            for i in order[: c.max_tags]
            if frames[i] >= c.min_fraction * n
        ]

    def __call__(self, record: VideoRecord) -> VideoRecord:
        seg, f = record.selection.segments, record.features
        record.tags = [
            self.tag(f, int(seg.first_step[s]), int(seg.last_step[s])) for s in range(len(seg))
        ]
        return record
