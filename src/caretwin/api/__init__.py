"""The governed REST API over a workspace (FastAPI; `caretwin serve`)."""
