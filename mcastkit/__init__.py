"""mcastkit: deliver IP multicast into AWS and across AWS accounts."""

__version__ = "0.1.0"
