"""The real program in a real terminal: pty + pyte, one scenario per binding."""
