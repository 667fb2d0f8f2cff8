"""When an API call may start: the token-bucket rate limiter and the circuit breaker."""
