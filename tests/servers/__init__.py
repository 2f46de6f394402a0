"""Real servers started for tests and benchmarks: a throw-away Dovecot and a capturing SMTP server."""
