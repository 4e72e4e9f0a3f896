# -*- test-case-name: tests.test_metrics -*-
"""
Why a handshake failed, in a few fixed words, for a metric's label.

The label is the kind of the connection's ending
(L{tlsreply.connection.ending.EndingKind}), decided where the cause was
known: the metrics never read the log line's text, so rewording it moves
no label, and the label's cardinality is fixed whatever clients send.
"""

from __future__ import annotations

from typing import Final

from tlsreply.connection.ending import ENDING_KINDS, EndingKind

#: Every value of C{tlsreply_handshake_failures_total}'s C{reason} label.
FAILURE_REASONS: Final[tuple[EndingKind, ...]] = ENDING_KINDS

__all__ = ["FAILURE_REASONS"]
