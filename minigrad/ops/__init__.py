"""All ops, one family a module. Each op is a ``Function`` subclass plus a function that applies it."""

from .arithmetic import add, div, divide, mul, multiply, neg, negative, pow, power, sub, subtract
from .broadcast import ShapeError, unbroadcast
from .elementwise import (
    abs,
    astype,
    clamp,
    clip,
    clone,
    cos,
    equal,
    exp,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    masked_fill,
    maximum,
    minimum,
    not_equal,
    relu,
    sigmoid,
    sin,
    softplus,
    sqrt,
    tanh,
    where,
)
from .indexing import TopK, gather, index_select, sort, topk
from .linalg import bmm, dot, matmul, mm
from .reduction import (
    MaxMin,
    amax,
    amin,
    argmax,
    argmin,
    cumsum,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    sum,
)
from .shape import (
    broadcast_to,
    cat,
    chunk,
    concatenate,
    expand_dims,
    getitem,
    narrow,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unbind,
)
from .statistics import norm, std, var

__all__ = [
    "ShapeError", "abs", "add", "amax", "amin", "argmax", "argmin", "astype", "broadcast_to", "chunk",
    "clamp", "clip", "concatenate", "div", "divide", "dot", "equal", "exp", "expand_dims", "getitem",
    "greater", "greater_equal", "less", "less_equal", "log", "log_softmax", "logsumexp", "matmul",
    "max", "maximum", "mean", "min", "minimum", "mul", "multiply", "neg", "negative", "not_equal",
    "permute", "pow", "power", "relu", "reshape", "sigmoid", "softmax", "softplus", "split", "sqrt",
    "squeeze", "stack", "sub", "subtract", "sum", "tanh", "transpose", "unbind", "unbroadcast", "where",
]
__all__ += ["MaxMin", "TopK", "cat", "clone", "gather", "masked_fill", "norm", "std", "topk", "var"]
__all__ += ["bmm", "cos", "cumsum", "index_select", "mm", "narrow", "repeat", "sin", "sort"]
