"""TEST DOUBLE of launch_ros (see ../README.md)."""
