"""The console's dialogs and secondary screens."""
