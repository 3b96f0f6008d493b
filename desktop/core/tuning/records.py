"""What a tuning run takes and gives: its options, the estimate, progress records, the report.

Plain records, apart from the tuner, so that the faces can hold options and show progress
without importing the tuner's numpy model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from desktop.core.answering.prompts import SYSTEM_BARE

if TYPE_CHECKING:
    from desktop.core.tuning.export import SelfCheck


@dataclass(frozen=True)
class TuneOptions:
    """How to tune. ``system`` None: the system prompt ``ask`` uses without retrieval (so the
    adapter learns the form where it will be used); ``held_out`` None: an eighth of the
    examples, 2 to 16."""

    epochs: int = 3
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    batch_tokens: int = 1024  # the cap on padded tokens per batch (memory grows with it)
    batch_examples: int = 4
    held_out: int | None = None
    system: str | None = None
    seed: int = 0
    max_new_tokens: int = 128  # per answer in the comparison
    check_tokens: int = 256  # tokens the self-check compares logits on
    threads: int | None = None
    force: bool = False  # replace an adapter of the same name

    @property
    def system_prompt(self) -> str:
        return SYSTEM_BARE if self.system is None else self.system


@dataclass(frozen=True)
class Estimate:
    """What the run will take, printed before training starts."""

    examples: int
    trained: int
    held_out: int
    epochs: int
    steps: int
    train_tokens: int  # tokens processed in training, padding included, all epochs
    tokens_per_s: float  # measured on a forward + backward pass before training
    train_s: float
    after_s: float  # export, self-check and comparison
    peak_bytes: int
    available_bytes: int | None
    batch_tokens: int  # the cap in use
    requested_batch_tokens: int  # the cap asked for (larger when memory lowered it)
    threads: int = 1  # numpy's BLAS threads (and llama.cpp's), the faster of those measured
    threads_measured: dict[int, float] = field(default_factory=dict)  # threads → tokens/s

    @property
    def total_s(self) -> float:
        return self.train_s + self.after_s


@dataclass(frozen=True)
class HeldOutAnswer:
    """A held-out prompt answered by the base and the tuned model, with form scores."""

    prompt: str
    ideal: str
    base: str
    tuned: str
    form_base: float
    form_tuned: float


@dataclass(frozen=True)
class TuneProgress:
    """A snapshot of a tune run. ``phase``: loading, estimate, training, exporting, checking,
    comparing, done."""

    phase: str
    message: str = ""
    elapsed_s: float = 0.0
    step: int = 0
    steps: int = 0
    epoch: int = 0
    loss: float | None = None
    tokens_per_s: float = 0.0
    eta_s: float | None = None
    estimate: Estimate | None = None
    answer: HeldOutAnswer | None = None


@dataclass
class TuneReport:
    """What a tune run made (nothing when cancelled)."""

    name: str
    model: str
    adapter: str | None = None
    metadata: str | None = None
    examples: int = 0
    trained: int = 0
    epochs: int = 0
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    train_tokens: int = 0
    tokens_per_s: float = 0.0
    load_s: float = 0.0
    train_s: float = 0.0
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    train_peak_rss_bytes: int = 0  # the peak when training ended
    estimate: Estimate | None = None
    check: SelfCheck | None = None
    held_out: list[HeldOutAnswer] = field(default_factory=list)
    form_base: float | None = None
    form_tuned: float | None = None
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.estimate is not None:
            data["estimate"]["total_s"] = self.estimate.total_s
        return data
