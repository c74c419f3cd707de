"""Pure: impacts + previous state -> lifecycle decisions (new, escalate, update, cancel, all-clear, expire)."""
