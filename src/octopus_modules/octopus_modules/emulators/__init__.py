"""Serial instrument emulators on pseudo-terminals: test doubles for real hardware."""
