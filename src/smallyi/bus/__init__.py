"""Event bus: one small publish/subscribe interface; in-process now, Redis Streams for scale-out.

Imports: ``errors`` only.
"""
