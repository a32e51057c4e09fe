"""The `faceguard` command line's grammar: every subcommand, its arguments, a one-line description and an
example. `consumer.cli` maps each subcommand's name to what runs it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from consumer import package_version
from consumer.detection.strategy import Preset
from consumer.observability.health import ProbeCheck
from schemas import ErrorClass, MaskMethod, MaskShape

Handler = Callable[..., int]

WORKER_SETTINGS = """\
The worker is configured by environment variables, not options (every one: docs/configuration.md).
The ones that matter most:
  KAFKA_BOOTSTRAP_SERVERS      brokers, host:port,... (default 127.0.0.1:9092)
  FACEGUARD_GROUP_ID           consumer group (default faceguard); every worker of one service shares it
  FACEGUARD_GUARANTEE          exactly_once (default) or at_least_once
  FACEGUARD_PRESET             fast, balanced (default) or thorough
  FACEGUARD_PROCESSING_THREADS processing threads, one detector each (default: the cores)
  FACEGUARD_ALLOWED_ROOTS      folders file:// references may read (default: none)
  FACEGUARD_OUTPUT_STORE       s3://bucket/prefix for masked images too large for a record
  FACEGUARD_PROBE_PORT         /metrics, /healthz, /readyz (default 9400)
  FACEGUARD_LOG_FORMAT         json or text (default: text on a terminal, json otherwise)

example:
  KAFKA_BOOTSTRAP_SERVERS=kafka:9092 FACEGUARD_ALLOWED_ROOTS=/srv/images faceguard worker
"""


def probability(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    return bounded(text, 0.0, 1.0, low_open=False)


def strength(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    return bounded(text, 0.0, 1.0, low_open=True)


def bounded(text: str, low: float, high: float, low_open: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (low < value <= high if low_open else low <= value <= high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise argparse.ArgumentTypeError(f"{text} is outside {interval}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is less than 1")
    return value


def command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand with a one-line description and an example in its --help."""
    sub = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(command_name=name)
    return sub


def parser(handlers: dict[str, Handler]) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="faceguard",
        description="Faceguard masks every face in images: a Kafka worker, an HTTP API, and local files.",
        epilog="Configuration comes from FACEGUARD_* environment variables (docs/configuration.md).\n"
        "`faceguard COMMAND --help` describes each command, with an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"faceguard {package_version()}")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = top.add_subparsers(required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker",
        help="run a worker in the consumer group (configured by environment variables)",
        description="Run a worker in the consumer group: it consumes image requests and publishes masked "
        "images and metadata.",
        epilog=WORKER_SETTINGS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.set_defaults(run=handlers["worker"], command_name="worker")

    serve = command(
        commands,
        "serve",
        "serve the HTTP API: POST /process, POST /detect, GET /health (FACEGUARD_HTTP_* settings)",
        "faceguard serve   # then: curl -F image=@photo.jpg localhost:8080/process -o masked.jpg",
    )
    serve.set_defaults(run=handlers["serve"])

    probe = command(
        commands,
        "probe",
        "ask this host's worker (or serve) whether it is live or ready (exit 0: yes)",
        "faceguard probe ready",
    )
    probe.add_argument("check", nargs="?", type=ProbeCheck, choices=list(ProbeCheck), default=ProbeCheck.LIVE)
    probe.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    probe.set_defaults(run=handlers["probe"])

    submit = command(
        commands,
        "submit",
        "publish image requests to the requests topic (a folder expands to its images)",
        "faceguard submit /srv/images/incoming/ https://cdn.example/photo.jpg --attr source=cms",
    )
    submit.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
    submit.add_argument(
        "--attr", action="append", default=[], metavar="KEY=VALUE", help="attribute carried to the outputs"
    )
    submit.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for the brokers before giving up (default 10)"
    )
    add_mask_arguments(submit)
    submit.set_defaults(run=handlers["submit"])

    add_anonymize_command(commands, handlers["anonymize"])

    topics = command(commands, "topics", "manage the topics", "faceguard topics create --partitions 12")
    topic_commands = topics.add_subparsers(required=True, metavar="ACTION")
    create = command(
        topic_commands,
        "create",
        "create the topics that do not exist yet",
        "faceguard topics create --partitions 12 --replication-factor 3",
    )
    create.add_argument(
        "--partitions", type=positive, default=6, help="partitions per topic; caps the workers sharing the load (6)"
    )
    create.add_argument(
        "--replication-factor", type=positive, default=1, help="use 3 on a production cluster (default 1)"
    )
    create.set_defaults(run=handlers["topics create"])

    collect = command(
        commands,
        "collect",
        "write published outputs into a folder (exit 1: broker unreachable, or fewer than --expect)",
        "faceguard collect -o results/ --expect 20",
    )
    collect.add_argument("-o", "--output", type=Path, required=True)
    collect.add_argument("--expect", type=positive, help="stop once this many requests have their outputs")
    collect.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at most (default 60)")
    collect.set_defaults(run=handlers["collect"])

    add_eval_command(commands, handlers["eval"])
    add_dlq_commands(commands, handlers)
    return top


def add_anonymize_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], run: Handler) -> None:
    anonymize = command(
        commands,
        "anonymize",
        "mask local image files without Kafka (exit 0: all masked, 1: some not, 2: usage)",
        "faceguard anonymize photos/ -o masked/ --jobs 2 --metadata",
    )
    anonymize.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders; - reads standard input"
    )
    anonymize.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output folder (input folders' paths are mirrored under it), a file for a single input, "
        "or - for standard output",
    )
    anonymize.add_argument(
        "--overwrite", action="store_true", help="replace earlier outputs in the output folder (never an input)"
    )
    anonymize.add_argument(
        "--jobs",
        type=positive,
        default=os.cpu_count() or 1,
        help=f"images masked at once, one detector each (default: the {os.cpu_count() or 1} cores)",
    )
    anonymize.add_argument("--metadata", action="store_true", help="also write <image>.json face metadata")
    anonymize.add_argument(
        "--preset", type=Preset, choices=list(Preset), help="detection preset (default: FACEGUARD_PRESET)"
    )
    anonymize.add_argument(
        "--preview",
        action="store_true",
        help="draw each candidate (kept faces green, rejected red, with score and probability) instead of masking",
    )
    add_mask_arguments(anonymize)
    anonymize.set_defaults(run=run)


def add_mask_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--method", type=MaskMethod, choices=list(MaskMethod), help="mask method (default: FACEGUARD_MASK_METHOD)"
    )
    command.add_argument("--strength", type=strength, help="0 < strength <= 1 (default: FACEGUARD_MASK_STRENGTH)")
    command.add_argument(
        "--margin", type=probability, help="share of the face box added on every side, 0 to 1 (default 0.35)"
    )
    command.add_argument("--shape", type=MaskShape, choices=list(MaskShape), help="box (default) or ellipse")
    command.add_argument(
        "--min-face-probability",
        type=probability,
        help="mask candidates the verifier gives at least this, 0 to 1 (lower: more masks)",
    )


def add_eval_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], run: Handler) -> None:
    evaluation = command(
        commands,
        "eval",
        "measure which faces the detector masks, and what else",
        "faceguard eval --suite faces --suite nofaces --preset fast --preset balanced",
    )
    evaluation.add_argument(
        "--suite",
        action="append",
        choices=["faces", "wider-tune", "nofaces", "large", "walls", "facefree"],
        help="photo set of ../shared/data, or facefree (fetched by ops/fetch_facefree.py); default: faces; repeatable",
    )
    evaluation.add_argument(
        "--split", choices=["all", "even", "odd"], default="all", help="only the even- or odd-numbered photos"
    )
    evaluation.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help='an annotations file of yours instead of a suite: one JSON object per line, {"image": "a.jpg",'
        ' "faces": [[x, y, w, h], ...]}, the images beside it or in its images/ folder',
    )
    evaluation.add_argument("--subset", default=None, help="with --annotations: only images of this subset")
    evaluation.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    evaluation.add_argument(
        "--preset",
        action="append",
        type=Preset,
        choices=list(Preset),
        help="detection preset to measure; repeat to compare (default: FACEGUARD_PRESET)",
    )
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON too")
    evaluation.set_defaults(run=run)


def add_dlq_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], handlers: dict[str, Handler]
) -> None:
    dlq = command(commands, "dlq", "inspect and redrive dead letters", "faceguard dlq list --since 2h")
    dlq_commands = dlq.add_subparsers(required=True, metavar="ACTION")
    dlq_list = command(
        dlq_commands,
        "list",
        "print matching dead letters, one line each",
        "faceguard dlq list --error-class source_unavailable --since 2h --json",
    )
    add_dlq_filters(dlq_list)
    dlq_list.add_argument("--json", action="store_true", help="one JSON object per line")
    dlq_list.set_defaults(run=handlers["dlq list"])
    dlq_redrive = command(
        dlq_commands,
        "redrive",
        "republish matching dead letters to their original topic",
        "faceguard dlq redrive --error-class source_unavailable --since 2h --dry-run",
    )
    add_dlq_filters(dlq_redrive)
    dlq_redrive.add_argument("--dry-run", action="store_true", help="print what would be redriven, publish nothing")
    dlq_redrive.add_argument("--rate", type=float, default=50.0, help="records per second at most (default 50)")
    dlq_redrive.add_argument(
        "--max-redrives", type=int, default=3, help="refuse requests redriven this often already (default 3)"
    )
    dlq_redrive.set_defaults(run=handlers["dlq redrive"])


def add_dlq_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--error-class", type=ErrorClass, choices=list(ErrorClass), action="append", default=[], help="repeatable"
    )
    command.add_argument("--topic", action="append", default=[], help="original topic (repeatable)")
    command.add_argument("--since", help="failed at or after: ISO time, or a duration ago such as 2h")
    command.add_argument("--until", help="failed before: ISO time, or a duration ago such as 10m")
