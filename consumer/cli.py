"""The `faceguard` command.

    faceguard worker                      run a consumer-group worker
    faceguard serve                       serve the HTTP API (POST /process, POST /detect, GET /health)
    faceguard probe [live|ready]          ask a running worker's probe server (container health checks)
    faceguard submit PATH_OR_URL...       publish requests (a folder expands to its images)
    faceguard anonymize INPUT... -o OUT   mask local files without Kafka
    faceguard topics create               create the topics
    faceguard collect -o DIR              write published outputs into a folder
    faceguard eval [--preset P]...        measure masked faces on annotated photos
    faceguard dlq list [FILTERS]          show dead letters
    faceguard dlq redrive [FILTERS]       send dead letters back to their topic

Configuration comes from FACEGUARD_* environment variables (docs/configuration.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import json
import logging
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from consumer.commands.arguments import parser
from consumer.commands.targets import UsageError
from consumer.config import Settings
from consumer.detection.strategy import PRESETS
from consumer.engine.heap import configure_heap
from consumer.errors import FaceguardError, SetupError
from consumer.imaging.mask import MaskPolicy
from consumer.observability.logs import configure_logging, log_format_from_env
from schemas import MaskOptions

if TYPE_CHECKING:
    from consumer.commands.dlq import DlqFilter
    from consumer.evaluation.recall import AnnotatedImage, Half

log = logging.getLogger("faceguard")


def main(argv: list[str] | None = None) -> int:
    args = parser(HANDLERS).parse_args(argv)
    configure_logging(log_format_from_env(sys.stderr.isatty()), args.verbose)
    # `kill -USR1 <pid>` writes every thread's stack to the log's stream (plain text): what a stuck worker
    # is waiting on, without a debugger in the container.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    configure_heap()  # before any thread starts: decoded photos go back to the system when freed
    try:
        settings = Settings()
        return int(args.run(settings, args))
    except UsageError as exc:  # as argparse says a usage error: one line, exit 2
        print(f"faceguard {args.command_name}: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        log.error("invalid configuration: %s", problems)
    except SetupError as exc:
        log.error("%s", exc)
    except FaceguardError as exc:
        log.error("stopping: %s", exc)
    return 1


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
    if not answer.answered:  # no worker answered here:
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
    requests = build_requests(references(args.targets), mask_options(args), attributes)  # type: ignore[arg-type]
    reachable_topics(settings, [settings.topic_requests], args.timeout)
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
    from consumer.commands.targets import plan
    from consumer.detection.scan import ScanDetector
    from consumer.imaging.pixel_budget import PixelBudget
    from consumer.processing.pipeline import Anonymizer

    strategy = PRESETS[args.preset] if args.preset else settings.strategy
    mask = mask_options(args)
    say_weaker_options(settings.mask_policy, mask, strategy.verify.min_probability if strategy.verify else None)
    planned = plan(args.inputs, args.output, args.overwrite, args.metadata, args.preview)
    for source, reason in planned.failed:
        log.error("%s: not masked: %s", source, reason)
    for source, reason in planned.skipped:
        log.info("%s: skipped: %s", source, reason)
    # On the command line the user is the operator: the options apply as given, weaker ones too (said above).
    options = dataclasses.replace(
        settings.pipeline_options, masks=dataclasses.replace(settings.mask_policy, requests_may_weaken=True)
    )
    budget = PixelBudget(settings.max_pixels_in_flight)
    job = FileJob(mask, args.metadata, settings.worker_id, args.jobs, settings.max_image_bytes, args.preview)
    outcomes = anonymize_files(
        job, planned.targets, lambda: Anonymizer(ScanDetector(strategy, settings.models_dir), options, budget)
    )
    for outcome in outcomes:
        if outcome.error:
            log.error("%s: not masked: %s", outcome.source, outcome.error)
        elif str(outcome.output) != "-":
            print(f"{outcome.output}" if args.preview else f"{outcome.output}\t{outcome.faces} faces")
    failed = sum(1 for o in outcomes if o.error) + len(planned.failed)
    total = len(outcomes) + len(planned.failed)
    verb = "drew" if args.preview else "masked"
    others = f" ({len(planned.skipped)} other files skipped)" if planned.skipped else ""
    log.info("%s %d of %d images into %s%s", verb, total - failed, total, args.output, others)
    return 1 if failed else 0


def say_weaker_options(policy: MaskPolicy, mask: MaskOptions | None, preset_probability: float | None) -> None:
    """Say which options are weaker than the service's defaults: on the command line they are applied."""
    if mask is None:
        return
    default = policy.defaults
    weaker = []
    if mask.strength is not None and mask.strength < default.strength:
        weaker.append(f"--strength {mask.strength:g} (default {default.strength:g})")
    if mask.margin is not None and mask.margin < default.margin:
        weaker.append(f"--margin {mask.margin:g} (default {default.margin:g})")
    if mask.shape is not None and mask.shape is not default.shape and mask.shape.value == "ellipse":
        weaker.append("--shape ellipse (default box: an ellipse leaves the corners of the box visible)")
    probability = mask.min_face_probability
    if probability is not None and preset_probability is not None and probability > preset_probability:
        weaker.append(f"--min-face-probability {probability:g} (the preset's {preset_probability:g})")
    if weaker:
        log.warning(
            "applying options weaker than the service's defaults: %s. On the command line you are the operator; "
            "a Kafka or HTTP request asking for the same is raised to the defaults",
            ", ".join(weaker),
        )


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


def reachable_topics(settings: Settings, topics: list[str], timeout_s: float) -> None:
    """Raises SetupError (one clear line) when the brokers do not answer within `timeout_s` or lack a topic."""
    from consumer.kafka.admin import missing_topics

    if missing := missing_topics(settings.kafka_client_config(), topics, timeout_s):
        raise SetupError(f"topics {', '.join(missing)} do not exist: run `faceguard topics create`")


def cmd_collect(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.collect import collect

    reachable_topics(settings, settings.topics.outputs, min(args.timeout, 10.0))
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
    if args.expect is not None and collected.finished < args.expect:
        log.error("collected %d of the %d requests expected within %g s", collected.finished, args.expect, args.timeout)
        return 1
    return 0


DLQ_REACH_TIMEOUT_S = 10.0  # how long `dlq list` and `dlq redrive` wait for the brokers before saying so


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

    reachable_topics(settings, [settings.topic_dlq], DLQ_REACH_TIMEOUT_S)
    count = 0
    for letter in dead_letters(settings.kafka_client_config(), settings.topic_dlq, dlq_filter(args)):
        count += 1
        print(describe(letter, as_json=args.json))
    log.info("%d dead letters match", count)
    return 0


def cmd_dlq_redrive(settings: Settings, args: argparse.Namespace) -> int:
    from consumer.commands.dlq import dead_letters, describe, plan_redrive, redrive

    reachable_topics(settings, [settings.topic_dlq], DLQ_REACH_TIMEOUT_S)
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
    from consumer.evaluation.recall import Half

    split = Half(args.split)
    with tempfile.TemporaryDirectory(prefix="faceguard-walls-") as work:  # the walls, when asked for
        return _evaluate_suites(settings, args, split, Path(work))


def _evaluate_suites(settings: Settings, args: argparse.Namespace, split: Half, work: Path) -> int:
    from consumer.evaluation.recall import (
        AnnotationsError,
        evaluate_strategy,
        format_per_image,
        format_table,
        half_of,
    )
    from consumer.evaluation.suites import Suite, suite_images

    if args.annotations is not None and args.suite:
        raise UsageError("--annotations measures your file instead of a suite: give one or the other")
    if args.subset is not None and args.annotations is None:
        raise UsageError("--subset picks images of your --annotations file; a suite picks its own")
    summaries = {}
    for suite in [Suite(name) for name in args.suite or [Suite.FACES.value]]:
        if args.annotations is not None:
            images = annotated_images(args.annotations, args.subset)
            images = half_of(images[: args.limit] if args.limit else images, split)
            name = str(args.annotations)
        else:
            try:
                images = suite_images(suite, split=split, limit=args.limit, work=work, models_dir=settings.models_dir)
            except FileNotFoundError as exc:
                raise SetupError(str(exc)) from exc
            name = suite.value
        try:
            reports = {
                preset.value: evaluate_strategy(images, PRESETS[preset], settings.models_dir, settings.mask_margin)
                for preset in args.preset or [settings.preset]
            }
        except AnnotationsError as exc:  # a photo that cannot be decoded: named, one line
            raise SetupError(str(exc)) from exc
        print(f"{name}: {len(images)} photo{'' if len(images) == 1 else 's'} ({split.value})")
        print(format_table(reports))
        if args.annotations is None and not suite.annotated:
            print(format_per_image(reports))
        summaries[name] = {preset: report.summary() for preset, report in reports.items()}
        if args.annotations is not None:
            break
    if args.json:
        print(json.dumps(summaries))
    return 0


def annotated_images(path: Path, subset: str | None) -> list[AnnotatedImage]:
    """The images of the user's annotations file (of `subset`, when given). Raises UsageError when there is
    none, or the file or a line of it is not what `load_annotations` reads."""
    from consumer.evaluation.recall import AnnotationsError, load_annotations

    if not path.is_file():
        raise UsageError(f"--annotations {path}: no such file")
    try:
        images = load_annotations(path, subset)
    except AnnotationsError as exc:
        raise UsageError(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text") from exc
    if not images:
        raise UsageError(f"{path} annotates no image" + ("" if subset is None else f" of subset {subset!r}"))
    return images


HANDLERS = {
    "worker": cmd_worker,
    "serve": cmd_serve,
    "probe": cmd_probe,
    "submit": cmd_submit,
    "anonymize": cmd_anonymize,
    "topics create": cmd_topics_create,
    "collect": cmd_collect,
    "eval": cmd_eval,
    "dlq list": cmd_dlq_list,
    "dlq redrive": cmd_dlq_redrive,
}
