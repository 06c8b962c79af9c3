"""The agent's timing and limits, named (after Prey's websockets/constants.js)."""

from __future__ import annotations

BASE_RECONNECT_DELAY_SECONDS = 5.0
MAX_RECONNECT_DELAY_SECONDS = 300.0
# Spread reconnections of many devices after an outage: +-20% around the delay.
JITTER_FACTOR = 0.4
HTTP_TIMEOUT_SECONDS = 30.0
# Fixes kept while the server cannot be reached; the oldest are dropped beyond this.
MAX_BUFFERED_FIXES = 1000
FIXES_PER_CHECK_IN = 100
STATE_FILE = "state.json"
CREDENTIAL_FILE = "credential"
BUFFER_FILE = "pending-fixes.json"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
RESULTS_FILE = "pending-results.json"
EXECUTED_FILE = "executed-commands.json"
# Ids of executed commands remembered to refuse replays (commands expire long before this).
MAX_EXECUTED_REMEMBERED = 10_000
# One long-poll request waits at most this long before asking again.
LONG_POLL_SECONDS = 30.0
