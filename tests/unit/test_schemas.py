from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import ImageRequest, MaskMethod
from schemas.events import CONTRACTS
from schemas.export import render, stale


def test_exported_json_schemas_match_the_models() -> None:
    assert stale() == [], "run `make schemas` and commit the result"


def test_drift_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    original = render("image_request")
    monkeypatch.setattr(
        "schemas.export.render", lambda name: original + " " if name == "image_request" else render(name)
    )
    assert stale() == ["image_request"]


def test_every_contract_is_exported() -> None:
    assert set(CONTRACTS) == {
        "image_request",
        "face_metadata_event",
        "masked_image_headers",
        "stored_image",
        "retry_headers",
        "dead_letter_headers",
    }


def test_request_round_trips_with_options_and_attributes() -> None:
    raw = (
        '{"request_id": "a-1", "image_ref": "https://x/y.jpg", "mask": {"method": "pixelate"}, '
        '"attributes": {"k": [1]}}'
    )
    request = ImageRequest.model_validate_json(raw)
    assert request.mask is not None
    assert request.mask.method is MaskMethod.PIXELATE
    assert request.attributes == {"k": [1]}


@pytest.mark.parametrize(
    "payload",
    [
        {"request_id": "a", "image_ref": "ftp://x/y.jpg"},
        {"request_id": "a", "image_ref": "/no/scheme.jpg"},
        {"request_id": "", "image_ref": "file:///x.jpg"},
        {"request_id": "a b", "image_ref": "file:///x.jpg"},
        {"request_id": "a", "image_ref": "file:///x.jpg", "unknown": 1},
        {"request_id": "a", "image_ref": "file:///x.jpg", "mask": {"strength": 0}},
    ],
)
def test_requests_breaking_the_contract_are_rejected(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ImageRequest.model_validate(payload)
