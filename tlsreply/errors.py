# -*- test-case-name: tests.test_credentials -*-
"""
The one exception type that tlsreply raises for a bad configuration.
"""


class ConfigurationError(Exception):
    """
    A setting, file or listening address that tlsreply cannot use.

    Its message is a single line that names the problem and the thing it is
    about (a path, an option, an endpoint description), written for the
    operator who typed it: the command line prints it as it is, with no
    traceback, and exits non-zero.
    """
