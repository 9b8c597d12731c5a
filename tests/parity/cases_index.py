"""Parity cases for indexing/joining, recurrent cells and optimizer steps
(tests/parity/test_parity_index.cpp)."""
import torch
from torch.nn.utils import stateless

from torch_parity import Case


def r(*shape, grad=True):
    return torch.randn(*shape).requires_grad_(grad)


def idx(values):
    return torch.tensor(values, dtype=torch.int64)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    cell = torch.nn.LSTMCell(x.shape[-1], h.shape[-1])
    weights = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}
    return stateless.functional_call(cell, weights, (x, (h, c)))


def gru_cell(x, h, w_ih, w_hh, b_ih, b_hh):
    cell = torch.nn.GRUCell(x.shape[-1], h.shape[-1])
    weights = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}
    return stateless.functional_call(cell, weights, (x, h))


def optimizer_run(make_opt, p0, grads, state_keys):
    """Runs torch.optim for len(grads) steps; returns the param and the named state."""
    p = torch.nn.Parameter(p0.detach().clone())
    opt = make_opt([p])
    for g in grads:
        p.grad = g.detach().clone()
        opt.step()
    state = opt.state[p]
    return (p.detach().clone(),) + tuple(state[k].clone() for k in state_keys)


def cases():
    torch.manual_seed(0)
    # ---- joining ----
    a, b, c = r(3, 2, 5), r(3, 4, 5), r(5, 1, 3)  # c enters transposed: [3, 1, 5]
    yield Case("cat_dim1", lambda a, b, c: torch.cat([a, b, c.transpose(0, 2)], 1),
               {"a": a, "b": b, "c": c}, {"dim": 1})
    yield Case("cat_neg", lambda a, b: torch.cat([a, b], -1), {"a": r(4, 3), "b": r(4, 6)},
               {"dim": -1})
    yield Case("stack_dim2", lambda a, b: torch.stack([a, b.t(), a], 2),
               {"a": r(3, 4), "b": r(4, 3)}, {"dim": 2})
    yield Case("split_sizes", lambda x: torch.split(x, [2, 1, 4], dim=1), {"x": r(3, 7, 2)},
               {"dim": 1})
    yield Case("split_chunk", lambda x: torch.chunk(x * 1.5, 3, dim=0), {"x": r(8, 3)})
    # ---- indexing (repeated indices everywhere) ----
    yield Case("index_select_0", lambda x, i: torch.index_select(x, 0, i),
               {"x": r(5, 4), "i": idx([4, 0, 4, 4, 2, 1])}, {"dim": 0})
    yield Case("index_select_neg", lambda x, i: torch.index_select(x, -1, i),
               {"x": r(2, 3, 6), "i": idx([5, 5, 0])}, {"dim": -1})
    yield Case("index_add_1", lambda x, i, s: torch.index_add(x, 1, i, s),
               {"x": r(3, 4), "i": idx([3, 0, 3, 1, 3]), "s": r(3, 5)}, {"dim": 1})
    gi = torch.randint(0, 4, (3, 5, 2))
    yield Case("gather_1", lambda x, i: torch.gather(x, 1, i), {"x": r(3, 4, 2), "i": gi},
               {"dim": 1})
    yield Case("gather_0_small", lambda x, i: torch.gather(x, 0, i),
               {"x": r(4, 6), "i": torch.randint(0, 4, (7, 3))}, {"dim": 0})
    yield Case("scatter_add_0", lambda x, i, s: torch.scatter_add(x, 0, i, s),
               {"x": r(4, 5), "i": torch.randint(0, 4, (6, 5)), "s": r(6, 5)}, {"dim": 0})
    yield Case("scatter_add_neg", lambda x, i, s: torch.scatter_add(x, -1, i, s),
               {"x": r(3, 4), "i": torch.randint(0, 4, (3, 7)), "s": r(3, 7)}, {"dim": -1})
    # ---- recurrent cells ----
    B, I, H = 5, 7, 9
    yield Case("lstm_cell", lstm_cell,
               {"x": r(B, I), "h": r(B, H), "c": r(B, H), "w_ih": r(4 * H, I) * 0.3,
                "w_hh": r(4 * H, H) * 0.3, "b_ih": r(4 * H), "b_hh": r(4 * H)})
    yield Case("gru_cell", gru_cell,
               {"x": r(B, I), "h": r(B, H), "w_ih": r(3 * H, I) * 0.3,
                "w_hh": r(3 * H, H) * 0.3, "b_ih": r(3 * H), "b_hh": r(3 * H)})
    # ---- optimizers: 4 steps from the same start, no autograd ----
    p0 = torch.randn(37, 11)
    grads = {f"g{k}": torch.randn(37, 11) for k in range(4)}
    for name, kw in [("adamw", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)),
                     ("adamw_max", dict(lr=3e-2, betas=(0.6, 0.95), eps=1e-6, weight_decay=0.1,
                                        maximize=True))]:
        yield Case(f"optim_{name}",
                   lambda p, g0, g1, g2, g3, kw=kw: optimizer_run(
                       lambda ps: torch.optim.AdamW(ps, **kw), p, [g0, g1, g2, g3],
                       ["exp_avg", "exp_avg_sq"]),
                   {"p": p0, **grads},
                   {"lr": kw["lr"], "beta1": kw["betas"][0], "beta2": kw["betas"][1],
                    "eps": kw["eps"], "weight_decay": kw["weight_decay"],
                    "maximize": kw.get("maximize", False)})
    for name, kw in [("sgd_momentum", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=1e-2)),
                     ("sgd_nesterov", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3,
                                           maximize=True))]:
        yield Case(f"optim_{name}",
                   lambda p, g0, g1, g2, g3, kw=kw: optimizer_run(
                       lambda ps: torch.optim.SGD(ps, **kw), p, [g0, g1, g2, g3],
                       ["momentum_buffer"]),
                   {"p": p0, **grads},
                   {"lr": kw["lr"], "momentum": kw["momentum"],
                    "dampening": kw.get("dampening", 0.0), "weight_decay": kw["weight_decay"],
                    "nesterov": kw.get("nesterov", False), "maximize": kw.get("maximize", False)})
