"""All configuration: one frozen settings object read from the environment.

Every field reads `FACEGUARD_<FIELD>` (e.g. `FACEGUARD_GROUP_ID`); the broker list
also reads the conventional `KAFKA_BOOTSTRAP_SERVERS`. `kafka_client_config()`
is the one place that renders librdkafka's connection keys.

The settings stop at the composition roots (the command line and `engine.service`):
each stage is given the small typed options it needs, built here once (`topics`,
`pipeline_options`, `output_options`, `group_options`, ...).
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from consumer.detection.model_files import DEFAULT_MODELS_DIR
from consumer.detection.strategy import PRESETS, Preset, Strategy
from consumer.engine.delivery import CommitPacing
from consumer.engine.worker import WorkerOptions
from consumer.imaging.encode import EncodeQuality
from consumer.imaging.mask import MaskPolicy, MaskSpec
from consumer.kafka.options import ClientConfig, GroupOptions, GroupProtocol, ProducerOptions, TransactionOptions
from consumer.observability.logs import LogFormat
from consumer.processing.outputs import OutputOptions
from consumer.processing.pipeline import PipelineOptions
from consumer.processing.request import RequestLimits
from consumer.sources.address_policy import AddressPolicy, parse_networks
from consumer.topics import Topics
from schemas import MaskMethod, MaskShape


class HttpAuth(StrEnum):
    """Whether `serve` asks for a bearer token."""

    OFF = "off"
    JWT = "jwt"


class Guarantee(StrEnum):
    """What a crash may cost."""

    EXACTLY_ONCE = "exactly_once"  # outputs and offsets in one transaction: nothing lost, nothing twice
    AT_LEAST_ONCE = "at_least_once"  # offsets committed after delivery: nothing lost, duplicates possible


def _split_list(value: object) -> object:
    """Comma- (or os.pathsep-) separated text from the environment as a list."""
    if isinstance(value, str):
        return [p.strip() for chunk in value.split(os.pathsep) for p in chunk.split(",") if p.strip()]
    return value


class Settings(BaseSettings):
    """Faceguard's configuration (environment prefix `FACEGUARD_`)."""

    model_config = SettingsConfigDict(env_prefix="FACEGUARD_", frozen=True, extra="ignore")

    # Kafka connection.
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("FACEGUARD_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of the brokers.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = Field(None, description="Client certificate (mutual TLS), PEM.")
    kafka_ssl_key_location: Path | None = Field(None, description="Client certificate's private key, PEM.")
    client_id: str = "faceguard"
    group_id: str = "faceguard"

    # Topics.
    topic_requests: str = "faceguard.requests"
    topic_masked: str = "faceguard.masked-images"
    topic_metadata: str = "faceguard.metadata"
    topic_dlq: str = "faceguard.dlq"
    retry_delays_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [10.0, 60.0, 600.0],
        description="Delay of each retry tier (comma-separated); tier N reads topic <requests>.retry-N. Empty: none.",
    )

    # Delivery.
    guarantee: Guarantee = Guarantee.EXACTLY_ONCE
    group_protocol: GroupProtocol = GroupProtocol.CLASSIC
    worker_id: str = Field(
        default_factory=socket.gethostname,
        description=(
            "Stable name of this worker (default: the host name, i.e. the pod name). It names the transactional "
            "producer, so a restarted worker fences its previous self; two live workers must not share it."
        ),
    )
    processing_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    max_in_flight: int = Field(
        256,
        ge=2,
        description="Uncommitted records held at most; beyond it partitions pause until half are committed.",
    )
    batch_size: int = Field(64, ge=1, le=10_000, description="Most records committed in one transaction.")
    commit_interval_s: float = Field(
        1.0,
        gt=0,
        description=(
            "Longest a finished record waits for its commit while every processing thread is busy "
            "(with a thread idle, it waits at most min_commit_gap_s)."
        ),
    )
    min_commit_gap_s: float = Field(
        0.025,
        ge=0,
        description=(
            "Shortest time between two commits while a processing thread is idle: records finishing "
            "within it share a transaction. A record finishing after a longer quiet spell is committed at once."
        ),
    )
    poll_timeout_s: float = Field(1.0, gt=0)
    delivery_timeout_s: float = Field(60.0, gt=0, description="How long the broker may take to acknowledge outputs.")
    transaction_timeout_s: float = Field(
        60.0, ge=1, description="Broker aborts a dead worker's open transaction after this."
    )
    drain_timeout_s: float = Field(
        25.0, gt=0, description="On SIGTERM or revocation, how long in-flight work may finish."
    )
    max_poll_interval_ms: int = Field(300_000, ge=1_000)
    session_timeout_ms: int = Field(45_000, ge=1_000)
    static_membership: bool = Field(
        False,
        description=(
            "Join the group as a static member named by the worker id (group.instance.id): a worker restarted "
            "under the same name within the session timeout gets its partitions back without a rebalance. "
            "A static member does not leave the group when it stops, so its partitions wait out the session "
            "timeout after a scale-in."
        ),
    )

    # Observability.
    log_format: LogFormat | None = Field(
        None,
        description="json (one object per line) or text; unset: text when the command runs at a terminal, else json. "
        "Read before the other settings (`logs.log_format_from_env`) so that their errors are logged in it.",
    )
    probe_port: int = Field(9400, ge=0, le=65535, description="Serves /metrics, /healthz and /readyz; 0: off.")
    stuck_after_s: float = Field(
        300.0, gt=0, description="A processing thread on one record this long makes the worker not live."
    )
    loop_stall_s: float = Field(60.0, gt=0, description="A poll loop silent this long makes the worker not live.")
    otel: bool = Field(
        False,
        description="Export an OpenTelemetry span per request and stage (OTLP/HTTP, OTEL_* variables; `otel` extra).",
    )

    # The HTTP API (`faceguard serve`).
    http_host: str = Field(
        "127.0.0.1",
        description="Address `serve` listens on. A non-loopback address needs auth on, or FACEGUARD_HTTP_ALLOW_PUBLIC.",
    )
    http_port: int = Field(8080, ge=0, le=65535, description="Port `serve` listens on (0: any free port).")
    http_threads: int | None = Field(
        None, ge=1, le=64, description="Processing threads of `serve` (default: FACEGUARD_PROCESSING_THREADS)."
    )
    http_queue: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="Requests waiting for a thread beyond which `serve` answers 503 (default: 2 per thread).",
    )
    http_deadline_s: float = Field(
        30.0, gt=0, description="A request not answered in this time gets 503 (it waited) and is dropped."
    )
    http_retry_after_s: int = Field(1, ge=1, description="Retry-After of a 503 at capacity.")
    http_drain_timeout_s: float = Field(
        30.0, gt=0, description="On SIGTERM, how long `serve` lets requests under way finish."
    )
    http_allow_public: bool = Field(
        False, description="Let `serve` listen on a non-loopback address with auth off (behind a gateway that checks)."
    )
    http_bridge: bool = Field(
        False, description="Serve POST /v1/requests, publishing ImageRequests to the requests topic (needs the broker)."
    )
    http_auth: HttpAuth = Field(HttpAuth.OFF, description="off, or jwt: every route but the probes needs a bearer JWT.")
    jwt_hs256_secret: SecretStr | None = Field(None, description="Shared secret of HS256 tokens.")
    jwt_jwks_file: Path | None = Field(None, description="JWKS file with the RS256/ES256 public keys of tokens.")
    jwt_audience: str | None = Field(None, description="The `aud` tokens must carry (required with auth on).")
    jwt_issuer: str | None = Field(None, description="The `iss` tokens must carry, when set.")
    jwt_scope: str | None = Field(None, description="A scope tokens must grant (`scope` or `scp`); else 403.")

    # Failures.
    breaker_window: int = Field(50, ge=0, description="Records the circuit breaker looks back on; 0 disables it.")
    breaker_failure_ratio: float = Field(1.0, gt=0, le=1.0, description="Failed share of the window that opens it.")
    breaker_cooldown_s: float = Field(30.0, gt=0, description="How long it stays open before a probe record.")
    dlq_keep_binary_values: bool = Field(
        False, description="Copy binary (non-JSON, possibly image) request values into the DLQ; off keeps PII out."
    )

    # Sources and images.
    allowed_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders file:// references may point into (os.pathsep- or comma-separated). Empty: none.",
    )
    fetch_connect_timeout_s: float = Field(5.0, gt=0, description="Connecting to an HTTP source.")
    fetch_read_timeout_s: float = Field(10.0, gt=0, description="Longest wait for the next bytes of a response.")
    fetch_timeout_s: float = Field(30.0, gt=0, description="Whole fetch, redirects and body included.")
    fetch_max_redirects: int = Field(5, ge=0)
    fetch_allow_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs HTTP references may reach although not public (comma-separated), e.g. 10.1.0.0/16.",
    )
    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host names HTTP references may reach whatever they resolve to."
    )
    fetch_allowed_ports: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Ports HTTP references may use; empty: any."
    )
    s3_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("FACEGUARD_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        description="S3-compatible endpoint (MinIO, Ceph, R2); unset: AWS. Credentials: the AWS SDK chain.",
    )
    s3_region: str | None = Field(None, validation_alias=AliasChoices("FACEGUARD_S3_REGION", "AWS_REGION"))
    s3_path_style: bool = Field(
        False, description="Address buckets as endpoint/bucket/key (most S3-compatible stores)."
    )
    s3_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Buckets s3:// references may read; empty: any the credentials can."
    )
    max_image_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(100_000_000, ge=1)
    max_pixels_in_flight: int = Field(
        25_000_000,
        ge=1,
        description=(
            "Decoded pixels a worker's threads hold at once; an image that does not fit waits (a larger one runs "
            "alone). Bounds memory: see the sizing formula in the README."
        ),
    )
    max_request_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=512 * 1024,
        description="Largest request value; a larger one is dead-lettered (outputs copy it, so it bounds them too).",
    )
    jpeg_quality: int = Field(92, ge=1, le=100)
    webp_quality: int = Field(90, ge=1, le=100)

    # Where masked images go (claim check).
    inline_max_bytes: int = Field(
        900 * 1024, ge=1024, description="Masked images up to this size go inline in the masked-images record."
    )
    output_store: str | None = Field(
        None,
        description="s3://bucket/prefix or file:///folder for masked images over inline_max_bytes; unset: none.",
    )
    output_store_always: bool = Field(False, description="Store every masked image, inline none.")

    # Detection and masking.
    models_dir: Path = DEFAULT_MODELS_DIR
    preset: Preset = Preset.BALANCED
    mask_method: MaskMethod = MaskMethod.BLUR
    mask_strength: float = Field(1.0, gt=0.0, le=1.0)
    mask_margin: float = Field(0.35, ge=0.0, le=1.0)
    mask_shape: MaskShape = MaskShape.BOX
    # False: a request's mask options may strengthen the default mask but never weaken it.
    mask_requests_may_weaken: bool = False

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        value = _split_list(value)
        if isinstance(value, list):
            return [Path(str(p)).expanduser().resolve() for p in value]
        return value

    @field_validator("fetch_allow_networks", "fetch_allow_hosts", "fetch_allowed_ports", "s3_buckets", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("fetch_allow_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)
        return value

    @field_validator("output_store")
    @classmethod
    def _known_store(cls, value: str | None) -> str | None:
        if value and not value.startswith(("s3://", "file:///")):
            raise ValueError("output_store must be s3://bucket[/prefix] or file:///absolute/folder")
        return value or None

    @field_validator("retry_delays_s", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        return _split_list(value)

    @property
    def strategy(self) -> Strategy:
        """The detection passes of the configured preset."""
        return PRESETS[self.preset]

    @property
    def mask_policy(self) -> MaskPolicy:
        """The default mask and how far requests may change it."""
        defaults = MaskSpec(self.mask_method, self.mask_strength, self.mask_margin, self.mask_shape)
        return MaskPolicy(defaults, self.mask_requests_may_weaken)

    @property
    def address_policy(self) -> AddressPolicy:
        return AddressPolicy(
            allow_networks=parse_networks(self.fetch_allow_networks),
            allow_hosts=frozenset(h.lower() for h in self.fetch_allow_hosts),
            allowed_ports=frozenset(self.fetch_allowed_ports),
        )

    @property
    def topics(self) -> Topics:
        return Topics(
            requests=self.topic_requests,
            masked=self.topic_masked,
            metadata=self.topic_metadata,
            dlq=self.topic_dlq,
            retry_delays_s=tuple(self.retry_delays_s),
        )

    @property
    def transactional_id(self) -> str:
        return f"{self.group_id}.{self.worker_id}"

    @property
    def max_record_bytes(self) -> int:
        """Largest record the producer may send: an inline image plus room for headers."""
        return self.inline_max_bytes + 64 * 1024

    @property
    def pipeline_options(self) -> PipelineOptions:
        return PipelineOptions(
            masks=self.mask_policy,
            quality=EncodeQuality(jpeg=self.jpeg_quality, webp=self.webp_quality),
            max_image_pixels=self.max_image_pixels,
            max_image_bytes=self.max_image_bytes,
            max_pixels_in_flight=self.max_pixels_in_flight,
        )

    @property
    def output_options(self) -> OutputOptions:
        return OutputOptions(
            topics=self.topics,
            worker_id=self.worker_id,
            group_id=self.group_id,
            keep_binary_values=self.dlq_keep_binary_values,
            limits=RequestLimits(max_value_bytes=self.max_request_bytes),
            max_record_bytes=self.max_record_bytes,
        )

    @property
    def group_options(self) -> GroupOptions:
        return GroupOptions(
            self.group_id,
            self.group_protocol,
            self.session_timeout_ms,
            self.max_poll_interval_ms,
            self.worker_id if self.static_membership else None,
        )

    @property
    def producer_options(self) -> ProducerOptions:
        return ProducerOptions(self.max_record_bytes, self.delivery_timeout_s)

    @property
    def transaction_options(self) -> TransactionOptions:
        return TransactionOptions(self.transactional_id, self.transaction_timeout_s)

    @property
    def worker_options(self) -> WorkerOptions:
        return WorkerOptions(
            worker_id=self.worker_id,
            group_id=self.group_id,
            topics=self.topics,
            processing_threads=self.processing_threads,
            max_in_flight=self.max_in_flight,
            poll_timeout_s=self.poll_timeout_s,
            drain_timeout_s=self.drain_timeout_s,
        )

    @property
    def commit_pacing(self) -> CommitPacing:
        return CommitPacing(
            batch_size=self.batch_size,
            commit_interval_s=self.commit_interval_s,
            min_commit_gap_s=self.min_commit_gap_s,
            delivery_timeout_s=self.delivery_timeout_s,
        )

    def kafka_client_config(self) -> ClientConfig:
        """Connection settings shared by every client, as librdkafka keys."""
        config: ClientConfig = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username:
            config["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password:
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        if self.kafka_ssl_certificate_location:
            config["ssl.certificate.location"] = str(self.kafka_ssl_certificate_location)
        if self.kafka_ssl_key_location:
            config["ssl.key.location"] = str(self.kafka_ssl_key_location)
        return config
