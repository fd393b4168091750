"""The Textual lab console (``labconsole`` with no arguments). Build it with ``make_app``."""
from labconsole.app.console import LabConsole, make_app

__all__ = ["LabConsole", "make_app"]
