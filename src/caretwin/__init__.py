"""caretwin: digital twins of health and human services systems.

    import caretwin
    ws = caretwin.Workspace.create("county-ws")
    caretwin.ingest(ws, "extract/")
    print(ws.status().tables)
"""

from caretwin._version import __version__
from caretwin.errors import CaretwinError, ValidationError
from caretwin.ingest import ingest
from caretwin.workspace import Workspace

__all__ = ["CaretwinError", "ValidationError", "Workspace", "__version__", "ingest"]
