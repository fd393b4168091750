"""The console's name for the samples file: ``labconsole.samples`` defines it (arrays, writer, reader)."""
from __future__ import annotations

from labconsole.samples import Samples, read_samples as load_samples

__all__ = ["Samples", "load_samples"]
