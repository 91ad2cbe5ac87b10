"""The platform's feedback: its messages, the consumer, work-order states and automatic verification."""
