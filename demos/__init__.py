"""Games built on sprocket's public API, as a user would write them.

Start with ``sprocket play`` (or, in a clone, ``./play`` / ``python -m demos.hockey``).  The wheel installs
this package as ``sprocket.demos`` (and ``assets/`` as ``sprocket/assets``), so nothing lands under a
generic top-level name; the clone keeps both folders at the top.
"""
