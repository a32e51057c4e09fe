"""The package's rooms and which may import which: checked over every import in `consumer/`.

    cli, __main__           the command line: a composition root
    config                  the settings; read only by the composition roots
    errors, records, topics, native_stderr   shared by every room
    imaging/ detection/ sources/   the stages: no settings, no Kafka, nothing above them
    processing/             one record's work: the stages composed; no engine, no Kafka client
    kafka/                  the only room that imports confluent_kafka
    engine/                 the worker process; engine.service is its composition root
    api/                    the HTTP API; api.service is its composition root; no worker, no command line
    observability/ commands/ evaluation/

Imports inside functions count as much as those at the top of a module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

PACKAGE = REPO / "consumer"
COMPOSITION_ROOTS = frozenset({"consumer.cli", "consumer.engine.service", "consumer.api.service"})
STAGES = ("consumer.imaging", "consumer.detection", "consumer.sources")


@dataclass(frozen=True)
class Rule:
    """Modules under `importer` (or its exceptions) must not import anything under `forbidden`."""

    importer: str
    forbidden: tuple[str, ...]
    why: str
    except_for: frozenset[str] = frozenset()


RULES = [
    Rule("consumer", ("confluent_kafka",), "only consumer.kafka speaks to Kafka", frozenset({"consumer.kafka"})),
    Rule("consumer", ("consumer.config",), "the settings stop at the composition roots", COMPOSITION_ROOTS),
    *(
        Rule(
            stage,
            (
                "consumer.processing",
                "consumer.engine",
                "consumer.kafka",
                "consumer.commands",
                "consumer.observability",
                "consumer.evaluation",
                "consumer.cli",
                "consumer.api",
            ),
            "a stage knows nothing of what runs it",
        )
        for stage in STAGES
    ),
    Rule(
        "consumer.processing",
        ("consumer.engine", "consumer.kafka", "consumer.commands", "consumer.evaluation", "consumer.cli"),
        "one record's work runs without a worker or a broker",
    ),
    Rule(
        "consumer.kafka",
        ("consumer.engine", "consumer.processing", "consumer.commands", "consumer.evaluation", "consumer.cli"),
        "the Kafka boundary converts records; it does not process them",
    ),
    Rule(
        "consumer.api",
        ("consumer.engine", "consumer.commands", "consumer.evaluation", "consumer.cli"),
        "the HTTP door runs the pipeline, not the worker",
        frozenset({"consumer.api.service"}),
    ),
    Rule(
        "consumer",
        ("consumer.api",),
        "only the command line starts the HTTP API",
        frozenset({"consumer.api", "consumer.cli"}),
    ),
    Rule(
        "consumer",
        ("consumer.evaluation",),
        "research code stays out of the runtime",
        frozenset({"consumer.evaluation", "consumer.cli"}),
    ),
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str) -> set[str]:
    """Every module an import statement in `source` names, at any depth (`from a import b` names a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(modules: dict[str, str]) -> list[str]:
    """`module imports name: why` for every import that breaks a rule, given each module's source."""
    found = []
    for module, source in sorted(modules.items()):
        for name in sorted(imported_names(source)):
            for rule in RULES:
                if not under(module, rule.importer) or any(under(module, e) for e in rule.except_for):
                    continue
                if any(under(name, f) for f in rule.forbidden) and not under(name, module):
                    found.append(f"{module} imports {name}: {rule.why}")
    return found


def package_sources() -> dict[str, str]:
    return {module_name(path, PACKAGE): path.read_text() for path in PACKAGE.rglob("*.py")}


def test_every_import_in_the_package_keeps_to_the_rooms() -> None:
    assert violations(package_sources()) == []


def test_the_rooms_are_there() -> None:
    """Each room of the module docstring exists, so a rule can never pass because its room moved away."""
    modules = package_sources()
    for room in [*STAGES, "consumer.processing", "consumer.kafka", "consumer.engine", *COMPOSITION_ROOTS]:
        assert room in modules, room
    assert any(under(m, "consumer.kafka") and "confluent_kafka" in s for m, s in modules.items())


def test_a_forbidden_import_is_caught_wherever_it_stands() -> None:
    sources = package_sources()
    broken = {
        **sources,
        "consumer.imaging.mask": sources["consumer.imaging.mask"] + "\nfrom consumer.config import Settings\n",
        "consumer.processing.pipeline": sources["consumer.processing.pipeline"]
        + "\ndef later():\n    import consumer.engine.worker\n",
        "consumer.engine.worker": sources["consumer.engine.worker"] + "\nfrom confluent_kafka import Producer\n",
    }
    assert violations(broken) == [
        "consumer.engine.worker imports confluent_kafka: only consumer.kafka speaks to Kafka",
        "consumer.engine.worker imports confluent_kafka.Producer: only consumer.kafka speaks to Kafka",
        "consumer.imaging.mask imports consumer.config: the settings stop at the composition roots",
        "consumer.imaging.mask imports consumer.config.Settings: the settings stop at the composition roots",
        "consumer.processing.pipeline imports consumer.engine.worker: one record's work runs without a worker or "
        "a broker",
    ]
