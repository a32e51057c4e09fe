"""The HTTP API's pure parts: content negotiation, options and presets, the error mapping, tokens, and the
bounded pool's refusals."""

from __future__ import annotations

import asyncio
import threading
import time

import jwt
import pytest

from consumer.api.app import ApiOptions, preset_for
from consumer.api.auth import AuthOptions, TokenVerifier
from consumer.api.body import Upload, request_options
from consumer.api.negotiation import Wanted, wanted
from consumer.api.pool import AtCapacity, Bench, DeadlinePassed, RequestPool
from consumer.api.problems import Problem, problem_of
from consumer.config import Settings
from consumer.detection.scan import ScanDetector
from consumer.detection.strategy import PRESETS, Preset
from consumer.errors import (
    ImageTooLarge,
    InvalidRequest,
    NotAnImage,
    SourceUnavailable,
    UnsupportedImage,
)
from consumer.imaging.types import ImageFormat
from consumer.processing.pipeline import Anonymizer
from schemas import MaskMethod


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, Wanted(json=False)),
        ("*/*", Wanted(json=False)),
        ("image/*", Wanted(json=False)),
        ("application/json", Wanted(json=True)),
        ("application/json, */*", Wanted(json=True)),
        ("*/*, application/json", Wanted(json=True)),
        ("image/webp", Wanted(json=False, format=ImageFormat.WEBP)),
        ("image/png;q=0.5, image/jpeg", Wanted(json=False, format=ImageFormat.JPEG)),
        ("application/json;q=0.2, image/*;q=0.9", Wanted(json=False)),
        ("text/html, image/png", Wanted(json=False, format=ImageFormat.PNG)),
    ],
)
def test_accept_picks_the_representation(accept: str | None, expected: Wanted) -> None:
    assert wanted(accept) == expected


@pytest.mark.parametrize("accept", ["text/html", "application/json;q=0", "image/gif"])
def test_an_accept_naming_nothing_we_answer_is_406(accept: str) -> None:
    with pytest.raises(Problem) as raised:
        wanted(accept)
    assert raised.value.status == 406


def test_options_come_from_fields_and_break_only_with_a_reason() -> None:
    assert request_options({}) == (None, None)
    mask, preset = request_options({"method": "fill", "margin": "0.5", "preset": "thorough", "other": "x"})
    assert mask is not None
    assert (mask.method, mask.margin, preset) == (MaskMethod.FILL, 0.5, Preset.THOROUGH)
    for fields, reason in (
        ({"strength": "2"}, "strength"),
        ({"preset": "best"}, "preset"),
        ({"shape": "star"}, "shape"),
    ):
        with pytest.raises(Problem) as raised:
            request_options(fields)
        assert raised.value.status == 400
        assert reason in raised.value.detail


def test_a_request_may_ask_for_a_more_thorough_preset_only() -> None:
    options = ApiOptions(Preset.BALANCED, False, 10**6, 30.0, 1)

    def upload(preset: Preset | None) -> Upload:
        return Upload(b"x", None, preset)

    assert preset_for(upload(None), options) is Preset.BALANCED
    assert preset_for(upload(Preset.THOROUGH), options) is Preset.THOROUGH
    assert preset_for(upload(Preset.FAST), options) is Preset.BALANCED
    weakening = ApiOptions(Preset.BALANCED, True, 10**6, 30.0, 1)
    assert preset_for(upload(Preset.FAST), weakening) is Preset.FAST


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotAnImage("x"), 400),
        (UnsupportedImage("x"), 415),
        (ImageTooLarge("x"), 413),
        (InvalidRequest("x"), 400),
        (SourceUnavailable("x"), 503),
    ],
)
def test_the_error_tree_maps_to_statuses(error: Exception, status: int) -> None:
    assert problem_of(error).status == status  # type: ignore[arg-type]


def test_tokens_need_the_audience_an_expiry_and_the_key() -> None:
    secret = "a-secret-of-at-least-thirty-two-bytes"
    verifier = TokenVerifier(AuthOptions(audience="faceguard", hs256_secret=secret))
    good = {"aud": "faceguard", "exp": int(time.time()) + 60}
    assert verifier.verify("Bearer " + jwt.encode(good, secret, algorithm="HS256"))["aud"] == "faceguard"
    for claims in ({"aud": "faceguard"}, {"exp": int(time.time()) + 60}, {**good, "exp": int(time.time()) - 600}):
        with pytest.raises(Problem) as raised:
            verifier.verify("Bearer " + jwt.encode(claims, secret, algorithm="HS256"))
        assert raised.value.status == 401
    with pytest.raises(Problem):
        verifier.verify("Basic dXNlcjpwYXNz")


def pool_of(threads: int, depth: int) -> RequestPool:
    settings = Settings()
    options = settings.pipeline_options

    def build(preset: Preset) -> Anonymizer:
        return Anonymizer(ScanDetector(PRESETS[preset], settings.models_dir), options)

    pool = RequestPool(threads, depth, lambda: Bench(build, Preset.FAST))
    pool.wait_ready()
    return pool


def test_the_pool_refuses_beyond_its_queue_and_drops_work_past_its_deadline() -> None:
    pool = pool_of(threads=1, depth=1)
    release = threading.Event()

    def blocked(_bench: Bench) -> str:
        release.wait(10)
        return "done"

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(blocked, 10))
        await asyncio.sleep(0.2)  # taken by the only thread
        waiting = asyncio.ensure_future(pool.run(lambda _bench: "waited", 0.3))
        await asyncio.sleep(0.05)
        with pytest.raises(AtCapacity):
            await pool.run(lambda _bench: "refused", 10)
        with pytest.raises(DeadlinePassed):
            await waiting
        release.set()
        assert await first == "done"
        assert await pool.run(lambda _bench: "after", 10) == "after"
        assert pool.state.queued == 0

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        pool.close()
