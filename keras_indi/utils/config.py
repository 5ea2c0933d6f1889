"""Plain (non-Keras) objects described by a config of their constructor arguments."""


class ConfigObject:
    """Base of objects rebuilt from ``get_config()`` (the keyword arguments of their
    constructor), whose ``repr`` shows that config: degradations and schedules.

    >>> class Blur(ConfigObject):
    ...     def __init__(self, sigma=1.0):
    ...         self.sigma = sigma
    ...     def get_config(self):
    ...         return {"sigma": self.sigma}
    >>> Blur.from_config({"sigma": 2.0})
    Blur(sigma=2.0)
    """

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"
