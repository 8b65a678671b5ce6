"""Every status write goes through the store's guarded moves: code outside ``store/`` that
writes a row's ``status`` bypasses the transition table and the job's log."""

from __future__ import annotations

import ast
from pathlib import Path

import quipu

SRC = Path(quipu.__file__).parent
STORE = SRC / "store"


def _writes(tree: ast.AST) -> list[int]:
    """Lines that write a ``status``: an assignment to ``x.status`` (but ``self.status`` of
    an error or response object, and the result of a guarded ``move_*`` kept in step), or an
    UPDATE's ``.values(status=...)``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if not (isinstance(target, ast.Attribute) and target.attr == "status"):
                    continue
                if isinstance(target.value, ast.Name) and target.value.id == "self":
                    continue
                value = node.value
                if isinstance(value, ast.Attribute):  # move_task(...).value
                    value = value.value
                if (
                    isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name)
                    and value.func.id.startswith("move_")
                ):
                    continue
                lines.append(node.lineno)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
            and any(k.arg == "status" for k in node.keywords)
        ):
            lines.append(node.lineno)
    return lines


def test_no_code_outside_the_store_writes_a_status() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if STORE in path.parents:
            continue
        found += [
            f"{path.relative_to(SRC)}:{line}" for line in _writes(ast.parse(path.read_text()))
        ]
    assert found == []


def test_the_check_sees_a_raw_write() -> None:
    raw = "job.status = 'failed'\nsession.execute(update(Task).values(status='canceled'))\n"
    kept = "task.status = move_task(s, task_id=1).value\nself.status = 404\n"
    assert _writes(ast.parse(raw)) == [1, 2]
    assert _writes(ast.parse(kept)) == []
