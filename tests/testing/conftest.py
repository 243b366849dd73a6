"""The plugin's own tests run small user test files in a fresh pytest process (``pytester``)."""

pytest_plugins = ["pytester"]
