"""Creating and deleting the service's topics on a real broker."""

from __future__ import annotations

import time
import uuid

import pytest

from consumer.config import Settings
from consumer.kafka.admin import TopicState, delete_topics, missing_topics
from tests.integration.stack import create_service_topics

pytestmark = pytest.mark.kafka


def test_topics_created_then_deleted_and_deleting_again_is_no_error(kafka_bootstrap: str) -> None:
    prefix = f"topics{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_requests=f"{prefix}.requests",
        topic_masked=f"{prefix}.masked",
        topic_metadata=f"{prefix}.metadata",
        topic_dlq=f"{prefix}.dlq",
    )
    client, names = settings.kafka_client_config(), settings.topics.all
    assert len(names) == 7  # requests, three retry tiers, masked, metadata, dead letters
    assert set(create_service_topics(settings, 2).values()) == {TopicState.CREATED}
    assert set(create_service_topics(settings, 2).values()) == {TopicState.EXISTS}
    assert missing_topics(client, names) == []

    delete_topics(client, settings.topics)
    deadline = time.monotonic() + 30
    while (gone := missing_topics(client, names)) != names and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gone == names
    delete_topics(client, settings.topics)  # already gone
