"""Evaluation of the arithmetic expressions that original config files embed.

The original Detectron2 configs write lists such as
``!!python/object/apply:eval ["[int(x * 0.1 * 512) for x in range(5, 21)]"]``. Running ``eval``
on a config file would let any file run code, so this module interprets only literals,
arithmetic, comparisons, lists / tuples, list comprehensions and a few pure built-ins.
"""
from __future__ import annotations

import ast
import operator
from typing import Any

__all__ = ["safe_eval_expression"]

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}
_FUNCS = {"int": int, "float": float, "round": round, "range": range, "min": min, "max": max,
          "abs": abs, "list": list, "tuple": tuple, "len": len}


def safe_eval_expression(expr: str) -> Any:
    """Evaluate ``expr`` if it uses only literals, arithmetic, comprehensions and pure built-ins.

    Args:
        expr: a Python expression, e.g. ``"[int(x * 0.1 * 512) for x in range(5, 21)]"``.

    Returns:
        The value; ``range`` results are converted to lists.

    Raises:
        ValueError: the expression uses anything else (attribute access, imports, names other
            than comprehension variables and the allowed built-ins, ...).
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ValueError(f"Invalid expression in config: {expr!r}: {e}") from e
    value = _Evaluator(expr).visit(tree.body, {})
    return list(value) if isinstance(value, range) else value


class _Evaluator:
    def __init__(self, expr: str):
        self.expr = expr

    def fail(self, node: ast.AST) -> None:
        raise ValueError(
            f"Config expression {self.expr!r} uses {type(node).__name__}, which is not allowed "
            "(only literals, arithmetic, lists and comprehensions over int/float/range)"
        )

    def visit(self, node: ast.AST, env: dict) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.visit(e, env) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](self.visit(node.left, env), self.visit(node.right, env))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.visit(node.operand, env))
        if isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
            left = self.visit(node.left, env)
            for op, comp in zip(node.ops, node.comparators):
                right = self.visit(comp, env)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            self.fail(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
            return _FUNCS[node.func.id](*[self.visit(a, env) for a in node.args])
        if isinstance(node, ast.ListComp):
            return list(self._comprehension(node.elt, node.generators, env))
        self.fail(node)

    def _comprehension(self, elt: ast.AST, generators: list, env: dict):
        if not generators:
            yield self.visit(elt, env)
            return
        gen = generators[0]
        if not isinstance(gen.target, ast.Name) or gen.is_async:
            self.fail(gen.target)
        for value in self.visit(gen.iter, env):
            inner = dict(env)
            inner[gen.target.id] = value
            if all(self.visit(cond, inner) for cond in gen.ifs):
                yield from self._comprehension(elt, generators[1:], inner)
