"""What happens to a record when something goes wrong: typed errors, the fate table, the backoff."""
