"""Shared by the trainer tests: overfit one fixed batch and return the loss curve."""
import torch


def fit_fixed_batch(task, batch: dict, steps: int, lr: float = 3e-3) -> list[float]:
    opt = torch.optim.AdamW([p for p in task.module.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss, _ = task.loss(task.module, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
