"""The durable engine: every state lives in the database; processes only borrow work."""
