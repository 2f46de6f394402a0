"""What every layer shares: the command line, the config, the sanitizer, the import rules."""
