"""The training explorer: train a network and watch loss, error and per-layer gradients."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from explodegrad.core.checks import check_choice
from explodegrad.core.config import NetConfig
from explodegrad.core.device import DeviceLike, as_device_choice
from explodegrad.plots.loop import plot_gradient_norms, plot_training_history
from explodegrad.plots.theme import new_panels
from explodegrad.training.loop import TrainHistory, TrainSettings, train
from explodegrad.training.optimizers import OPTIMIZERS
from explodegrad.widgets.base import Explorer, Progress
from explodegrad.widgets.controls import architecture_controls, choice, clamp_notice, digits, log_slider

#: Ways to clip the gradient, as the explorer's dropdown names them.
CLIPPING = ("none", "norm", "value")


def training_settings(
    optimizer: str, lr: float, clipping: str, clip: float, steps: int, seed: int = 0
) -> TrainSettings:
    """The explorer's training settings: batches of 128, a record every 10 updates."""
    clipping = check_choice("clipping", clipping, CLIPPING)
    return TrainSettings(
        optimizer=optimizer,
        lr=lr,
        steps=steps,
        batch_size=128,
        record_every=10,
        eval_size=512,
        seed=seed,
        clip_norm=clip if clipping == "norm" else None,
        clip_value=clip if clipping == "value" else None,
    )


def describe_training(history: TrainHistory) -> str:
    """The line under the figure: how the run ended."""
    if history.diverged:
        return f"{history.label}: {history.message}"
    return (
        f"{history.label}: after {history.steps_done} updates, train error "
        f"{history.final_train_error:.3f}, test error {history.final_test_error:.3f} "
        f"(train loss {history.final_train_loss:.3g})"
    )


def draw_training(history: TrainHistory) -> Figure:
    """Loss and error curves, and the gradient per layer at three moments of the run."""
    fig, axes = new_panels(3, suptitle=True)
    plot_training_history(history, axes=axes[:2], title=None)
    plot_gradient_norms(history, ax=axes[2])
    fig.suptitle(
        f"{history.label} · {history.settings.optimizer}, lr {history.settings.lr:.3g}, "
        f"clipping: {history.settings.clip_kind}",
        fontsize="medium",
    )
    return fig


def training_explorer(
    depth: int = 20,
    width: int = 64,
    activation: str = "relu",
    norm: str = "none",
    init: str = "he",
    residual: bool = False,
    optimizer: str = "sgd",
    lr: float = 0.01,
    clipping: str = "none",
    clip: float = 1.0,
    *,
    steps: int = 200,
    max_depth: int = 60,
    max_width: int = 128,
    device: DeviceLike = None,
    seed: int = 0,
) -> Explorer:
    """Train a network on the bundled digits and plot what happened; a progress bar runs meanwhile.

    Every change trains a fresh network (seeded) for ``steps`` updates with batches of 128
    digits (SGD has momentum 0.9). A run whose loss or gradient stops being finite ends there,
    and the figure marks where.

    Args:
        depth, width, activation, norm, init, residual: the network (residual networks need
            depth = 2 + a multiple of 2; another depth shows why).
        optimizer: ``"sgd"``, ``"adam"`` or ``"rmsprop"``.
        lr: learning rate.
        clipping: ``"none"``, ``"norm"`` (the global gradient norm is capped at ``clip``) or
            ``"value"`` (every gradient entry is capped at ``clip``).
        clip: the clipping threshold.
        steps: updates per run.
        max_depth, max_width: slider ranges.
        device: where to train (a name such as 'cpu', a torch.device, or the
            setup's ctx.device; default: :func:`~explodegrad.core.device.pick_device`'s choice).
        seed: seed of the weights and of the minibatch order.
    """
    device = as_device_choice(device)
    progress = Progress("training")
    controls = {
        **architecture_controls(
            depth, width, activation, norm, init, residual, None, max_depth=max_depth, max_width=max_width
        ),
        "optimizer": choice("optimizer", OPTIMIZERS, optimizer, OPTIMIZERS),
        "lr": log_slider("learning rate", lr, -4.0, 0.5),
        "clipping": choice("clipping", CLIPPING, clipping, CLIPPING),
        "clip": log_slider("clip at", clip, -2.0, 1.0),
    }

    def experiment(
        depth: int,
        width: int,
        activation: str,
        norm: str,
        init: str,
        residual: bool,
        optimizer: str,
        lr: float,
        clipping: str,
        clip: float,
    ) -> TrainHistory:
        data = digits(device.device, seed)
        try:
            config = NetConfig(
                depth=depth,
                width=width,
                activation=activation,
                norm=norm,
                init=init,
                residual=residual,
                in_features=data.in_features,
                out_features=data.num_classes,
                seed=seed,
            )
            settings = training_settings(optimizer, lr, clipping, clip, steps, seed)
            total = settings.total_steps(len(data.x_train))
            progress.start(total, f"training {config.label()} ...")

            def report(step: int, history: TrainHistory) -> Any:
                progress.update(step, f"step {step}/{total}, train loss {history.train_loss[-1]:.3g}")

            history = train(config, data, settings, progress=False, callback=report)
        except Exception:
            progress.finish("could not train this setting", failed=True)
            raise
        progress.finish(describe_training(history), failed=history.diverged)
        return history

    return Explorer(
        controls,
        experiment,
        draw_training,
        "Training: loss, error and per-layer gradients as the run goes",
        device=device,
        describe=describe_training,
        progress=progress,
        name="training",
        extras=[clamp_notice(controls)],
    )
