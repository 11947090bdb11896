"""Who may do what: the server's certificate, the enrolled satellites, and the exchange
that proves each end of a connection to the other (docs/security.md)."""
