"""Optimizers and learning-rate schedules from ``config.optimizer`` (optax).

Fields: name (sgd | momentum | nesterov | rmsprop | adam | adamw | adadelta), lr, momentum (momentum,
nesterov, rmsprop), b1/b2/eps (adam), rho (adadelta, rmsprop decay), weight_decay (adamw),
schedule (constant | cosine | warmup_cosine | exponential | step), warmup_steps, decay_rate,
decay_steps, grad_clip (global norm; 0 = off).
"""
from __future__ import annotations

import optax

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adadelta")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential", "step")


def make_schedule(cfg, total_steps: int) -> optax.Schedule:
    name, lr = cfg.get("schedule", "constant"), float(cfg.lr)
    warmup = int(cfg.get("warmup_steps", 0))
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, max(total_steps, 1))
    if name == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
    if name == "exponential":
        return optax.exponential_decay(lr, int(cfg.get("decay_steps", 1000)), float(cfg.get("decay_rate", 0.5)))
    if name == "step":
        every = int(cfg.get("decay_steps", 1000))
        return optax.piecewise_constant_schedule(
            lr, {s: float(cfg.get("decay_rate", 0.1)) for s in range(every, max(total_steps, every) + 1, every)})
    raise ValueError(f"config.optimizer.schedule: unknown schedule {name!r}; known: {SCHEDULES}")


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    """The optax transformation for ``config.optimizer`` (learning rate may be a schedule)."""
    lr = make_schedule(cfg, total_steps)
    name = cfg.name
    if name == "sgd":
        opt = optax.sgd(lr)
    elif name in ("momentum", "nesterov"):
        opt = optax.sgd(lr, momentum=float(cfg.get("momentum", 0.9)), nesterov=name == "nesterov")
    elif name == "rmsprop":   # Keras defaults: rho 0.9, eps 1e-7
        opt = optax.rmsprop(lr, decay=float(cfg.get("rho", 0.9)), eps=float(cfg.get("eps", 1e-7)),
                            momentum=float(cfg.get("momentum", 0.0)) or None)
    elif name == "adam":
        opt = optax.adam(lr, b1=float(cfg.get("b1", 0.9)), b2=float(cfg.get("b2", 0.999)),
                         eps=float(cfg.get("eps", 1e-7)))
    elif name == "adamw":
        opt = optax.adamw(lr, b1=float(cfg.get("b1", 0.9)), b2=float(cfg.get("b2", 0.999)),
                          eps=float(cfg.get("eps", 1e-7)), weight_decay=float(cfg.get("weight_decay", 1e-4)))
    elif name == "adadelta":  # Keras: rho 0.95, eps 1e-7; the report used lr 1.0
        opt = optax.adadelta(lr, rho=float(cfg.get("rho", 0.95)), eps=float(cfg.get("eps", 1e-7)))
    else:
        raise ValueError(f"config.optimizer.name: unknown optimizer {name!r}; known: {OPTIMIZERS}")
    clip = float(cfg.get("grad_clip", 0.0))
    return optax.chain(optax.clip_by_global_norm(clip), opt) if clip > 0 else opt
