"""Local fake venue servers: loopback HTTP servers speaking the venues' real wire formats
(tests and `make run`)."""
