"""TEST DOUBLE of launch (see ../README.md): LaunchDescription records its entities."""


class LaunchDescription:
    def __init__(self, initial_entities=None, *, deprecated_reason=None):
        self.entities = list(initial_entities or [])

    def add_action(self, action):
        self.entities.append(action)
