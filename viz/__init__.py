"""viz: Graphviz drawings of minigrad computation graphs, with time steps as clusters.

    import viz
    viz.retain_grads(loss)          # optional: keep intermediate gradients for the picture
    loss.backward()
    g = viz.draw(loss, view="collapsed")     # a graphviz.Digraph; g.source is the DOT text
    viz.render(g, "graph.svg")               # needs the Graphviz `dot` binary
    viz.draw_rolled(model)                   # the folded cell with its feedback loop

viz imports minigrad only (the command line ``python -m viz`` imports rnn lazily to build models).
"""

from .draw import draw
from .render import Drawing, RenderError, pipe, render
from .rolled import draw_rolled
from .walk import retain_grads

__all__ = ["Drawing", "RenderError", "draw", "draw_rolled", "pipe", "render", "retain_grads"]
