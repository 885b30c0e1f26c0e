"""The Amp integration: Amp's provider routes served locally, its control plane proxied.

`install_amp(root, app)` mounts the routes; `AmpModule` holds the live state. See
README.md ("Amp") for users and /work/shared/spec/amp.md for the behaviour.
"""

from cliproxy.amp.module import AmpConfigError, AmpModule, install_amp

__all__ = ["AmpConfigError", "AmpModule", "install_amp"]
