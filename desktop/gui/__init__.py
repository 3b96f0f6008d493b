"""The window: Qt widgets over desktop.core (not built yet; see the open window issue)."""
