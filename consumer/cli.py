"""The `faceguard` command.

    faceguard worker                      run a consumer-group worker
    faceguard serve                       serve the HTTP API (POST /process, POST /detect, GET /health)
    faceguard probe [live|ready]          ask a running worker's probe server (container health checks)
    faceguard submit PATH_OR_URL...       publish requests (a folder expands to its images)
    faceguard anonymize INPUT... -o DIR   mask local files without Kafka
    faceguard topics create               create the topics
    faceguard collect -o DIR              write published outputs into a folder
    faceguard eval [--preset P]...        measure masked faces on annotated photos
    faceguard dlq list [FILTERS]          show dead letters
    faceguard dlq redrive [FILTERS]       send dead letters back to their topic

Configuration comes from FACEGUARD_* environment variables (docs/configuration.md).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from consumer.config import Settings
from consumer.detection.strategy import PRESETS, Preset
from consumer.engine.heap import configure_heap
from consumer.errors import FaceguardError, SetupError
from consumer.observability.health import ProbeCheck
from consumer.observability.logs import configure_logging, log_format_from_env

if TYPE_CHECKING:
    from consumer.commands.dlq import DlqFilter
from schemas import ErrorClass, MaskMethod, MaskOptions, MaskShape

log = logging.getLogger("faceguard")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(log_format_from_env(), args.verbose)
    # `kill -USR1 <pid>` writes every thread's stack to the log's stream (plain text): what a stuck worker
    # is waiting on, without a debugger in the container.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    configure_heap()  # before any thread starts: decoded photos go back to the system when freed
    try:
        settings = Settings()
        return int(args.run(settings, args))
    except ValidationError as exc:
        log.error("invalid configuration: %s", exc)
    except SetupError as exc:
        log.error("%s", exc)
    except FaceguardError as exc:
        log.error("stopping: %s", exc)
    return 1


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="faceguard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = top.add_subparsers(required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="run a worker in the consumer group")
    worker.set_defaults(run=cmd_worker)

    serve = commands.add_parser(
        "serve",
        help="serve the HTTP API: POST /process, POST /detect, GET /health (FACEGUARD_HTTP_* settings)",
    )
    serve.set_defaults(run=cmd_serve)

    probe = commands.add_parser(
        "probe", help="ask this host's worker (or serve) whether it is live or ready (exit 0: yes)"
    )
    probe.add_argument("check", nargs="?", type=ProbeCheck, choices=list(ProbeCheck), default=ProbeCheck.LIVE)
    probe.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
    probe.set_defaults(run=cmd_probe)

    submit = commands.add_parser("submit", help="publish image requests")
    submit.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
    submit.add_argument(
        "--attr", action="append", default=[], metavar="KEY=VALUE", help="attribute carried to the outputs"
    )
    add_mask_arguments(submit)
    submit.set_defaults(run=cmd_submit)

    add_anonymize_command(commands)

    topics = commands.add_parser("topics", help="manage the topics")
    topic_commands = topics.add_subparsers(required=True, metavar="ACTION")
    create = topic_commands.add_parser("create", help="create the topics that do not exist yet")
    create.add_argument(
        "--partitions",
        type=int,
        default=6,
        help="partitions per topic; caps the workers that share the load (default 6)",
    )
    create.add_argument("--replication-factor", type=int, default=1, help="use 3 on a production cluster (default 1)")
    create.set_defaults(run=cmd_topics_create)

    collect = commands.add_parser("collect", help="write published outputs into a folder")
    collect.add_argument("-o", "--output", type=Path, required=True)
    collect.add_argument("--expect", type=int, help="stop once this many requests have their outputs")
    collect.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at most (default 60)")
    collect.set_defaults(run=cmd_collect)

    evaluation = commands.add_parser("eval", help="measure which faces the detector masks, and what else")
    evaluation.add_argument(
        "--suite",
        action="append",
        choices=["faces", "wider-tune", "nofaces", "large"],
        help="photo set of ../shared/data (default: faces); repeatable",
    )
    evaluation.add_argument(
        "--split", choices=["all", "even", "odd"], default="all", help="only the even- or odd-numbered photos"
    )
    evaluation.add_argument("--annotations", type=Path, default=None, help="an annotations file of yours instead")
    evaluation.add_argument("--subset", default="wider-val", help="only images of this subset ('' for all)")
    evaluation.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    evaluation.add_argument(
        "--preset",
        action="append",
        type=Preset,
        choices=list(Preset),
        help="detection preset to measure; repeat to compare (default: FACEGUARD_PRESET)",
    )
    evaluation.add_argument("--json", action="store_true", help="print the figures as JSON too")
    evaluation.set_defaults(run=cmd_eval)

    dlq = commands.add_parser("dlq", help="inspect and redrive dead letters")
    dlq_commands = dlq.add_subparsers(required=True, metavar="ACTION")
    dlq_list = dlq_commands.add_parser("list", help="print matching dead letters, one line each")
    add_dlq_filters(dlq_list)
    dlq_list.add_argument("--json", action="store_true", help="one JSON object per line")
    dlq_list.set_defaults(run=cmd_dlq_list)
    dlq_redrive = dlq_commands.add_parser("redrive", help="republish matching dead letters to their original topic")
    add_dlq_filters(dlq_redrive)
    dlq_redrive.add_argument("--dry-run", action="store_true", help="print what would be redriven, publish nothing")
    dlq_redrive.add_argument("--rate", type=float, default=50.0, help="records per second at most (default 50)")
    dlq_redrive.add_argument(
        "--max-redrives", type=int, default=3, help="refuse requests redriven this often already (default 3)"
    )
    dlq_redrive.set_defaults(run=cmd_dlq_redrive)
    return top


def add_dlq_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--error-class", type=ErrorClass, choices=list(ErrorClass), action="append", default=[], help="repeatable"
    )
    command.add_argument("--topic", action="append", default=[], help="original topic (repeatable)")
    command.add_argument("--since", help="failed at or after: ISO time, or a duration ago such as 2h")
    command.add_argument("--until", help="failed before: ISO time, or a duration ago such as 10m")


def add_anonymize_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    anonymize = commands.add_parser("anonymize", help="mask local image files without Kafka")
    anonymize.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    anonymize.add_argument("-o", "--output", type=Path, required=True, help="output folder")
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
    anonymize.set_defaults(run=cmd_anonymize)


def add_mask_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--method", type=MaskMethod, choices=list(MaskMethod), help="mask method (worker default: blur)"
    )
    command.add_argument("--strength", type=float, help="0 < strength <= 1")
    command.add_argument("--margin", type=float, help="share of the face box added on every side")
    command.add_argument("--shape", type=MaskShape, choices=list(MaskShape), help="box (default) or ellipse")
    command.add_argument(
        "--min-face-probability", type=float, help="mask candidates the verifier gives at least this (lower: more)"
    )


def mask_options(args: argparse.Namespace) -> MaskOptions | None:
    given = (args.method, args.strength, args.margin, args.shape, args.min_face_probability)
    if all(value is None for value in given):
        return None
    return MaskOptions(
        method=args.method,
        strength=args.strength,
        margin=args.margin,
        shape=args.shape,
        min_face_probability=args.min_face_probability,
    )


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from consumer.engine.service import run_worker, stop_on_signals

    run_worker(settings, stop_on_signals())
    return 0


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from consumer.api.service import serve

    serve(settings)
    return 0


def cmd_probe(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.observability.health import ask_probe

    answer = ask_probe(settings.probe_port, args.check, args.timeout)
    if not answer.ok and answer.body.startswith('{"status": "failing", "probes"'):  # no worker answered here:
        answer = ask_probe(settings.http_port, args.check, args.timeout)  # `serve` answers on its own port
    print(answer.body)
    return 0 if answer.ok else 1


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.submit import build_requests, references, submit

    attributes: dict[str, object] = {}
    for pair in args.attr:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SetupError(f"--attr takes KEY=VALUE, not {pair!r}")
        attributes[key] = value
    try:
        refs = references(args.targets)
    except FileNotFoundError as exc:
        raise SetupError(str(exc)) from exc
    requests = build_requests(refs, mask_options(args), attributes)  # type: ignore[arg-type]
    failed = 0
    published = submit(settings.kafka_client_config(), settings.producer_options, settings.topic_requests, requests)
    for request, error in zip(requests, published, strict=True):
        if error:
            failed += 1
            log.error("not published: %s (%s)", request.image_ref, error)
        else:
            print(f"{request.request_id}\t{request.image_ref}")
    log.info("published %d of %d requests to %s", len(requests) - failed, len(requests), settings.topic_requests)
    return 1 if failed else 0


def cmd_anonymize(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.anonymize import FileJob, anonymize_files

    job = FileJob(args.inputs, args.output, mask_options(args), args.metadata, settings.worker_id, args.preview)
    strategy = PRESETS[args.preset] if args.preset else settings.strategy
    try:
        outcomes = anonymize_files(job, strategy, settings.models_dir, settings.pipeline_options)
    except FileNotFoundError as exc:
        raise SetupError(str(exc)) from exc
    for outcome in outcomes:
        if outcome.error:
            log.error("%s: %s", outcome.source, outcome.error)
        elif args.preview:
            print(f"{outcome.output}")
        else:
            print(f"{outcome.output}\t{outcome.faces} faces")
    failed = sum(1 for o in outcomes if o.error)
    log.info("masked %d of %d images into %s", len(outcomes) - failed, len(outcomes), args.output)
    return 1 if failed else 0


def cmd_topics_create(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.kafka.admin import create_topics

    created = create_topics(
        settings.kafka_client_config(),
        settings.topics,
        args.partitions,
        args.replication_factor,
        settings.max_record_bytes,
    )
    for name, state in created.items():
        print(f"{name}\t{state.value}")
    return 0


def cmd_collect(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.collect import collect

    collected = collect(settings.kafka_client_config(), settings.topics, args.output, args.expect, args.timeout)
    print(
        json.dumps(
            {
                "masked": len(collected.images & collected.metadata),
                "dead_lettered": collected.dead_letters,
                "folder": str(args.output),
            }
        )
    )
    return 0 if args.expect is None or collected.finished >= args.expect else 1


def dlq_filter(args: argparse.Namespace) -> DlqFilter:
    from consumer.commands.dlq import DlqFilter, parse_time

    return DlqFilter(
        error_classes=frozenset(args.error_class),
        original_topics=frozenset(args.topic),
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
    )


def cmd_dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.dlq import dead_letters, describe

    count = 0
    for letter in dead_letters(settings.kafka_client_config(), settings.topic_dlq, dlq_filter(args)):
        count += 1
        print(describe(letter, as_json=args.json))
    log.info("%d dead letters match", count)
    return 0


def cmd_dlq_redrive(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.dlq import dead_letters, describe, plan_redrive, redrive

    client = settings.kafka_client_config()
    plan = plan_redrive(dead_letters(client, settings.topic_dlq, dlq_filter(args)), args.max_redrives)
    for letter, why in plan.refused:
        log.warning("refused %s: %s", letter.position, why)
    for letter in plan.redrive:
        print(("would redrive " if args.dry_run else "redrive ") + describe(letter, as_json=False))
    failed = [] if args.dry_run else redrive(client, settings.producer_options, plan, args.rate)
    for letter, error in failed:
        log.error("not redriven %s: %s", letter.position, error)
    verb = "would redrive" if args.dry_run else "redrove"
    log.info("%s %d, refused %d, failed %d", verb, len(plan.redrive) - len(failed), len(plan.refused), len(failed))
    return 1 if failed else 0


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.evaluation.recall import (
        Half,
        evaluate_strategy,
        format_per_image,
        format_table,
        half_of,
        load_annotations,
    )
    from consumer.evaluation.suites import Suite, suite_images

    split = Half(args.split)
    summaries = {}
    for suite in [Suite(name) for name in args.suite or [Suite.FACES.value]]:
        if args.annotations is not None:
            if not args.annotations.is_file():
                raise SetupError(f"no annotations file at {args.annotations}")
            images = load_annotations(args.annotations, args.subset or None)
            images = half_of(images[: args.limit] if args.limit else images, split)
            name = str(args.annotations)
        else:
            try:
                images = suite_images(suite, split=split, limit=args.limit)
            except FileNotFoundError as exc:
                raise SetupError(f"{exc}: the shared data is not beside the repository") from exc
            name = suite.value
        reports = {
            preset.value: evaluate_strategy(images, PRESETS[preset], settings.models_dir, settings.mask_margin)
            for preset in args.preset or [settings.preset]
        }
        print(f"{name}: {len(images)} photos ({split.value})")
        print(format_table(reports))
        if args.annotations is None and not suite.annotated:
            print(format_per_image(reports))
        summaries[name] = {preset: report.summary() for preset, report in reports.items()}
        if args.annotations is not None:
            break
    if args.json:
        print(json.dumps(summaries))
    return 0
