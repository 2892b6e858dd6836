"""TEST DOUBLE of launch.substitutions (see ../README.md): LaunchConfiguration reads the
recording context's launch_configurations, as the real one does."""


class LaunchConfiguration:
    def __init__(self, variable_name, *, default=None):
        self.variable_name = variable_name
        self.default = default

    def perform(self, context):
        return context.launch_configurations.get(self.variable_name, self.default or "")
