from setuptools import find_packages, setup

package_name = "octopus_scheduler"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # YAML/Markdown data that the code loads with importlib.resources lives inside the package.
    package_data={"": ["*.yaml", "*.md", "**/*.yaml", "scenarios/*.yaml", "scenarios/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="OCTOPUS developers",
    maintainer_email="octopus@example.org",
    description="The OCTOPUS scheduler: a ROS-free core and the scheduler node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "scheduler_node = octopus_scheduler.ros.scheduler_node:main",
        ],
    },
)
