"""Declarative procedures (SOPs): YAML steps run on the engine, step by step, recorded.

Pure cores: ``yamlsrc`` (YAML with line numbers), ``expr`` (the sandboxed expression language),
``validate`` / ``stepfields`` / ``refs`` / ``checks`` (every problem with step, field and line),
``dag`` (planning) and ``context`` (what expressions see). I/O: ``store`` (SOPs in the database),
``records`` (runs, steps, events, approvals), ``runner`` and ``steps/`` (running), ``service`` (the
face the API and CLI use), ``automation`` (wiring into the runtime). Statuses of runs and steps:
``statuses``. May import: tasks, schedules, tickets, gitops (the shapes of its reports, for the SOPs a
sync stores and the syncs' notifications), notify, inventory, auth, storage, bus, config, errors, types,
durations.
"""
