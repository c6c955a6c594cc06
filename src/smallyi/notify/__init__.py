"""Notifications: WeCom, DingTalk, Feishu, Slack and generic webhooks behind one small interface.

``base`` holds the interface (a vendor builds a request from a message, purely, and judges the
answer); ``vendors/`` one module per vendor; ``templates`` the sandboxed Jinja2 messages;
``channels`` where channels live (config and database, secrets encrypted); ``service`` sends with
retries and backoff, records every delivery, and never raises into the caller. ``tasks`` watches
ad-hoc tasks for the ``notify.tasks`` rule. May import: secrets, storage, config, errors.
"""
