"""The console's widgets: most render state handed down to them, nothing more; two hold behaviour,
the ``Sidebar`` (listing presets and runs) and the ``RunMonitor`` (watching the attached run)."""
