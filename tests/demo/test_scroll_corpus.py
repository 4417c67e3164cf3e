"""The demo corpus's long paintings (issue 20): whole scrolls for the aspect-ratio buckets."""

from __future__ import annotations

from demo import corpus
from generation.diffusion.buckets import choose_bucket, make_buckets


def test_scrolls_are_tall_and_wide_with_their_annotations_in_place():
    hanging, hand = corpus.scroll_samples(2, size=128)
    assert hanging.image.size == (128, 384) and hand.image.size == (512, 128)
    assert hanging.caption.startswith("hanging scroll, ")
    assert hand.caption.startswith("handscroll, ")
    for sample in (hanging, hand):
        width, height = sample.image.size
        regions = [a.region for a in sample.annotations if a.region is not None]
        assert regions  # the panels' annotations came along
        assert all(x + w <= width and y + h <= height for x, y, w, h in regions)
    # both train whole at 512 px: the 1:3 scroll loses at most a sliver, the 4:1 nothing
    buckets = make_buckets(512)
    assert choose_bucket(*hand.image.size, buckets).kept == 1.0
    assert choose_bucket(*hanging.image.size, buckets).kept > 0.9
    # deterministic
    again = corpus.scroll_samples(2, size=128)
    assert again[0].image.tobytes() == hanging.image.tobytes()
