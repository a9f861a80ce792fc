"""Where the PyTorch-backed recommenders run and how their loops stay safe: device and precision
arguments, autocast, saved state that holds CPU tensors, and the divergence check of their
training loops (shared by :mod:`reclib.models.item_lm` and :mod:`reclib.models.text_tower`).
``torch`` is imported when a function needs it."""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from typing import TYPE_CHECKING, Any

from reclib.checks import ParameterTypeError, check_divergence, diverged, monitored_value

if TYPE_CHECKING:
    import torch

__all__ = ["BestEpoch", "DivergenceCheck", "check_device", "check_precision", "cpu_state", "print_epoch",
           "equal_parts", "global_mean", "process_group", "resolve_device", "restore_state", "synchronize",
           "training_autocast"]


def check_device(device: object) -> None:
    """Constructor check of a ``device`` parameter: "auto", "cpu", "cuda" or "cuda:N"."""
    if not isinstance(device, str):
        raise ParameterTypeError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (a string), got {device!r}")
    if device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:[0-9]+", device):
        raise ValueError(f"device={device!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index)")


def check_precision(precision: object) -> None:
    """Constructor check of a ``precision`` parameter: ``None`` (float32) or "bfloat16" (CUDA only)."""
    if precision is not None and not (isinstance(precision, str) and precision == "bfloat16"):
        raise ValueError(f"precision={precision!r}: expected None (float32) or 'bfloat16' (CUDA only)")


def _cuda_problem(device: str) -> str | None:
    """Why CUDA ``device`` ("cuda" or "cuda:N") cannot be used here, or ``None`` if it can."""
    import torch

    if not torch.cuda.is_available():
        return (f"no CUDA device is visible (torch.cuda.is_available() is False; torch "
                f"{torch.__version__})")
    count, index = torch.cuda.device_count(), int(device.partition(":")[2] or 0)
    if index >= count:
        return f"only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1})"
    return None


def resolve_device(device: str, precision: str | None = None) -> str:
    """The device a fit runs on: "auto" -> "cuda" if ``torch.cuda.is_available()`` else "cpu";
    "cpu", "cuda" and "cuda:N" as given. Raises ``ValueError`` naming ``device`` when CUDA is asked
    for and torch sees no GPU (or not GPU N), and naming ``precision`` when "bfloat16" would run on
    the CPU."""
    import torch

    check_device(device)
    check_precision(precision)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device != "cpu":
        problem = _cuda_problem(device)
        if problem:
            raise ValueError(f"device={device!r}, but {problem}; use device='cpu' or 'auto'")
    if precision == "bfloat16" and device == "cpu":
        raise ValueError("precision='bfloat16' runs only on a CUDA device, but device resolved to 'cpu'; "
                         "use precision=None on the CPU")
    return device


def training_autocast(device: str, precision: str | None):
    """The context of a training forward pass: ``torch.autocast("cuda", torch.bfloat16)`` with
    ``precision="bfloat16"`` on CUDA, else a no-op (float32, the numbers untouched)."""
    import torch

    if precision == "bfloat16" and device != "cpu":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: str) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously) before reading a clock."""
    if device != "cpu":
        import torch

        torch.cuda.synchronize(device)


#: the key of ``cpu_state``'s record of the devices the moved attributes came from
_DEVICES_KEY = "_torch_devices"


def process_group() -> tuple[int, int]:
    """``(rank, world_size)`` of the ``torch.distributed`` run this process belongs to
    (:func:`reclib.training.processes.initialize_torch_processes`), or ``(0, 1)`` outside one."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


def equal_parts(picked: torch.Tensor, world: int) -> torch.Tensor:
    """A global batch of row indices cut to a multiple of ``world`` and split into ``world``
    contiguous equal parts, ``(world, len(picked) // world)``; rank ``r`` trains on row ``r``. At
    most ``world - 1`` rows of an epoch's last batch are left out (every rank cuts alike); a batch
    smaller than ``world`` gives empty parts, to be skipped by every rank."""
    return picked[:len(picked) - len(picked) % world].view(world, -1)


def global_mean(local_sum: torch.Tensor, n_local: int) -> tuple[torch.Tensor, int]:
    """Sum ``local_sum`` (a scalar, one rank's summed loss) and ``n_local`` over the ranks
    (one ``all_reduce``, on the tensor's device); return the mean over every rank's rows and their
    count, the same on every rank, so every rank takes the same decision on it (a rank that
    stopped alone would leave the others waiting in a collective)."""
    import torch
    import torch.distributed as dist

    summed = torch.stack([local_sum.detach().double().reshape(()),
                          torch.tensor(float(n_local), dtype=torch.float64, device=local_sum.device)])
    dist.all_reduce(summed)
    return summed[0] / summed[1], int(summed[1].item())


def _device_of(value: torch.Tensor | torch.nn.Module) -> str:
    """The device of a tensor, or of a module's first parameter or buffer ("cpu" if none)."""
    import torch

    if isinstance(value, torch.Tensor):
        return str(value.device)
    first = next(itertools.chain(value.parameters(), value.buffers()), None)
    return "cpu" if first is None else str(first.device)


def cpu_state(state: dict[str, Any]) -> dict[str, Any]:
    """A fitted torch model's ``__dict__`` as saved or copied (``__getstate__``).

    Unchanged when ``device_`` is "cpu" (or absent: unfitted). Otherwise its torch tensors and
    modules that live on a GPU are copied to the CPU (one ``torch.save`` /
    ``torch.load(map_location="cpu")`` round trip, so modules and tensors shared between attributes
    stay shared) and their devices are recorded for :func:`restore_state`. So a saved file holds CPU
    tensors only: a model trained on a GPU loads on a machine without one. The live model is not
    changed.
    """
    if state.get("device_", "cpu") == "cpu":
        return state
    import io

    import torch

    parts = {k: v for k, v in state.items() if isinstance(v, (torch.Tensor, torch.nn.Module))}
    devices = {k: d for k, d in ((k, _device_of(v)) for k, v in parts.items()) if d != "cpu"}
    if not devices:
        return state
    buffer = io.BytesIO()
    torch.save({k: parts[k] for k in devices}, buffer)
    buffer.seek(0)
    return {**state, **torch.load(buffer, map_location="cpu", weights_only=False), _DEVICES_KEY: devices}


def restore_state(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`cpu_state` (``__setstate__``): the recorded attributes go back to
    their GPU when it is visible here; otherwise the model stays on the CPU and ``device_``
    becomes "cpu" (it scores there; a refit resolves ``device`` again)."""
    devices = state.pop(_DEVICES_KEY, None)
    if not devices:
        return state
    if any(_cuda_problem(d) for d in set(devices.values())):
        state["device_"] = "cpu"
        return state
    for name, device in devices.items():
        state[name] = state[name].to(device)           # modules move in place: sharing is kept
    return state


class DivergenceCheck:
    """:func:`reclib.checks.check_divergence` for a PyTorch training loop: it only reads the losses
    and the weights, never changes them.

    model: the name in the error; n_epochs: of the fit; culprits: the hyper-parameters to name
    (``{"learning_rate": 0.01}``); parameters: the trained ``(name, tensor)`` pairs. Call
    :meth:`batch` with every batch's loss before its step, :meth:`epoch` after every epoch.
    """

    def __init__(self, model: str, n_epochs: int, culprits: dict[str, object], parameters) -> None:
        self.model, self.n_epochs, self.culprits = model, n_epochs, culprits
        self.advice = "lower " + " or ".join(culprits)
        self.parameters, self.start_loss = list(parameters), None

    def batch(self, loss: torch.Tensor, epoch: int) -> float:
        """The batch's loss as a float; raise if it is NaN or inf (before the step it would take).
        The first one is the starting loss the growth is measured from."""
        value = loss.item()
        if not math.isfinite(value):
            raise diverged(self.model, "epoch", epoch, self.n_epochs, f"the training loss became {value}",
                           self.culprits, self.advice)
        self.start_loss = value if self.start_loss is None else self.start_loss
        return value

    def epoch(self, epoch: int, loss: float) -> None:
        """Raise if epoch ``epoch``'s mean ``loss`` grew past the limit, or a weight is NaN or inf
        (scanned on its device with one read-back; the tensors that hold them are named)."""
        import torch

        finite = (torch.stack([torch.isfinite(p.detach()).all() for _, p in self.parameters]).all().item()
                  if self.parameters else True)
        bad = {} if finite else {name: p.detach().float().cpu().numpy() for name, p in self.parameters
                                 if not torch.isfinite(p.detach()).all()}
        check_divergence(self.model, "epoch", epoch, self.n_epochs, loss, self.start_loss, self.culprits,
                         self.advice, **bad)


def print_epoch(row: dict[str, object]) -> None:
    """One line of a PyTorch loop's epoch row (``verbose``): ``loss 0.1234, seconds 1.2345, ...``."""
    print(", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)


class BestEpoch:
    """Early stopping of a PyTorch loop by the rule of reclib's Keras callback
    :class:`~reclib.training.RankingEarlyStopping`: after every epoch the validation ``metrics``
    (``validate(model)``) are read; a higher ``monitor`` value is better; the fit stops once more
    than ``patience`` epochs in a row bring no better one (Keras's own ``EarlyStopping`` stops at
    ``patience``), and :meth:`restore` puts back the best epoch's
    weights of ``modules`` (name -> ``torch.nn.Module``, copied on their device when they improve).
    """

    def __init__(self, monitor: str, patience: int, modules: dict[str, torch.nn.Module]) -> None:
        self.monitor, self.patience, self.modules = monitor, patience, modules
        self.best_value, self.best_epoch, self.wait = -math.inf, 0, 0
        self.best_state: dict[str, dict[str, torch.Tensor]] | None = None

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record epoch ``epoch``'s (1-based) validation ``metrics``; True when the fit should stop."""
        value = monitored_value(metrics, self.monitor, epoch)
        if value > self.best_value:
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
            self.best_state = {name: {k: v.detach().clone() for k, v in module.state_dict().items()}
                               for name, module in self.modules.items()}
            return False
        self.wait += 1
        return self.wait > self.patience

    def restore(self) -> None:
        """Load the best epoch's weights back into ``modules`` (nothing to do before any update)."""
        if self.best_state is not None:
            for name, module in self.modules.items():
                module.load_state_dict(self.best_state[name])
