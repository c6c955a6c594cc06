"""Secrets at rest: SSH keys, passwords, webhook and bot secrets, encrypted under a master key.

``keyring`` finds the master key (config, environment, or a 0600 key file made on first start) and
rotates it; ``box`` encrypts (AES-256-GCM, bound to the secret's name); ``store`` keeps ciphertexts in
the database; ``redact`` keeps secret values and tokens out of log lines; ``refs`` puts stored secrets
in the place of the config's ``secret:NAME`` references at start. The API is write-only:
nothing returns a stored value. Imports: ``storage``, ``config``, ``errors``.
"""
