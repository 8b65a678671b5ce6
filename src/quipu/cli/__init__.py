"""Command-line interfaces: qpc (operators) and quipu (server, scanner, lab, db)."""
