"""PyTorch code runs on minigrad with the imports renamed: a word-language-model script written for
PyTorch (torch_port/word_lm.py) trains, and the idioms of PyTorch's tutorials run as written."""

import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as torch

sys.path.insert(0, str(Path(__file__).parent / "torch_port"))
import word_lm


def test_word_language_model_script_learns(capsys):
    losses = word_lm.main()
    assert losses[-1] < 0.1 < np.log(5) < losses[0] + 0.5     # a periodic text is learnt
    assert "| epoch   3 | loss" in capsys.readouterr().out


IDIOMS = {
    "tensor_from_lists": "x = torch.tensor([[1., 2.], [3., 4.]]); assert x.dtype == torch.float32",
    "long_targets": "y = torch.tensor([0, 2, 1]); assert y.dtype == torch.long",
    "size_and_view": "x = torch.randn(4, 6); assert x.size() == (4, 6) and x.view(-1, 3).size(0) == 8",
    "max_indices": ("_, pred = torch.tensor([[0.1, 0.9], [0.8, 0.2]]).max(1)\n"
                    "assert pred.tolist() == [1, 0]"),
    "argmax_eq_sum": "acc = (torch.tensor([[0.1, 0.9]]).argmax(dim=1) == torch.tensor([1])).sum().item()",
    "split_sizes": "a, b = torch.arange(6).split(3); assert b.tolist() == [3, 4, 5]",
    "cat_dim": "z = torch.cat([torch.zeros(2, 3), torch.ones(2, 3)], dim=0); assert z.shape == (4, 3)",
    "stack_dim": "assert torch.stack([torch.zeros(3)] * 2, dim=1).shape == (3, 2)",
    "no_grad_sgd": ("w = torch.randn(3, requires_grad=True); (w * w).sum().backward()\n"
                    "with torch.no_grad():\n    w -= 0.1 * w.grad\n    w.grad.zero_()"),
    "grad_tensor": ("w = torch.ones(2, requires_grad=True); (w * 3).sum().backward()\n"
                    "n = w.grad.norm().item()"),
    "grad_data": "w = torch.ones(2, requires_grad=True); (w * 3).sum().backward(); g = w.grad.data",
    "detach_numpy": "a = torch.randn(2, requires_grad=True); v = a.detach().numpy()",
    "item_and_tolist": "s = torch.tensor([1.5]).sum().item(); l = torch.zeros(2).tolist()",
    "module_sequential": ("net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
                          "out = net(torch.randn(5, 4)); assert out.shape == (5, 2)"),
    "crossentropy_module": ("crit = nn.CrossEntropyLoss()\n"
                            "loss = crit(torch.randn(3, 5, requires_grad=True), torch.tensor([1, 0, 4]))\n"
                            "loss.backward()"),
    "optimizer_loop": ("m = nn.Linear(3, 1); opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)\n"
                       "for _ in range(3):\n    opt.zero_grad()\n"
                       "    loss = nn.MSELoss()(m(torch.randn(4, 3)), torch.zeros(4, 1))\n"
                       "    loss.backward()\n    opt.step()"),
    "clip_grad": ("m = nn.Linear(3, 1); m(torch.randn(2, 3)).sum().backward()\n"
                  "total = torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); f'{total:.3f}'"),
    "state_dict_roundtrip": "m = nn.Linear(2, 2); m2 = nn.Linear(2, 2); m2.load_state_dict(m.state_dict())",
    "module_to_cpu_double": "m = nn.Linear(2, 2).to('cpu').double(); assert m.weight.dtype == torch.float64",
    "eval_train": "m = nn.Dropout(0.5); m.eval(); assert not m.training; m.train()",
    "softmax_dim": ("p = nn.functional.softmax(torch.randn(2, 3), dim=1)\n"
                    "assert abs(float(p.sum()) - 2) < 1e-5"),
    "masked_fill": "x = torch.zeros(2, 2).masked_fill(torch.tensor([[True, False], [False, True]]), -1.0)",
    "in_place_accumulate": ("w = torch.ones(2, requires_grad=True); loss = 0\n"
                            "for k in range(3):\n    loss += (w * k).sum()\nloss.backward()"),
    "unsqueeze_squeeze": "assert torch.zeros(3).unsqueeze(0).squeeze(0).shape == (3,)",
    "permute_contiguous": ("y = torch.zeros(2, 3, 4).permute(2, 0, 1).contiguous()\n"
                           "assert y.shape == (4, 2, 3)"),
    "topk": "v, i = torch.tensor([1., 5., 3.]).topk(2); assert i.tolist() == [1, 2]",
    "new_zeros": "h = torch.randn(2, 3).new_zeros(1, 2, 3); assert h.shape == (1, 2, 3)",
    "zeros_like": "z = torch.zeros_like(torch.ones(2, 2)); assert z.sum().item() == 0",
    "manual_seed": ("torch.manual_seed(0); a = torch.randn(2)\n"
                    "torch.manual_seed(0); assert (a == torch.randn(2)).all()"),
    "item_assign": "x = torch.zeros(3); x[1] = 5; assert x.tolist() == [0, 5, 0]",
    "layer_norm": "ln = nn.LayerNorm(4); y = ln(torch.randn(2, 4)); assert y.shape == (2, 4)",
    "embedding_lookup": "emb = nn.Embedding(10, 3); assert emb(torch.tensor([[1, 2]])).shape == (1, 2, 3)",
    "var_std_norm": "x = torch.randn(5, 3); s = x.std(dim=0); v = x.var(); n = x.norm(dim=1)",
    "device_keyword": "device = 'cpu'; x = torch.zeros(2, 3, device=device); m = nn.Linear(3, 1).to(device)",
    "randint_randperm": "y = torch.randint(0, 5, (8,)); p = torch.randperm(8); assert y.dtype == torch.long",
    "mm_bmm": "assert torch.mm(torch.ones(2, 3), torch.ones(3, 4)).shape == (2, 4)",
    "sort_cumsum": "v, i = torch.tensor([3., 1., 2.]).sort(); c = torch.arange(4).cumsum(0)",
    "repeat_index_select": ("r = torch.ones(2, 1).repeat(1, 3)\n"
                            "s = torch.eye(3).index_select(0, torch.tensor([2, 0]))"),
    "method_arith": "x = torch.ones(3); y = x.add(x, alpha=2).mul(0.5).sub(1).div(2)",
    "sin_cos": "t = torch.linspace(0, 1, 5); s = t.sin() ** 2 + t.cos() ** 2; assert s.shape == (5,)",
}


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_pytorch_idiom_runs_as_written(name):
    ns = {"torch": torch, "nn": torch.nn, "optim": torch.optim}
    exec(IDIOMS[name], ns)


def test_wrong_usage_fails_loudly():
    p = torch.nn.Linear(2, 2).weight
    with pytest.raises(AttributeError, match="add_"):
        p.data.add_(1.0)            # .data is the ndarray in minigrad: use p.add_ under no_grad
