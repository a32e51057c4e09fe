#!/usr/bin/env python3
"""JSON schemas of the Kubernetes, KEDA and Prometheus-operator kinds, for kubeconform, offline.

    .venv/bin/python ops/k8s_schemas.py [--dest .cache/k8s-schemas]

Every source comes from the Go module proxy (`go mod download`), pinned below, and nothing is
fetched while the tests run: the Kubernetes OpenAPI document (`api/openapi-spec/swagger.json` of
the k8s.io/kubernetes module) and the CustomResourceDefinitions that KEDA and the Prometheus
operator publish in their modules. They are converted the way kubeconform's own
openapi2jsonschema does it, strict and standalone:

- one file per kind and version, named as kubeconform looks it up
  (`{{ .ResourceKind }}{{ .KindSuffix }}.json`: `deployment-apps-v1.json`, `scaledobject-keda-v1alpha1.json`),
  holding the definitions it refers to, so no reference leaves the file;
- objects admit no property their schema does not name (a misspelt key is an error);
- int-or-string fields and quantities admit both forms, as the API server does.

Prints the folder. Rewritten only when the pins change (a stamp file records them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import go_tools

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DEST = REPO / ".cache" / "k8s-schemas"


@dataclass(frozen=True)
class Source:
    """A file inside a Go module, at a pinned version."""

    module: str
    version: str
    path: str

    def read(self) -> str:
        return (go_tools.module_source(self.module, self.version) / self.path).read_text()


KEDA = ("github.com/kedacore/keda/v2", "v2.21.0")
PROMETHEUS_OPERATOR = ("github.com/prometheus-operator/prometheus-operator", "v0.85.0")
KUBERNETES = Source("k8s.io/kubernetes", "v1.34.2", "api/openapi-spec/swagger.json")
CRDS = [
    Source(*KEDA, "config/crd/bases/keda.sh_scaledobjects.yaml"),
    Source(*KEDA, "config/crd/bases/keda.sh_triggerauthentications.yaml"),
    Source(*PROMETHEUS_OPERATOR, "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"),
    Source(*PROMETHEUS_OPERATOR, "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"),
]
BOTH_FORMS = [{"type": "string"}, {"type": "integer"}]
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

Schema = dict[str, Any]


def schema_name(kind: str, group: str, version: str) -> str:
    """kubeconform's file name for a kind: its KindSuffix is the group's first label and the version."""
    suffix = f"-{group.split('.', maxsplit=1)[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


def strict(node: Any) -> Any:
    """A copy where objects with named properties admit no others and int-or-string admits both."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items()}
    if out.get("format") == "int-or-string" or out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.pop("format", None)
        out["oneOf"] = BOTH_FORMS
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            yield ref.removeprefix("#/definitions/")
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def closure(name: str, definitions: dict[str, Schema]) -> dict[str, Schema]:
    """The definitions `name` reaches, itself included."""
    reached: dict[str, Schema] = {}
    pending = [name]
    while pending:
        current = pending.pop()
        if current not in reached:
            reached[current] = definitions[current]
            pending.extend(references(definitions[current]))
    return reached


def kubernetes_schemas(swagger: Schema) -> Iterator[tuple[str, Schema]]:
    definitions = {name: strict(schema) for name, schema in swagger["definitions"].items()}
    definitions[QUANTITY] = {
        "description": "A quantity such as 500m or 1Gi.",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    }
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
            api_version = f"{group}/{version}" if group else version
            document = {**schema, "definitions": closure(name, definitions)}
            document["properties"] = {
                **schema["properties"],
                "apiVersion": {"type": "string", "enum": [api_version]},
                "kind": {"type": "string", "enum": [kind]},
            }
            yield schema_name(kind, group, version), document


def crd_schemas(crd: Schema) -> Iterator[tuple[str, Schema]]:
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["properties"] = {
            **schema.get("properties", {}),
            "apiVersion": {"type": "string", "enum": [f"{group}/{version['name']}"]},
            "kind": {"type": "string", "enum": [kind]},
            "metadata": {"type": "object"},
        }
        yield schema_name(kind, group, version["name"]), schema


def write(dest: Path) -> Path:
    pins = json.dumps([asdict(source) for source in [KUBERNETES, *CRDS]])
    stamp = dest / ".sources"
    if stamp.exists() and stamp.read_text() == pins:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    documents = dict(kubernetes_schemas(json.loads(KUBERNETES.read())))
    for source in CRDS:
        documents.update(crd_schemas(yaml.safe_load(source.read())))
    for name, document in documents.items():
        (dest / name).write_text(json.dumps(document))
    stamp.write_text(pins)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    try:
        print(write(parser.parse_args().dest))
    except go_tools.ToolError as exc:
        print(f"k8s-schemas: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
