"""The three doors (magic, CLI, REST lives in ``server/``) and the words they share.

Feature packages return values and raise :mod:`aiinfra_magics.errors`; only the
modules here know whether a result is printed, displayed as HTML or bound to a
variable in the user's namespace.
"""
