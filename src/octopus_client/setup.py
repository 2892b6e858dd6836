from setuptools import find_packages, setup

package_name = "octopus_client"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # YAML/Markdown data that the code loads with importlib.resources lives inside the package.
    package_data={"": ["*.yaml", "*.md", "**/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml", "plugin.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="OCTOPUS developers",
    maintainer_email="octopus@example.org",
    description="The octopus command-line client, the Gantt widget and its rqt plugin.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "octopus = octopus_client.cli:main",
        ],
    },
)
