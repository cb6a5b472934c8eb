"""A pointwise formula (``minigrad.ops.pointwise``) as one Numba scalar expression.

``translate("g * (1 - out * out)", {"g": "a_h", "out": "tanh_2"}, {}, "F")`` gives
``a_h * (F(1.0) - tanh_2 * tanh_2)``: variables renamed to the loop's scalars, literals and constant
parameters typed as the loop's dtype ``F`` (so a float32 loop stays float32), constant sub-expressions
folded, ``where(c, a, b)`` as ``(a if c else b)``, small integer powers as products, and each function
name mapped to Numba scalar code: ``fm.*`` (``minigrad.kernels.fastmath``: vectorising exp, log,
tanh, sigmoid, NaN-propagating maximum/minimum), ``np.sqrt``, ``np.sign``, ...
"""

from __future__ import annotations

import ast
import math
from typing import Any

from ..ops.pointwise import ARRAY_FUNCTIONS
from .ir import CompileError

#: Numba scalar code per formula function (the same names as ``ARRAY_FUNCTIONS``)
SCALAR_FUNCTIONS: dict[str, str] = {
    "exp": "fm.exp", "log": "fm.log", "log1p": "fm.log1p", "tanh": "fm.tanh", "sigmoid": "fm.sigmoid",
    "maximum": "fm.maximum", "minimum": "fm.minimum", "sqrt": "np.sqrt", "sin": "np.sin",
    "cos": "np.cos", "sign": "np.sign", "abs": "abs", "where": "", "softplus": "",
}
assert set(SCALAR_FUNCTIONS) == set(ARRAY_FUNCTIONS)


def translate(formula: str, env: dict[str, str], params: dict[str, Any], dtype_name: str) -> str:
    """The formula as Numba scalar source (see the module docstring)."""
    tree = ast.parse(formula, mode="eval")
    tree = _Rewrite(env, params, dtype_name).visit(tree)
    return type_constants(ast.unparse(ast.fix_missing_locations(tree)), dtype_name)


def _const(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant)


class _Rewrite(ast.NodeTransformer):
    def __init__(self, env: dict[str, str], params: dict[str, Any], dtype_name: str) -> None:
        self.env, self.params, self.dt = env, params, dtype_name

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.params:
            v = self.params[node.id]
            return ast.Constant(v.item() if hasattr(v, "item") else v)
        if node.id not in self.env:
            raise CompileError(f"minigrad.compile: formula variable {node.id!r} is unbound")
        return ast.Name(self.env[node.id], ast.Load())

    def _fold(self, node: ast.AST) -> ast.AST:
        try:
            tree = ast.fix_missing_locations(ast.Expression(node))
            return ast.Constant(eval(compile(tree, "<fold>", "eval"), {}))
        except (ArithmeticError, ValueError):
            return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        return self._fold(node) if _const(node.operand) else node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        return self._fold(node) if _const(node.left) and all(map(_const, node.comparators)) else node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if _const(node.left) and _const(node.right):
            return self._fold(node)
        if isinstance(node.op, ast.Pow) and _const(node.right):
            return self._power(node.left, node.right.value)
        return node

    def _power(self, base: ast.AST, p: Any) -> ast.AST:
        """x ** p for a constant p: products for small integers (pow() does not vectorise)."""
        if float(p).is_integer() and abs(p) <= 4:
            k = int(abs(p))
            if k == 0:
                return ast.Constant(1.0)
            prod = base
            for _ in range(k - 1):
                prod = ast.BinOp(prod, ast.Mult(), base)
            return ast.BinOp(ast.Constant(1.0), ast.Div(), prod) if p < 0 else prod
        return ast.BinOp(base, ast.Pow(), ast.Constant(float(p)))

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in SCALAR_FUNCTIONS:
            raise CompileError(f"minigrad.compile: formula function {name!r} has no scalar version")
        args = [self.visit(a) for a in node.args]
        if name == "where":
            c, a, b = args
            if _const(c):
                return a if c.value else b
            return ast.IfExp(c, a, b)
        if name == "softplus":  # composed here: a scalar softplus would be too big to inline
            (v,) = args
            y = ast.parse(f"fm.log1p(fm.exp(-abs({ast.unparse(v)})))", mode="eval").body
            return ast.IfExp(ast.Compare(v, [ast.Gt()], [ast.Constant(0.0)]), ast.BinOp(v, ast.Add(), y), y)
        if all(map(_const, args)) and name in ("exp", "log", "sqrt", "abs"):
            return ast.Constant({"exp": math.exp, "log": math.log, "sqrt": math.sqrt,
                                 "abs": abs}[name](args[0].value))
        func = ast.parse(SCALAR_FUNCTIONS[name], mode="eval").body
        return ast.Call(func, args, [])

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return node


def type_constants(src: str, dtype_name: str) -> str:
    """Numeric literals of an expression as ``F(value)`` (the loop's dtype)."""

    class Typed(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                return node
            return ast.Call(ast.Name(dtype_name, ast.Load()), [ast.Constant(float(node.value))], [])

    tree = Typed().visit(ast.parse(src, mode="eval"))
    return ast.unparse(ast.fix_missing_locations(tree))
