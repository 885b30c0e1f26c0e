"""twistd plugin: ``twistd cliproxy --config conf/config.yaml``.

Nothing heavy is imported here: ServiceMaker loads cliproxy.tap only when the
subcommand runs. There is deliberately no __init__.py in twisted/ or twisted/plugins/.
"""

from twisted.application.service import ServiceMaker

cliproxy = ServiceMaker(
    "cliproxy",
    "cliproxy.tap",
    "Local LLM API proxy (OpenAI, Claude, Gemini, Amp) on your own accounts.",
    "cliproxy",
)
