"""The web console: static pages that are clients of the HTTP API (no private back doors).

Imports: ``config`` only; it talks to the rest through the API, in the browser.
"""
