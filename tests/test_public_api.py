"""The public API: what ``orchestrator`` and ``hookspecs`` export, and that it is documented.

``__all__`` is the contract: it lists exactly the public names, the reference's names are among
them (spec §1.1), the SDK types are the same objects in both packages, and every one of them has
a docstring.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import types

import pytest

import hookspecs
import orchestrator
import orchestrator.actions
import orchestrator.eliza

PACKAGES = [orchestrator, hookspecs, orchestrator.actions, orchestrator.eliza]

# Spec §1.1, without the action and provider names (they come with the actions).
REFERENCE_NAMES = [
    "JsonValue",
    "TaskStatus",
    "TaskUserStatus",
    "TaskStep",
    "TaskResult",
    "AgentProviderId",
    "OrchestratedTaskMetadata",
    "OrchestratedTask",
    "ProviderTaskExecutionContext",
    "AgentProvider",
    "AgentOrchestratorPluginOptions",
    "TaskEventType",
    "TaskEvent",
    "AgentOrchestratorService",
    "configure_agent_orchestrator_plugin",
    "get_configured_options",
    "reset_configuration",
]

# The SDK's contract types: defined in hookspecs, re-exported unchanged by orchestrator.
CONTRACT_NAMES = [
    "AgentProvider",
    "AgentProviderId",
    "JsonValue",
    "OrchestratedTask",
    "OrchestratedTaskMetadata",
    "ProviderError",
    "ProviderTaskExecutionContext",
    "TaskEvent",
    "TaskEventType",
    "TaskResult",
    "TaskStatus",
    "TaskStep",
    "TaskUserStatus",
]


def public_names(package: types.ModuleType) -> set[str]:
    """Names bound in the package's ``__init__`` that are not private and not submodules."""
    return {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def isort_style_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    return group, name


def package_ids(packages: list[types.ModuleType]) -> list[str]:
    return [package.__name__ for package in packages]


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids(PACKAGES))
def test_every_name_in_all_exists(package):
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids(PACKAGES))
def test_every_public_attribute_is_listed_in_all(package):
    assert public_names(package) == set(package.__all__)


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids(PACKAGES))
def test_all_has_no_duplicates(package):
    assert len(package.__all__) == len(set(package.__all__))


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids(PACKAGES))
def test_all_is_sorted_constants_first_then_classes_then_functions(package):
    assert list(package.__all__) == sorted(package.__all__, key=isort_style_key)


@pytest.mark.parametrize("package", PACKAGES, ids=package_ids(PACKAGES))
def test_star_import_gives_exactly_all(package):
    namespace: dict[str, object] = {}
    exec(f"from {package.__name__} import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(package.__all__)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_the_reference_public_name_is_importable_from_orchestrator(name):
    module = importlib.import_module("orchestrator")
    assert name in module.__all__
    assert getattr(module, name) is not None


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_contract_types_are_the_same_objects_in_hookspecs_and_orchestrator(name):
    assert name in hookspecs.__all__
    assert name in orchestrator.__all__
    assert getattr(orchestrator, name) is getattr(hookspecs, name)


def test_every_name_both_packages_export_is_one_object():
    shared = set(orchestrator.__all__) & set(hookspecs.__all__)
    assert shared == set(CONTRACT_NAMES)
    for name in shared:
        assert getattr(orchestrator, name) is getattr(hookspecs, name), name


def test_the_reference_service_class_attributes_are_kept():
    service = orchestrator.AgentOrchestratorService
    assert service.service_type == "CODE_TASK"
    assert service.capability_description == (
        "Orchestrates tasks across registered agent providers"
    )


# -- docstrings -------------------------------------------------------------------------------


@functools.cache
def documented_module_attributes() -> dict[str, set[str]]:
    """For every module of both packages: the top-level names assigned with a docstring after."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        modules = [package.__name__] + [
            info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
        ]
        for module_name in modules:
            module = importlib.import_module(module_name)
            tree = ast.parse(inspect.getsource(module))
            names: set[str] = set()
            for node, following in zip(tree.body, tree.body[1:], strict=False):
                is_docstring = (
                    isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)
                    and following.value.value.strip()
                )
                if not is_docstring:
                    continue
                if isinstance(node, ast.Assign):
                    names.update(t.id for t in node.targets if isinstance(t, ast.Name))
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
            found[module_name] = names
    return found


def own_docstring(obj: object) -> str | None:
    """The docstring written on a class or function itself (not inherited)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        return doc if isinstance(doc, str) else None
    return getattr(obj, "__doc__", None)


def defined_here(obj: object) -> bool:
    """True for classes and functions defined in orchestrator or hookspecs themselves."""
    module = getattr(obj, "__module__", "") or ""
    return (inspect.isclass(obj) or inspect.isfunction(obj)) and module.split(".")[0] in {
        "orchestrator",
        "hookspecs",
    }


def has_attribute_docstring(package: types.ModuleType, name: str) -> bool:
    """A value or alias is documented by a string right after its assignment, in the module
    that defines it (the one whose attribute of that name is this very object)."""
    value = getattr(package, name)
    for module_name, names in documented_module_attributes().items():
        module = importlib.import_module(module_name)
        if name in names and getattr(module, name, None) is value:
            return True
    return False


EXPORTS = [(package, name) for package in PACKAGES for name in package.__all__]


@pytest.mark.parametrize(
    ("package", "name"), EXPORTS, ids=[f"{p.__name__}.{n}" for p, n in EXPORTS]
)
def test_every_public_name_has_a_docstring(package, name):
    obj = getattr(package, name)
    if defined_here(obj):
        doc = own_docstring(obj)
        assert doc and doc.strip(), f"{package.__name__}.{name} has no docstring"
    else:
        # Values and aliases (TRANSITIONS, JsonValue, AgentProviderId = str, hookimpl, ...).
        assert has_attribute_docstring(package, name), (
            f"{package.__name__}.{name} has no docstring after its assignment"
        )


OUR_PACKAGES = {"orchestrator", "hookspecs"}


def public_members() -> list[tuple[str, str, object]]:
    members: list[tuple[str, str, object]] = []
    seen: set[int] = set()
    for package in PACKAGES:
        for name in package.__all__:
            cls = getattr(package, name)
            if not (defined_here(cls) and inspect.isclass(cls)) or id(cls) in seen:
                continue
            seen.add(id(cls))
            own = [k for k in cls.__mro__ if k.__module__.split(".")[0] in OUR_PACKAGES]
            inherited = {name: m for k in reversed(own) for name, m in vars(k).items()}
            for member_name, member in inherited.items():
                if member_name.startswith("_"):
                    continue
                if isinstance(member, classmethod | staticmethod):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    members.append((cls.__name__, member_name, getattr(cls, member_name)))
    return members


PUBLIC_MEMBERS = public_members()


def test_public_classes_have_public_methods_to_check():
    assert len(PUBLIC_MEMBERS) > 40


@pytest.mark.parametrize(
    ("class_name", "member_name", "member"),
    PUBLIC_MEMBERS,
    ids=[f"{c}.{m}" for c, m, _ in PUBLIC_MEMBERS],
)
def test_every_public_method_of_a_public_class_has_a_docstring(class_name, member_name, member):
    # An override without its own docstring inherits the one it overrides (as help() shows).
    doc = inspect.getdoc(member)
    if isinstance(member, property):
        doc = inspect.getdoc(member.fget)
    assert doc and doc.strip(), f"{class_name}.{member_name} has no docstring"
