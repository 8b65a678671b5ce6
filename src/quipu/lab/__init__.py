"""The lab: real OpenSSH sshd hosts on loopback addresses."""
