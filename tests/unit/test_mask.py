from __future__ import annotations

import numpy as np
import pytest

from consumer.imaging.mask import MaskPolicy, MaskSpec, mask_faces
from consumer.imaging.types import Box, Detection
from schemas import MaskMethod, MaskOptions, MaskShape
from tests.images import ASTRONAUT_FACE
from tests.support import SAMPLES, read_image, region_change

FACE = Box(*ASTRONAUT_FACE)


def astronaut() -> np.ndarray:
    return read_image(SAMPLES / "astronaut.png")


@pytest.mark.parametrize("method", list(MaskMethod))
def test_each_method_destroys_the_face_and_leaves_the_rest(method: MaskMethod) -> None:
    before = astronaut()
    after = before.copy()
    [applied] = mask_faces(after, [Detection(FACE, 0.9)], MaskSpec(method, 0.5, 0.2))
    x, y, w, h = applied.region
    assert (x, y, w, h) == (152, 46, 145, 145)  # grown by 20% on every side
    diff, detail_left = region_change(before, after, FACE.as_tuple())
    assert diff > 10
    if method is MaskMethod.PIXELATE:
        colours = np.unique(after[y : y + h, x : x + w].reshape(-1, 3), axis=0)
        assert applied.kernel_px == 37  # four blocks across at strength 0.5
        assert len(colours) <= 16
    else:
        assert detail_left < 0.2
    outside = np.ones(before.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert np.array_equal(before[outside], after[outside])


def test_blur_kernel_grows_with_face_size() -> None:
    image = astronaut()
    small, large = mask_faces(
        image,
        [Detection(Box(10, 10, 30, 30), 1), Detection(Box(200, 200, 200, 200), 1)],
        MaskSpec(MaskMethod.BLUR, 0.5, 0.0),
    )
    assert small.kernel_px < large.kernel_px
    assert large.kernel_px == 101


def test_regions_are_clipped_at_the_image_border() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    [applied] = mask_faces(image, [Detection(Box(80, -10, 40, 40), 1)], MaskSpec(MaskMethod.FILL, 1.0, 0.25))
    assert applied.region == (70, 0, 30, 40)
    assert (image[0:40, 70:100] == 0).all()
    assert (image[40:, :] == 200).all()


def test_fill_keeps_alpha_and_works_on_gray_and_16_bit() -> None:
    bgra = np.full((50, 50, 4), 255, np.uint8)
    mask_faces(bgra, [Detection(Box(10, 10, 20, 20), 1)], MaskSpec(MaskMethod.FILL, 1.0, 0.0))
    assert (bgra[10:30, 10:30, :3] == 0).all()
    assert (bgra[..., 3] == 255).all()
    gray16 = (np.random.default_rng(1).random((60, 60)) * 65535).astype(np.uint16)
    before = gray16.copy()
    mask_faces(gray16, [Detection(Box(10, 10, 30, 30), 1)], MaskSpec(MaskMethod.BLUR, 0.5, 0.0))
    assert gray16.dtype == np.uint16
    assert not np.array_equal(before[10:40, 10:40], gray16[10:40, 10:40])


def test_pixelation_at_full_strength_leaves_two_blocks_across() -> None:
    image = astronaut()
    [applied] = mask_faces(image, [Detection(FACE, 0.9)], MaskSpec(MaskMethod.PIXELATE, 1.0, 0.2))
    x, y, w, h = applied.region
    assert len(np.unique(image[y : y + h, x : x + w].reshape(-1, 3), axis=0)) <= 4


def test_an_ellipse_masks_inside_the_region_and_keeps_its_corners() -> None:
    before = astronaut()
    after = before.copy()
    [applied] = mask_faces(after, [Detection(FACE, 0.9)], MaskSpec(MaskMethod.FILL, 1.0, 0.2, MaskShape.ELLIPSE))
    x, y, w, h = applied.region
    assert applied.shape is MaskShape.ELLIPSE
    region_before, region_after = before[y : y + h, x : x + w], after[y : y + h, x : x + w]
    assert (region_after[h // 2, :] == 0).all()
    assert (region_after[:, w // 2] == 0).all()
    for corner in (np.s_[:8, :8], np.s_[:8, -8:], np.s_[-8:, :8], np.s_[-8:, -8:]):
        assert np.array_equal(region_after[corner], region_before[corner])
    filled = (region_after == 0).all(axis=2).mean()
    assert abs(filled - np.pi / 4) < 0.03


def test_request_options_may_strengthen_the_default_mask_but_not_weaken_it() -> None:
    policy = MaskPolicy(MaskSpec(MaskMethod.BLUR, 0.6, 0.35))
    assert policy.resolve(None) == policy.defaults
    assert policy.resolve(MaskOptions(strength=0.9, margin=0.5)) == MaskSpec(MaskMethod.BLUR, 0.9, 0.5)
    weaker = MaskOptions(method=MaskMethod.PIXELATE, strength=0.1, margin=0.0, shape=MaskShape.ELLIPSE)
    assert policy.resolve(weaker) == MaskSpec(MaskMethod.PIXELATE, 0.6, 0.35, MaskShape.BOX)


def test_a_worker_that_allows_it_applies_weaker_request_options() -> None:
    policy = MaskPolicy(MaskSpec(MaskMethod.BLUR, 0.6, 0.35), requests_may_weaken=True)
    weaker = MaskOptions(strength=0.1, margin=0.0, shape=MaskShape.ELLIPSE)
    assert policy.resolve(weaker) == MaskSpec(MaskMethod.BLUR, 0.1, 0.0, MaskShape.ELLIPSE)
    assert policy.resolve(MaskOptions(method=MaskMethod.FILL)) == MaskSpec(MaskMethod.FILL, 0.6, 0.35)


def test_a_request_may_lower_the_face_probability_to_mask_more_but_raise_it_only_where_allowed() -> None:
    strict = MaskPolicy(MaskSpec(MaskMethod.BLUR, 0.6, 0.35))
    loose = MaskPolicy(MaskSpec(MaskMethod.BLUR, 0.6, 0.35), requests_may_weaken=True)
    assert strict.min_face_probability(None, 0.27) == 0.27
    assert strict.min_face_probability(MaskOptions(min_face_probability=0.1), 0.27) == 0.1
    assert strict.min_face_probability(MaskOptions(min_face_probability=0.9), 0.27) == 0.27
    assert loose.min_face_probability(MaskOptions(min_face_probability=0.9), 0.27) == 0.9
    assert strict.min_face_probability(MaskOptions(min_face_probability=0.1), None) is None  # nothing verified
