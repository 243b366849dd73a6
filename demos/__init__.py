"""Games built on sprocket's public API, as a user would write them.

Start with ``python -m demos.hockey``.
"""
