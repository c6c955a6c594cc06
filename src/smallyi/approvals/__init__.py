"""Approvals: work that waits for a second person's decision.

Two kinds share this home: a command the policy holds (``requests``: a task, a schedule's command, an SOP
step's command or file write) and an SOP's ``approval`` step (``steps``). ``decisions`` approves or rejects a
held command (and runs it); ``withdraw`` cancels both kinds when the person behind them can no longer act.
The package sits above ``tasks`` (approving submits a task); ``auth``'s gate writes requests and its user
sync withdraws them through small protocols the runtime fills in.
"""
