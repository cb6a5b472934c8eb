"""Optimisers (PyTorch's update rules) and learning-rate schedulers.

    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.StepLR(opt, step_size=10, gamma=0.5)
    for epoch in range(n):
        opt.zero_grad(); loss = ...; loss.backward(); opt.step()
        sched.step()
"""

from . import lr_scheduler
from .lr_scheduler import ExponentialLR, LRScheduler, StepLR
from .optimizer import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "ExponentialLR", "LRScheduler", "Optimizer", "RMSprop",
           "StepLR", "lr_scheduler"]
