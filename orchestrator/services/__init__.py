"""What the admin commands do, apart from how they print it."""
