"""Schedules: cron slots of commands and SOPs, each fired exactly once across all schedulers.

Pure: ``cron`` (5-field cron, ``@every``, shorthands, time zones and DST) and ``slots`` (which slots
are due, under the missed-run policy). ``clock`` is the time source (a fake one in tests). I/O:
``store`` (schedules and their fires in the database) and ``scheduler`` (the loop that claims each
slot with a unique row, then launches). SOP runs are launched through an injected callable, so this
package does not import ``sop``. May import: tasks, notify, inventory, storage, config, errors.
"""
