"""Tickets: the original's "low-code ticket engine" reached through a templated webhook.

A ticket template (``tickets.templates`` in the config) names the JSON body to send; SOP steps fill
in the requester, SLA level and affected hosts; the ticket system's answer gives the id and URL,
recorded in ``tickets``. May import: notify (its sandboxed templates), storage, config, errors.
"""
