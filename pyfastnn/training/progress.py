"""Progress lines of the one training loop: Keras's ("N/N [=====] - 1s 11ms/step - loss: ...", with an
"Epoch i/n" line above) or the compact one-line form Module.fit prints; live only in a terminal."""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """One epoch's (or one evaluation's) progress. style: 'keras' or 'compact'; verbose 0 (silent), 1 (a bar,
    live in a terminal), 2 (one line at the end)."""

    def __init__(self, steps, verbose, style="keras", epoch=None, epochs=None, stream=None):
        self.stream = stream or sys.stdout
        self.steps, self.verbose, self.style = steps, verbose, style
        self.epoch, self.epochs = epoch, epochs
        self.live = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()
        self.start = time.perf_counter()
        if verbose and style == "keras" and epoch is not None:
            self.stream.write(f"Epoch {epoch}/{epochs}\n")
            self.stream.flush()

    def _bar_line(self, step, logs):
        elapsed = time.perf_counter() - self.start
        total = self.steps if self.steps else step
        width = 30
        done = int(width * step / max(total, 1))
        bar = "=" * done + (">" if done < width else "") + "." * max(width - done - 1, 0)
        per = 1000 * elapsed / max(step, 1)
        text = "".join(f" - {k}: {v:.4f}" for k, v in logs.items())
        return f"{step}/{total} [{bar}] - {elapsed:.0f}s {per:.0f}ms/step{text}"

    def update(self, step, logs):
        if not self.live:
            return
        if self.style == "keras":
            line = self._bar_line(step, logs)
        else:
            line = f"Epoch {self.epoch}/{self.epochs} {self._bar_line(step, logs)}"
        self.stream.write("\r" + line)
        self.stream.flush()

    def done(self, steps, logs):
        if not self.verbose:
            return
        elapsed = time.perf_counter() - self.start
        text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        if self.style == "compact":
            head = f"Epoch {self.epoch}/{self.epochs} - " if self.epoch is not None else ""
            line = f"{head}{steps}/{steps} - {elapsed:.2f}s {1000 * elapsed / max(steps, 1):.0f}ms/step - {text}"
        elif self.verbose == 2:
            line = f"{steps}/{steps} - {elapsed:.0f}s - {1000 * elapsed / max(steps, 1):.0f}ms/step" + \
                "".join(f" - {k}: {v:.4f}" for k, v in logs.items())
        else:
            self.steps = steps
            line = self._bar_line(steps, logs)
        self.stream.write(("\r" if self.live else "") + line + "\n")
        self.stream.flush()
