"""The production settings, with the benchmark's reference endpoint (`bench.floor`) added to the URLs."""

from qolaba.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.floor"
