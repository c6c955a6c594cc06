"""Authentication: bcrypt passwords, login sessions and API tokens, login throttling.

Imports: ``storage``, ``config``, ``errors``. RBAC and the audit trail join here (security issue).
"""
