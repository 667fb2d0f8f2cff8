"""Contracts shared by the producer and the consumer: messages, topics, headers, settings."""
