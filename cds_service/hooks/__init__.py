"""CDS Hooks 2.0 wire models: requests, responses, feedback and the service registry."""
