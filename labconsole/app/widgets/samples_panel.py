"""What the bumps grid and the manifold share: one eval's samples, or a one-line note in their place."""
from __future__ import annotations

from textual.widget import Widget

from labconsole.app.samples import Samples


class SamplesPanel(Widget):
    """A widget drawn from ``samples`` (set by the run monitor); ``note`` says why there are none.

    Subclasses implement ``_layout()``, called when the samples change; both setters repaint.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._samples: Samples | None = None
        self._note = ""

    @property
    def samples(self) -> Samples | None:
        return self._samples

    @samples.setter
    def samples(self, samples: Samples | None) -> None:
        if samples is not self._samples:
            self._samples = samples
            self._layout()
            self.refresh()

    @property
    def note(self) -> str:
        return self._note

    @note.setter
    def note(self, text: str) -> None:
        if text != self._note:
            self._note = text
            self.refresh()

    def _layout(self) -> None:
        raise NotImplementedError
