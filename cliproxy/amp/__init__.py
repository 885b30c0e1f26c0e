"""The Amp integration: Amp's provider routes served locally, its control plane proxied.

`AmpModule` holds the live state; `cliproxy.amp.routes.mount_amp` puts the routes on the
tree (the composition root, `cliproxy.app.build_app`, does both). See README.md ("Amp")
for users and ../shared/spec/amp.md for the behaviour.
"""

from cliproxy.amp.module import AmpConfigError, AmpCore, AmpModule

__all__ = ["AmpConfigError", "AmpCore", "AmpModule"]
