"""Task center: task lifecycle and queue, the output pipeline (live + archive) and archive queries.

``capture`` (pure) bounds one host's output; ``pipeline`` numbers engine events, publishes them and
writes them in batches; ``service`` creates, queues, runs, cancels and recovers tasks; ``queries``
searches the archive; ``summary`` counts a task's hosts by status and picks the ones a summary lists; ``reasons`` (pure)
groups the hosts that did not succeed by distinct reason;
``replay`` turns the archive into stream frames for viewers catching up, and ``stream`` gives one viewer
its messages (replayed, then live); ``approvals`` decides approval requests
(approving a held task submits it). Imports: ``execution``,
``auth``, ``audit``, ``inventory``, ``storage``, ``bus``, ``config``, ``errors``, ``types``.
"""
