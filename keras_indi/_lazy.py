"""Lazy package attributes (PEP 562): a public name is imported from its module on first use.

`import keras_indi` imports neither Keras nor TensorFlow, so `keras-indi --help` starts in a
fraction of a second and a program pays only for what it uses. ``keras_indi.InDIModel``,
``from keras_indi import InDIModel`` and ``from keras_indi.layers import TimeResidualBlock``
work exactly as before: the first access imports the defining module (and Keras with it) and
caches the value on the package.

Keras serialization does not depend on what was imported: `keras_indi.api_export` registers a
placeholder for every keras-indi class in Keras' registry, which imports the real class when a
``.keras`` file names it. It is imported by every module that defines a Keras class, by
``import keras_indi`` when Keras is loaded already, and otherwise right after Keras is first
imported (`run_after_import`), so that ``import keras_indi; import keras;
keras.saving.load_model(path)`` works as before.
"""

import importlib
import importlib.abc
import sys


def attach(package, names, submodules=()):
    """``(__getattr__, __dir__)`` for the module `package`.

    Args:
        package: the package's ``__name__``.
        names: ``{attribute: submodule}``, e.g. ``{"InDIModel": "models.indi_model"}``: the
            attribute is ``getattr(import_module(package + "." + submodule), attribute)``.
        submodules: submodule names listed by ``dir()`` (any submodule is imported on access).
    """

    def __getattr__(name):
        if name.startswith("__"):  # dunder probes (copy, pickle, doctest, IDEs): never an import
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name = names.get(name)
        if module_name is not None:
            value = getattr(importlib.import_module(f"{package}.{module_name}"), name)
        else:
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":
                    raise  # the submodule exists but one of its imports is missing
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        setattr(sys.modules[package], name, value)  # later accesses skip __getattr__
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names) | set(submodules))

    return __getattr__, __dir__


class _CallbackLoader(importlib.abc.Loader):
    """Executes a module with its own loader, puts that loader back, then calls `callback`."""

    def __init__(self, loader, hook):
        self._loader, self._hook = loader, hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = self._loader
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self._loader
        if self._hook in sys.meta_path:  # one shot
            sys.meta_path.remove(self._hook)
        try:
            self._hook.callback()
        except Exception:  # noqa: BLE001 - never break the user's import
            pass

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _AfterImport(importlib.abc.MetaPathFinder):
    """An import hook: `callback()` runs once module `name` has been executed, then the hook
    removes itself (a `find_spec` that does not import leaves it in place)."""

    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        for finder in [finder for finder in sys.meta_path if finder is not self]:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _CallbackLoader(spec.loader, self)
        return spec


def run_after_import(name, callback):
    """Call `callback()` right after top-level module `name` is first imported (now when it is
    imported already). One hook per module name; a failing callback is ignored."""
    if name in sys.modules:
        callback()
    elif not any(isinstance(finder, _AfterImport) and finder.name == name for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, callback))
