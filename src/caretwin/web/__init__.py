"""The web dashboard: pages for people who do not use a terminal, on top of the governed API."""
