"""Qt table models over the read-side services."""
