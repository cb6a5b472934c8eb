"""Modules, layers, losses, initialisers and gradient clipping that models are written in.

    from minigrad import nn
    from minigrad.nn import functional as F

    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    loss = F.cross_entropy(model(x), targets)
"""

from . import functional, init, utils
from .layers import Dropout, Embedding, Identity, Linear, ReLU, Sequential, Sigmoid, Tanh
from .module import IncompatibleKeys, Module, ModuleList, StateDictError
from .parameter import Parameter

__all__ = [
    "Dropout", "Embedding", "Identity", "IncompatibleKeys", "Linear", "Module", "ModuleList", "Parameter",
    "ReLU", "Sequential", "Sigmoid", "StateDictError", "Tanh", "functional", "init", "utils",
]
