"""The procedural demo corpus: deterministic, and its captions/annotations are true."""

import numpy as np
import pytest

from demo.corpus import (
    ATLAS_MOTIFS,
    CULTURAL_SEMIOTIC,
    DIRECTIONAL,
    GENERIC_COLORS,
    ICONOGRAPHIC,
    MOTIF_TERMS,
    SILK_GROUNDS,
    atlas_samples,
    demo_passages,
    generic_samples,
    landscape_samples,
)

CATEGORIES = {ICONOGRAPHIC, DIRECTIONAL, CULTURAL_SEMIOTIC}


def _near(arr: np.ndarray, rgb, tol: float) -> np.ndarray:
    return np.abs(arr.astype(float) - np.array(rgb, dtype=float)).sum(axis=-1) <= tol


def _crop(img, region):
    x, y, w, h = region
    return np.asarray(img)[y : y + h, x : x + w]


@pytest.mark.parametrize("make", [atlas_samples, landscape_samples, generic_samples])
def test_same_seed_same_pixels_and_prefix_stable(make):
    a = make(4, size=64, seed=3)
    b = make(6, size=64, seed=3)
    c = make(4, size=64, seed=4)
    for x, y in zip(a, b[:4], strict=True):
        assert x.key == y.key and x.caption == y.caption
        assert x.image.tobytes() == y.image.tobytes()
    assert any(x.image.tobytes() != z.image.tobytes() for x, z in zip(a, c, strict=True))


@pytest.mark.parametrize("size", [64, 160])
@pytest.mark.parametrize("make", [atlas_samples, landscape_samples, generic_samples])
def test_images_size_and_annotations_well_formed(make, size):
    for s in make(8, size=size, seed=1):
        assert s.image.size == (size, size) and s.image.mode == "RGB"
        assert s.caption and s.title["en"]
        for ann in s.annotations:
            assert ann.category in CATEGORIES
            assert ann.motifs and all(m in MOTIF_TERMS for m in ann.motifs)
            assert ann.meaning["en"]
            if ann.region is not None:
                x, y, w, h = ann.region
                assert 0 <= x and 0 <= y and w > 0 and h > 0
                assert x + w <= size and y + h <= size


def test_atlas_motifs_are_drawn_where_annotated_and_named_in_caption():
    for s in atlas_samples(12, size=128, seed=0):
        assert s.caption.startswith("Atlas silk, ikat pattern")
        assert "vertical warp bands" in s.caption
        icon = [a for a in s.annotations if a.category == ICONOGRAPHIC]
        assert icon, s.key
        for ann in icon:
            (motif,) = ann.motifs
            assert motif in ATLAS_MOTIFS
            assert motif.rstrip("e") in s.caption  # "lozenge chain", "combs", "almonds", ...
            assert ann.region[2] < 128 / 2  # a column, not the whole cloth
            inside = _near(_crop(s.image, ann.region), ann.ink, 60).mean()
            assert inside > 0.05, (s.key, motif, inside)
        # Every annotated motif has a cultural reading over the same region.
        readings = {(a.motifs, a.region) for a in s.annotations if a.category == CULTURAL_SEMIOTIC}
        assert {(a.motifs, a.region) for a in icon} == readings


def test_atlas_ikat_edges_are_feathered_along_the_warp():
    # Ikat blurs along the warp (vertical): neighbours differ more across columns than rows.
    s = atlas_samples(1, size=128, seed=0)[0]
    arr = np.asarray(s.image, dtype=float)
    across = np.abs(np.diff(arr, axis=1)).mean()
    along = np.abs(np.diff(arr, axis=0)).mean()
    assert across > along


def test_landscape_objects_are_ink_on_a_silk_ground():
    seen = set()
    for s in landscape_samples(16, size=128, seed=0):
        assert s.caption.startswith("ink landscape on silk")
        arr = np.asarray(s.image, dtype=float)
        corner = arr[:6, :6].reshape(-1, 3).mean(axis=0)  # the sky is bare silk
        assert min(np.abs(corner - np.array(g)).sum() for g in SILK_GROUNDS) < 60
        for ann in s.annotations:
            if ann.category != ICONOGRAPHIC:
                continue
            (motif,) = ann.motifs
            seen.add(motif)
            assert motif in s.caption or (motif == "water" and "river" in s.caption)
            crop = _crop(s.image, ann.region).astype(float)
            if motif in ("pavilion", "boat"):
                # The building or boat is solid ink: its region holds dark pixels.
                assert (crop.sum(axis=-1) < corner.sum() * 0.5).mean() > 0.1, (s.key, motif)
            if motif == "mountain":
                assert crop.mean() < corner.mean() - 10  # ink washes darken the ground
    assert {"mountain", "mist", "water", "pavilion", "boat"} <= seen


def test_generic_shapes_and_colors_match_captions():
    for s in generic_samples(40, size=64, seed=0, kind="shapes"):
        for ann in s.annotations:
            color = next(c for c, rgb in GENERIC_COLORS.items() if rgb == ann.ink)
            assert f"{color} {ann.motifs[0]}" in s.caption
            assert _near(_crop(s.image, ann.region), ann.ink, 30).mean() > 0.4
    kinds = {s.caption.split()[0] for s in generic_samples(60, size=64, seed=0)}
    assert len(kinds) >= 4


def test_generic_set_is_not_atlas_or_landscape():
    captions = {w for s in generic_samples(200, size=64, seed=0) for w in s.caption.split()}
    for word in ("Atlas", "ikat", "ink", "silk", "mountain", "pavilion", "vertical"):
        assert word not in captions


def test_passages_have_all_languages_and_landscape_motifs():
    passages = demo_passages()
    assert len(passages) >= 3
    for p in passages:
        assert p.original_text and p.modern_paraphrase and p.english_translation
        assert p.prompt_draft and p.source_work and p.section
        assert set(p.motifs) <= {"mountain", "water", "mist", "pavilion", "boat"}
