"""One module per receiver platform; ``registry`` builds them from the settings."""
