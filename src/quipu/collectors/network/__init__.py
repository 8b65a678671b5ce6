"""Network sources: TCP discovery, SSH login and SSH inspection."""
