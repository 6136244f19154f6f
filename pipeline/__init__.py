"""LiveDash Pipeline: chat-analytics ingestion and AI analysis on Dramatiq and RabbitMQ."""

__version__ = "0.1.0"
