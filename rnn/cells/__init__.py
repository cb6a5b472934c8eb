"""The built-in cells (PyTorch's ``RNNCell``, ``GRUCell``, ``LSTMCell``) and the one registry of cells
by name, used by the models, the command line, the experiments, the bench and the drawings.

A registry entry is a cell factory ``factory(input_size, hidden_size, *, rng=None, dtype="float32")
-> Cell``; a ``Cell`` subclass with that constructor is one. ``register_cell("mgu", MGU)`` makes a
user's cell available everywhere a cell name is taken (``rnn.SequenceClassifier(..., cell="mgu")``,
``python -m rnn train --cell mgu`` after importing the module that registers it).
"""

from __future__ import annotations

from collections.abc import Callable

from ..cell import Cell
from .base import TorchCell, float_dtype, is_zero_state
from .elman import NONLINEARITIES, RNNCell, rnn_step
from .gru import GRUCell, gru_step
from .lstm import LSTMCell, lstm_step

__all__ = [
    "CELLS", "MGU", "NONLINEARITIES", "CellFactory", "GRUCell", "IndRNN", "LSTMCell", "LayerNormRNN",
    "PeepholeLSTM", "RNNCell", "TorchCell", "cell_factory", "float_dtype", "gru_step", "is_zero_state",
    "lstm_step", "register_cell", "rnn_step",
]

CellFactory = Callable[..., Cell]

#: name -> cell factory; the first three are the built-in PyTorch cells
CELLS: dict[str, CellFactory] = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}


def register_cell(name: str, factory: CellFactory) -> CellFactory:
    """Add a cell factory to the registry under ``name`` (a lower-case identifier not yet taken by
    another factory); returns the factory."""
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise ValueError(f"register_cell: name must be a lower-case identifier, got {name!r}")
    if name in CELLS and CELLS[name] is not factory:
        raise ValueError(f"register_cell: {name!r} is already registered ({CELLS[name]!r})")
    if not callable(factory):
        raise TypeError(f"register_cell: factory must be callable, got {type(factory).__name__}")
    CELLS[name] = factory
    return factory


def cell_factory(cell: str | CellFactory) -> CellFactory:
    """The factory of a registered cell name, or ``cell`` itself when it is callable."""
    if isinstance(cell, str):
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)} or a cell factory, got {cell!r}")
        return CELLS[cell]
    if callable(cell):
        return cell
    raise TypeError(f"cell must be a registered name ({', '.join(CELLS)}) or a cell factory "
                    f"(input_size, hidden_size, *, rng, dtype) -> Cell, got {type(cell).__name__}")


from .zoo import MGU, IndRNN, LayerNormRNN, PeepholeLSTM  # noqa: E402  (the cell zoo registers itself)
