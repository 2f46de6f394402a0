"""The app driven with Pilot, checked on what the screen shows."""
