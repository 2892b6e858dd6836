"""TEST DOUBLE of launch_ros.actions (see ../README.md): Node records its arguments.

Keyword names are those of launch_ros.actions.Node and of ExecuteProcess, which it forwards
its remaining keyword arguments to.
"""

_EXECUTE_PROCESS_KWARGS = {
    "output", "emulate_tty", "respawn", "respawn_delay", "sigterm_timeout", "sigkill_timeout",
    "additional_env", "cwd", "prefix", "shell", "log_cmd", "on_exit", "cached_output",
}  # fmt: skip


class Node:
    def __init__(
        self,
        *,
        executable,
        package=None,
        name=None,
        namespace=None,
        exec_name=None,
        parameters=None,
        remappings=None,
        ros_arguments=None,
        arguments=None,
        **kwargs,
    ):
        unknown = set(kwargs) - _EXECUTE_PROCESS_KWARGS
        if unknown:
            raise TypeError(f"Node got unexpected keyword arguments {sorted(unknown)}")
        self.package = package
        self.executable = executable
        self.name = name
        self.namespace = namespace
        self.parameters = parameters
        self.kwargs = kwargs
