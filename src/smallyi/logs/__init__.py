"""Following log files on hosts live (``small-yi logs``, the console's log view): never archived.

``follow`` runs one follow of a target through the engine (``execution/follow.py`` tails and rejoins
each host) and turns its events into wire dicts; ``stream`` is the server's: the caller checked and
audited, events handed to one client in batches, what it cannot take dropped.

Imports: ``execution``, ``auth``, ``audit``, ``inventory``, ``timestamps``, ``errors``.
"""
