"""The staff area's views (/ops/): one module per part, guarded by accounts.staff."""
