"""The workspace: the twin's state in a folder with an embedded DuckDB database."""

from caretwin.workspace.workspace import Workspace, WorkspaceStatus

__all__ = ["Workspace", "WorkspaceStatus"]
