"""Modules, layers, losses and initialisers that models are written in."""

from .module import Module, ModuleList
from .parameter import Parameter

__all__ = ["Module", "ModuleList", "Parameter"]
