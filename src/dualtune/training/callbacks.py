"""Lightning callbacks shared by the recipes."""

from __future__ import annotations

import logging
import time

import lightning as L

log = logging.getLogger("dualtune")


class ProgressLog(L.Callback):
    """Log step / total, loss and ETA every ``every`` steps — visible in log files and CI, unlike a TTY bar."""

    def __init__(self, every: int = 25, name: str = "train"):
        self.every, self.name = max(1, int(every)), name
        self._start = None

    def on_train_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        total = trainer.estimated_stepping_batches
        if step == 0 or (step % self.every and step != total):
            return
        elapsed = time.perf_counter() - (self._start or time.perf_counter())
        eta = elapsed / step * max(0, total - step)
        loss = trainer.callback_metrics.get("train/loss_step", trainer.callback_metrics.get("loss"))
        loss_txt = f"{float(loss):.4f}" if loss is not None else "n/a"
        log.info("%s step %d/%d  loss %s  elapsed %.0fs  eta %.0fs", self.name, step, total, loss_txt, elapsed, eta)
