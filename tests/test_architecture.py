"""The package's shape: no import cycles between its files (imports inside functions included),
so that every module can be read, and imported, on its own."""

import ast
import os

PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_indi")


def _module_files():
    modules = {}
    for directory, _, files in os.walk(PACKAGE_ROOT):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                name = os.path.relpath(path[:-3], os.path.dirname(PACKAGE_ROOT)).replace(os.sep, ".")
                modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph():
    """``{module: {modules it imports}}`` for every file of keras_indi (top-level and lazy imports)."""
    modules = _module_files()
    graph = {}
    for name, path in modules.items():
        with open(path) as file:
            tree = ast.parse(file.read())
        dependencies = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")
                    if not path.endswith("__init__.py"):
                        parts = parts[:-1]
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    dependencies.add(target)
        graph[name] = dependencies
    return graph


def import_cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_import_graph_is_found():
    graph = import_graph()
    assert "keras_indi.models.indi_model" in graph
    assert "keras_indi.samplers.indi_sampler" in graph["keras_indi.models.indi_model"]


def test_no_import_cycles():
    assert import_cycles(import_graph()) == []


def test_cycle_detection_works():
    assert import_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


# -- applications -----------------------------------------------------------------------------
APPS = "keras_indi.apps"
#: Entry points that run an application: ``python -m keras_indi`` starts the command line.
ENTRY_POINTS = ("keras_indi.__main__",)


def _is_app(name):
    return name == APPS or name.startswith(APPS + ".")


def _parsed_modules():
    for name, path in sorted(_module_files().items()):
        with open(path) as file:
            yield name, path, ast.parse(file.read())


def _dynamic_imports(tree):
    """Module names given as constants to ``importlib.import_module(...)`` / ``__import__(...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.lineno, node.args[0].value


def test_library_never_imports_the_applications():
    """keras_indi.apps (command line, quickstart, experiments) builds on the library; nothing
    outside it (but the ``python -m keras_indi`` entry point) imports it, lazily or not."""
    graph = import_graph()
    assert "keras_indi.apps.cli" in graph and any(_is_app(m) for m in graph["keras_indi.__main__"])
    offenders = {
        name: sorted(m for m in dependencies if _is_app(m))
        for name, dependencies in graph.items()
        if not _is_app(name) and name not in ENTRY_POINTS and any(_is_app(m) for m in dependencies)
    }
    for name, _, tree in _parsed_modules():
        if not _is_app(name) and name not in ENTRY_POINTS:
            dynamic = [target for _, target in _dynamic_imports(tree) if _is_app(target)]
            if dynamic:
                offenders.setdefault(name, []).extend(dynamic)
    assert offenders == {}


# -- backend-specific code --------------------------------------------------------------------
BACKEND_PACKAGE = "keras_indi.backend"
FRAMEWORKS = ("jax", "jaxlib", "torch", "tensorflow", "tensorflow_datasets", "tf_keras")

#: (module, framework) pairs that may import a framework directly, outside keras_indi.backend,
#: each with its reason. None of them branches on the Keras backend.
ALLOWED_FRAMEWORK_IMPORTS = {
    ("keras_indi.datasets.pipeline", "tensorflow"): (
        "tf.data input pipelines (and `tensorflow_available`): tf.data is a TensorFlow API on "
        "every Keras backend, not a backend branch"
    ),
    ("keras_indi.datasets.tfds_sources", "tensorflow"): "TFDS sources build tf.data pipelines",
    ("keras_indi.datasets.tfds_sources", "tensorflow_datasets"): "TFDS sources read TFDS datasets",
    ("keras_indi.datasets.gopro_builder", "tensorflow_datasets"): (
        "a TFDS dataset builder (GoPro), imported only on request"
    ),
    ("keras_indi.degradations.jpeg", "tensorflow"): (
        "`JPEGCompression.apply_tf`: the tf.data version of the degradation (tf.io JPEG codec)"
    ),
    ("keras_indi.metrics.lpips", "torch"): (
        "`convert_lpips_torch_weights` reads the official LPIPS .pth files with torch.load: a "
        "file format, on any backend"
    ),
}


def _in_backend_package(name):
    return name == BACKEND_PACKAGE or name.startswith(BACKEND_PACKAGE + ".")


def _framework_imports(tree):
    """``(line, framework)`` for every import of a framework (top-level or inside a function)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for target in names:
            if target.split(".")[0] in FRAMEWORKS:
                yield node.lineno, target.split(".")[0]
    for line, target in _dynamic_imports(tree):
        if target.split(".")[0] in FRAMEWORKS:
            yield line, target.split(".")[0]


def _is_backend_call(node):
    """``keras.backend.backend()``, ``keras.config.backend()`` or a bare ``backend()``."""
    if not isinstance(node, ast.Call) or node.args or node.keywords:
        return False
    function = node.func
    return (isinstance(function, ast.Attribute) and function.attr == "backend") or (
        isinstance(function, ast.Name) and function.id == "backend"
    )


def backend_branches(tree):
    """Line numbers where code branches on the Keras backend's name: a comparison with
    ``backend()`` (or with a name assigned from it), or a lookup keyed by it."""
    holders = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_backend_call(node.value):
            holders.update(target.id for target in node.targets if isinstance(target, ast.Name))

    def mentions_backend(node):
        return any(
            _is_backend_call(child) or (isinstance(child, ast.Name) and child.id in holders)
            for child in ast.walk(node)
        )

    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and mentions_backend(node):
            lines.add(node.lineno)
        elif isinstance(node, ast.Subscript) and mentions_backend(node.slice):
            lines.add(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and mentions_backend(node.args[0])
        ):
            lines.add(node.lineno)
    return sorted(lines)


def test_backend_branches_live_in_the_backend_package():
    """Outside keras_indi/backend/ no module compares the Keras backend's name or dispatches on
    it. The applications are held to the same rule: they record and print the backend's name
    but never choose a code path by it."""
    offenders = {}
    for name, path, tree in _parsed_modules():
        if not _in_backend_package(name):
            lines = backend_branches(tree)
            if lines:
                offenders[os.path.relpath(path, os.path.dirname(PACKAGE_ROOT))] = lines
    assert offenders == {}


def test_frameworks_are_imported_only_by_the_backend_package_and_the_allowlist():
    offenders, used = {}, set()
    for name, path, tree in _parsed_modules():
        if _in_backend_package(name):
            continue
        for line, framework in _framework_imports(tree):
            if (name, framework) in ALLOWED_FRAMEWORK_IMPORTS:
                used.add((name, framework))
            else:
                offenders.setdefault(os.path.relpath(path, os.path.dirname(PACKAGE_ROOT)), []).append(
                    f"line {line}: {framework}"
                )
    assert offenders == {}
    assert set(ALLOWED_FRAMEWORK_IMPORTS) - used == set(), "stale allowlist entries"


def test_backend_branch_detection_works():
    source = """
import keras
if keras.backend.backend() == "jax":
    pass
name = keras.backend.backend()
if name in ("jax", "tensorflow"):
    pass
DETECTORS.get(keras.backend.backend())
DETECTORS[keras.config.backend()]
record = {"backend": keras.backend.backend()}
key = (keras.backend.backend(), 1)
"""
    assert backend_branches(ast.parse(source)) == [3, 6, 8, 9]
    imports = list(_framework_imports(ast.parse("import jax.numpy\nfrom torch import nn\nimport numpy\n")))
    assert imports == [(1, "jax"), (2, "torch")]


# Private Keras API: `keras.src` imports and the private attributes keras-indi once used. Only
# keras_indi/utils/layer_inputs.py may set the two input attributes (it says why).
_PRIVATE_KERAS = (
    "keras.src",
    "_symbolic_build",
    "_seed_generators",
    "_initial_epoch",
    "_call_has_training_arg",
    "_flatten_layers",
    "_model_variables_moving_average",
    "_convert_input_args",
    "_allow_non_tensor_positional_args",
)
_PRIVATE_KERAS_HOME = os.path.join("utils", "layer_inputs.py")


def test_no_private_keras_api_outside_its_one_documented_place():
    found = []
    for path in _module_files().values():
        relative = os.path.relpath(path, PACKAGE_ROOT)
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                for name in _PRIVATE_KERAS:
                    if name in line and not (relative == _PRIVATE_KERAS_HOME and name.startswith("_")):
                        found.append(f"{relative}:{number}: {name}")
    assert not found, "private Keras API outside keras_indi/utils/layer_inputs.py:\n" + "\n".join(found)
