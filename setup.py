"""cliproxy: a local LLM API proxy on Twisted."""

import re
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = re.search(
    r'^__version__ = "([^"]+)"', (here / "cliproxy" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="cliproxy",
    version=version,
    description=(
        "Local LLM API proxy: your subscriptions and keys from any OpenAI, Claude "
        "or Gemini client, and Amp"
    ),
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    # twisted/plugins has no __init__.py on purpose (it would hide the plugin and clash
    # with Twisted's own), so find_packages cannot see it: list it by hand.
    packages=find_packages(exclude=["tests", "tests.*", "bench", "bench.*"]) + ["twisted.plugins"],
    package_data={"cliproxy": ["data/*.yaml", "data/*.json"]},
    include_package_data=False,
    install_requires=[
        # 24.7 carries the request-smuggling fixes; Debian 12's 22.4 has them as backports
        # and is used through the distro package, not through pip.
        "Twisted[tls]>=24.7",
        "treq>=22.2",
        "PyYAML>=6.0",
        "service-identity>=21.1",
        "pyOpenSSL>=21.0",
        # zstd bodies from upstreams (Python 3.11 has no zstd in the stdlib).
        "zstandard>=0.20",
        # The management API: the secret is bcrypt-hashed (core.md §6.1), config writes keep
        # the user's comments and key order (round-trip YAML), and /metrics speaks the
        # Prometheus exposition format. All three are in Debian 12 (bcrypt 3.2,
        # ruamel.yaml 0.17, prometheus-client 0.16).
        "bcrypt>=3.2",
        "ruamel.yaml>=0.17",
        "prometheus_client>=0.16",
        # The Responses WebSocket mode (GET /v1/responses upgraded, Codex CLI): autobahn
        # does the handshake and the framing. Debian 12: python3-autobahn 22.7.
        "autobahn>=22.7",
    ],
    extras_require={
        # The shared PostgreSQL store (`store:` / PGSTORE_DSN, cliproxy.store) needs psycopg2;
        # an extra, so a single-host install stays free of libpq. Debian: python3-psycopg2.
        # The test extra includes it: the store tests run against a real PostgreSQL.
        "postgres": ["psycopg2-binary>=2.9"],
        # Faster JSON on the request path (cliproxy.jsonutil); optional, the standard
        # library is used without it. Not in Debian 12.
        "fast": ["orjson>=3.9"],
        "test": [
            "psycopg2-binary>=2.9",
            # the latest line runs with orjson (cliproxy.jsonutil's fast path), the
            # Debian line without it: both paths are tested
            "orjson>=3.9",
            "types-psycopg2>=2.9",
            "pytest>=7.2",
            "pytest-twisted>=1.13",
            "hypothesis>=6.67",
            "openai>=1.40",
            "anthropic>=0.40",
            "google-genai>=1.0",
            "ruff>=0.6",
            # `mypy --strict` runs in CI; mypy-zope teaches it zope.interface declarations.
            "mypy>=1.10",
            "mypy-zope>=1.0",
            "types-PyYAML>=6.0",
        ],
    },
    entry_points={"console_scripts": ["cliproxy = cliproxy.cli:main"]},
    classifiers=[
        "Framework :: Twisted",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
    ],
)
