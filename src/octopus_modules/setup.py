from setuptools import find_packages, setup

package_name = "octopus_modules"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # YAML/Markdown data that the code loads with importlib.resources lives inside the package.
    package_data={"": ["*.yaml", "*.md", "**/*.yaml", "descriptions/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="OCTOPUS developers",
    maintainer_email="octopus@example.org",
    description="OCTOPUS module nodes: a generic module node, device drivers, ExecuteTask servers.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "module_node = octopus_modules.ros.module_node:main",
        ],
    },
)
