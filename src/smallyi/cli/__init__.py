"""The ``small-yi`` command line: one module per command group, thin (parse, call a service, render).

Every command takes ``--config FILE`` (default ``$SMALLYI_CONFIG``, else ``./config.yaml``) and, where
it prints results, ``--output text|json``. Errors are one paragraph and a non-zero exit, never a
traceback. Imports: anything below ``app``.
"""
