"""Adam through torch's fused kernel, without torch.optim's start-up cost.

`torch.optim.Adam(fused=True)` updates the parameters with the kernel `torch._fused_adam_`. Every
torch.optim optimizer also imports torch._dynamo when it is built and when it steps (about 1.3 s on
the 2-core machine, a quarter of importing torch and mlflow), and each train step paid it. This class
makes the same update through the same kernel, and its state_dict is torch.optim.Adam's, so a
checkpoint written by either loads in the other. tests/unit/test_fused_adam.py checks parameters and
state against torch.optim.Adam(fused=True), bit for bit. `make_optimizer` falls back to
torch.optim.Adam where this torch has no such kernel or the device has no fused Adam.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


def available(device: torch.device) -> bool:
    return device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_")


class FusedAdam:
    """Adam with torch's default betas and eps, no weight decay: the study's optimizer."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        self.lr = lr
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # created on a parameter's first step, as Adam does

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.detach_().zero_()

    @torch.no_grad()
    def step(self) -> None:
        indices = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not indices:
            return
        for i in indices:
            if i not in self.state:
                param = self.params[i]
                self.state[i] = {"step": torch.zeros((), dtype=torch.float32, device=param.device),
                                 "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format)}
        states = [self.state[i] for i in indices]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_([self.params[i] for i in indices], [self.params[i].grad for i in indices],
                           [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [], steps,
                           lr=self.lr, beta1=BETAS[0], beta2=BETAS[1], weight_decay=0.0, eps=EPS,
                           amsgrad=False, maximize=False, grad_scale=None, found_inf=None)

    def state_dict(self) -> dict:
        """torch.optim.Adam(fused=True)'s layout: one group, parameters by index."""
        group = {"lr": self.lr, "betas": BETAS, "eps": EPS, "weight_decay": 0, "amsgrad": False, "maximize": False,
                 "foreach": None, "capturable": False, "differentiable": False, "fused": True,
                 "decoupled_weight_decay": False, "params": list(range(len(self.params)))}
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """A state from this class or from torch.optim.Adam with the same betas, eps and no weight decay."""
        (group,) = state_dict["param_groups"]
        if len(group["params"]) != len(self.params):
            raise ValueError(f"the state holds {len(group['params'])} parameters, the model {len(self.params)}")
        if tuple(group["betas"]) != BETAS or group["eps"] != EPS or group["weight_decay"] or group["amsgrad"]:
            raise ValueError(f"the state's Adam settings differ from betas={BETAS}, eps={EPS}, no weight decay")
        self.lr = group["lr"]
        by_id = dict(zip(group["params"], range(len(self.params))))
        self.state = {}
        for saved_id, saved in state_dict["state"].items():
            param = self.params[by_id[saved_id]]
            self.state[by_id[saved_id]] = {
                "step": torch.as_tensor(saved["step"], dtype=torch.float32).to(param.device, copy=True).reshape(()),
                "exp_avg": saved["exp_avg"].to(param.device, param.dtype, copy=True),
                "exp_avg_sq": saved["exp_avg_sq"].to(param.device, param.dtype, copy=True)}
