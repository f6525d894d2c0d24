"""Progress on the terminal: a bar per run (epoch, loss, error, ETA), or nothing (--quiet)."""

from __future__ import annotations

from tqdm import tqdm

from harness.plan import RunPlan


class BarProgress:
    """A tqdm bar over the run's iterations; epoch results shown beside it."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.epochs = 0

    def start(self, plan: RunPlan, total_iterations: int, done_iterations: int) -> None:
        self.bar = tqdm(
            total=total_iterations,
            initial=done_iterations,
            desc=f"{plan.study}/{plan.name}",
            unit="it",
            leave=False,
            dynamic_ncols=True,
            mininterval=0.5,
        )

    def note(self, text: str) -> None:
        """Say what the bar waits for (compilation), until the first epoch's results."""
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def advance(self, iterations: int) -> None:
        if self.bar is not None:
            self.bar.update(iterations)

    def epoch_done(self, record: dict) -> None:
        if self.bar is None:
            return
        test = record["test_error"]
        self.bar.set_postfix_str(
            f"epoch {record['epoch']} loss {_num(record['train_loss'])} "
            f"train err {record['train_error']:.1f}% "
            f"test err {'-' if test is None else f'{test:.2f}%'}",
            refresh=False,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _num(x: float | None) -> str:
    return "nan" if x is None else f"{x:.3f}"
