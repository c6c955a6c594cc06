"""Declarative procedures (SOPs): YAML steps run on the engine, step by step, recorded.

Pure cores: ``yamlsrc`` (YAML with line numbers), ``expr`` (the sandboxed expression language),
``validate`` / ``stepfields`` / ``refs`` / ``checks`` (every problem with step, field and line),
``dag`` (planning) and ``context`` (what expressions see). I/O: ``store`` (SOPs in the database),
``records`` (runs, steps, events, approvals), ``runner`` and ``steps/`` (running), ``service`` (the
face the API and CLI use), ``automation`` (wiring into the runtime). May import: tasks, schedules,
tickets, notify, inventory, auth, storage, bus, config, errors, types, durations.
"""
