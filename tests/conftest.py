"""
pytest configuration for the test suite (trial ignores this file).
"""

# The pytest-plugin tests run small pytest sessions of their own.
pytest_plugins = ["pytester"]
