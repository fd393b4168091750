"""The console's widgets: each renders state handed down by the app, nothing more."""
