# Every package's tests share one plugin: own ROS domain, LOCALHOST discovery, safe teardown.
pytest_plugins = ["octopus_testing.pytest_plugin"]
