from glob import glob

from setuptools import find_packages, setup

package_name = "octopus_bringup"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    # YAML/Markdown data that the code loads with importlib.resources lives inside the package.
    package_data={"": ["*.yaml", "*.md", "**/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="OCTOPUS developers",
    maintainer_email="octopus@example.org",
    description="Bring-up of an OCTOPUS lab: lab descriptions and lab.launch.py.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [],
    },
)
