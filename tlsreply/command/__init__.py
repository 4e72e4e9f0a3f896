# -*- test-case-name: tests.test_tap, tests.test_cli, tests.test_options -*-
"""
The command lines: C{twistd tlsreply} (and C{twist tlsreply}), and the
C{tlsreply} command with its subcommands. They read options into a typed
L{tlsreply.config.ServerConfig} and hand it to L{tlsreply.daemon}; nothing
below imports them.

Its parts: L{tlsreply.command.tap} (the Twisted plugin's C{Options} and
C{makeService}), L{tlsreply.command.cli} (C{tlsreply serve}, C{check},
C{scenarios}, C{show-config}), L{tlsreply.command._values} (the checks of
option values, each a one-line refusal naming the option),
L{tlsreply.command._scenario} (the checks of C{--scenario} and of the
options that go with it),
L{tlsreply.command._twistd} (what tlsreply needs to know of the twistd that
runs it) and L{tlsreply.command._reloadaccess} (a warning at start for each
file a reload could not open after C{--uid}).
"""
