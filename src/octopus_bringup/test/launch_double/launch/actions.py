"""TEST DOUBLE of launch.actions (see ../README.md)."""


class DeclareLaunchArgument:
    def __init__(self, name, *, default_value=None, description=None, choices=None, **kwargs):
        self.name = name
        self.default_value = default_value
        self.description = description


class OpaqueFunction:
    def __init__(self, *, function, args=None, kwargs=None, **left_over_kwargs):
        self.function = function
        self.args = args or []
        self.kwargs = kwargs or {}
