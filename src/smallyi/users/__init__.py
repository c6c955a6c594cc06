"""What small-yi keeps for each user besides the account: ``preferences`` (the console's language and
settings), server-side so they follow the user to another browser.

Accounts, roles and tokens are ``auth``'s. Imports: ``storage``, ``errors``.
"""
