"""Fail on private or undocumented names of torch, MLflow, Optuna and SQLAlchemy in the project's code.

Three forms are refused, read from the syntax tree (not by pattern matching the text):
- a private name used as an attribute: `torch._dynamo`, `mlflow.tracking._x`;
- a private name imported: `from mlflow.x import _y`, `from mlflow._x import y`, `import torch._x`;
- an MLflow module that MLflow's Python API reference does not document (DOCUMENTED_MLFLOW below),
  imported (`from mlflow.store.artifact.utils.models import ...`) or reached as an attribute
  (`mlflow.tracking.multimedia.x`); a module is told from an attribute by the files of the installed
  MLflow package, which is not imported.

Usage: `python .ci/public_apis.py [PATH ...]` (default: pipeline/, analysis/ and benchmarks/); exit status 1 with one
`path:line:column: message` line per finding, 0 when there is none.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

WATCHED = ("torch", "mlflow", "optuna", "sqlalchemy")
DEFAULT_PATHS = ("pipeline", "analysis", "benchmarks")
# The modules of https://mlflow.org/docs/latest/python_api/index.html (and the mlflow.data submodules whose
# classes that page documents) that this project may use.
DOCUMENTED_MLFLOW = frozenset(
    {
        "mlflow",
        "mlflow.artifacts",
        "mlflow.client",
        "mlflow.config",
        "mlflow.data",
        "mlflow.data.dataset",
        "mlflow.data.dataset_source",
        "mlflow.data.http_dataset_source",
        "mlflow.data.numpy_dataset",
        "mlflow.data.pandas_dataset",
        "mlflow.entities",
        "mlflow.entities.model_registry",
        "mlflow.environment_variables",
        "mlflow.exceptions",
        "mlflow.models",
        "mlflow.projects",
        "mlflow.pyfunc",
        "mlflow.pytorch",
        "mlflow.server",
        "mlflow.system_metrics",
        "mlflow.tracking",
        "mlflow.types",
        "mlflow.types.schema",  # the API reference's mlflow.types page documents its AnyType, Array, Map, Object
    }
)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def mlflow_root() -> Path | None:
    """The folder of the installed mlflow package (found without importing it)."""
    spec = importlib.util.find_spec("mlflow")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def is_mlflow_module(dotted: str, root: Path | None) -> bool:
    if root is None:
        return False
    relative = Path(*dotted.split(".")[1:])
    return (root / relative / "__init__.py").is_file() or (root / relative).with_suffix(".py").is_file()


class Checker(ast.NodeVisitor):
    def __init__(self, path: str, root: Path | None):
        self.path, self.root, self.findings = path, root, []
        self.bound: dict[str, str] = {}  # local name -> the watched module (or package attribute) it stands for

    def report(self, node: ast.AST, message: str) -> None:
        self.findings.append(f"{self.path}:{node.lineno}:{node.col_offset + 1}: {message}")

    def check_module(self, node: ast.AST, module: str) -> None:
        parts = module.split(".")
        if parts[0] not in WATCHED:
            return
        if any(is_private(part) for part in parts):
            self.report(node, f"private module imported: {module}")
        elif parts[0] == "mlflow" and module not in DOCUMENTED_MLFLOW:
            self.report(node, f"undocumented MLflow module imported: {module}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)
            if alias.name.split(".")[0] in WATCHED:
                local = alias.asname or alias.name.split(".")[0]
                self.bound[local] = alias.name if alias.asname else local

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module.split(".")[0] not in WATCHED:
            return
        self.check_module(node, module)
        for alias in node.names:
            if is_private(alias.name):
                self.report(node, f"private name imported: from {module} import {alias.name}")
            else:
                self.bound[alias.asname or alias.name] = f"{module}.{alias.name}"

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, inner = [], node
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and inner.id in self.bound and isinstance(node.ctx, ast.Load):
            self.check_chain(node, self.bound[inner.id], list(reversed(chain)))
            return  # the whole chain is checked here, not again for each of its inner attributes
        self.generic_visit(node)

    def check_chain(self, node: ast.AST, start: str, chain: list[str]) -> None:
        dotted = start
        for name in chain:
            if is_private(name):
                self.report(node, f"private attribute used: {dotted}.{name}")
                return
            dotted = f"{dotted}.{name}"
            if dotted.startswith("mlflow.") and is_mlflow_module(dotted, self.root):
                if dotted not in DOCUMENTED_MLFLOW:
                    self.report(node, f"undocumented MLflow module used: {dotted}")
                    return


def check_source(source: str, path: str, root: Path | None = None) -> list[str]:
    checker = Checker(path, root)
    checker.visit(ast.parse(source, filename=path))
    return checker.findings


def python_files(paths: list[str]) -> list[Path]:
    files = []
    for name in paths:
        path = Path(name)
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.suffix == ".py" else []
    return files


def main(argv: list[str]) -> int:
    root = mlflow_root()
    findings = []
    for path in python_files(argv or list(DEFAULT_PATHS)):
        findings += check_source(path.read_text(), str(path), root)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
