"""The command policy: which commands a role may run on which groups, judged before anything is sent.

``shell`` parses a command line into every simple command it runs (pipelines, lists, subshells,
substitutions, here-documents); ``unwrap`` looks through ``sudo``, ``env``, ``sh -c``, ``xargs`` and
friends, and marks what runs unseen code as opaque; ``sed`` reads sed scripts for ``e`` (runs) and ``w``
(writes); ``options`` folds long options into their letters; ``rules`` applies allow, deny, approve and
trust patterns; ``command_text`` refuses text that cannot reach a shell intact (a NUL byte,
bytes that are not UTF-8). All pure. Imports: ``config``, ``errors``.

For tasks and SOP steps the policy is a control; for terminal input (``terminal/line_guard.py``) it is a
guard against mistakes only (a shell can always be talked into running something a line filter did not see).
"""
