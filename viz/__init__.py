"""viz: Graphviz drawings of any minigrad computation graph, with time steps as clusters.

    import viz
    viz.retain_grads(loss)                   # optional: keep intermediate gradients for the picture
    loss.backward()
    g = viz.draw(loss, view="collapsed")     # a graphviz.Digraph; g.source is the DOT text
    viz.render(g, "graph.svg")               # needs the Graphviz `dot` binary
    viz.draw_rolled(model)                   # the folded cell of any recurrent layer, with its loop

viz imports minigrad only (never rnn): it clusters by the scopes the graph records, reading time steps
with ``mg.find_step``, and names parameters by their ``name``. Model drawings from the shell:
``python -m rnn draw``.
"""

from .draw import draw
from .render import Drawing, RenderError, pipe, render
from .rolled import draw_rolled
from .walk import retain_grads

__all__ = ["Drawing", "RenderError", "draw", "draw_rolled", "pipe", "render", "retain_grads"]
