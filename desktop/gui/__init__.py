"""The window: Qt widgets over :class:`desktop.core.workspace.Workspace`, run by :mod:`.app`."""
