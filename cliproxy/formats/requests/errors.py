"""The one exception request translation raises."""


class TranslationError(ValueError):
    """A request body that cannot be translated: the client sent a structurally wrong body.

    The web layer turns it into a 400 in the client's own error shape. Its message is meant
    for the person who wrote the request, so it names the offending field.
    """
