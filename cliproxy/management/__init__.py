"""The `/v0/management` API, the config writer and the panel (floor 4).

Everything here changes state only through the paths a hand edit uses: the config file
(round-trip YAML, atomic) followed by `ConfigStore.replace`, and the auth-dir files
followed by an `AuthDir.scan`.
"""
