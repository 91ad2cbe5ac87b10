"""The platform's feedback: its messages, the consumer, what the service does with them, the cluster's incident directory, work-order states and automatic verification."""
