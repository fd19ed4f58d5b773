"""Records: classes of named fields, as `dataclasses` makes them, at a small part of the cost.

Every run of the CLI defines some seventy record classes before it does anything. With
`dataclasses` (Python 3.10 to 3.12) each costs about 0.4 ms: six methods, each compiled from
source on its own, and the module itself imports `inspect` and `ast`. That was a third of the
CLI's start-up. Here a class costs nothing until its first record is made; then `__init__`,
`__eq__` and `__hash__` are compiled for its fields in two `exec`s, as fast as hand-written
ones. `repr` and the frozen guard are shared functions that read the class's field names.

What the project uses of `dataclasses`, with the same meaning: `record` (frozen unless
`frozen=False`; `slots=True`), `field` (`default`, `default_factory`, `init`, `repr`, `compare`,
`metadata`), `replace`, `fields` and `asdict`. Type checkers read `record` as `dataclass`
(PEP 681), and `replace` as `dataclasses.replace`, whose keyword arguments they check against
the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    # The same checks as for `dataclasses.replace`: each keyword names a field, of its type.
    from dataclasses import replace as replace  # noqa: PLC0414 - re-exported for checkers

    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: object) -> Callable[[Any], Any]:
        return lambda decorated: decorated


T = TypeVar("T")


class FrozenInstanceError(AttributeError):
    """A field of a frozen record was assigned or deleted."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Field:
    """One field of a record: its name, its default or the factory of one, and metadata."""

    __slots__ = ("compare", "default", "default_factory", "init", "metadata", "name", "repr")

    def __init__(  # noqa: PLR0913 - the options of dataclasses.field that the project uses
        self,
        default: Any = MISSING,  # noqa: ANN401 - a field holds any value
        default_factory: Callable[[], Any] | Any = MISSING,  # noqa: ANN401
        *,
        init: bool = True,
        repr: bool = True,  # noqa: A002 - the name dataclasses.field gives it
        compare: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.compare = compare
        self.metadata = _EMPTY if metadata is None else MappingProxyType(dict(metadata))

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r})"


def field(  # noqa: PLR0913 - as dataclasses.field
    *,
    default: Any = MISSING,  # noqa: ANN401 - a field holds any value
    default_factory: Callable[[], Any] | Any = MISSING,  # noqa: ANN401
    init: bool = True,
    repr: bool = True,  # noqa: A002 - the name dataclasses.field gives it
    compare: bool = True,
    metadata: Mapping[str, Any] | None = None,
) -> Any:  # noqa: ANN401 - typed as the field's own type where it is declared
    """A field with options: a default, a factory of one, left out of `__init__` (`init`), of
    `repr`, of equality and hashing (`compare`), and metadata for the program's own use."""
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("a field takes a default or a default_factory, not both")
    return Field(default, default_factory, init=init, repr=repr, compare=compare, metadata=metadata)


_FIELDS = "__record_fields__"
_SHOWN = "__record_shown__"  # the names repr shows
_COMPARED = "__record_compared__"  # the names equality and hashing compare


def fields(record_or_class: object) -> tuple[Field, ...]:
    """The fields of a record class or of one of its records, in order."""
    found: tuple[Field, ...] | None = getattr(record_or_class, _FIELDS, None)
    if found is None:
        raise TypeError(f"{record_or_class!r} is not a record")
    return found


if not TYPE_CHECKING:

    def replace(obj: T, /, **changes: Any) -> T:  # noqa: ANN401
        """A copy of `obj` with `changes`, made through its `__init__`."""
        values = {f.name: getattr(obj, f.name) for f in fields(obj) if f.init}
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"{type(obj).__name__} has no field {min(unknown)!r} to replace")
        values.update(changes)
        return type(obj)(**values)


def asdict(obj: object) -> dict[str, Any]:
    """A record as plain values: records become dicts, tuples and lists lists, deeply."""
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}


def _plain(value: object) -> object:
    if hasattr(value, _FIELDS):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, frozen: bool = True, slots: bool = False) -> Callable[[type[T]], type[T]]: ...
@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(
    cls: type[T] | None = None, /, *, frozen: bool = True, slots: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make `cls` a record: `__init__` over its annotated fields, equality by value, `repr`;
    frozen (the default) also hashable by value, and its fields cannot be assigned."""

    def make(kind: type[T]) -> type[T]:
        return _make(kind, frozen=frozen, slots=slots)

    return make if cls is None else make(cls)


def _make(cls: type[T], *, frozen: bool, slots: bool) -> type[T]:
    made = [name for name in ("__init__", "__eq__") if name in cls.__dict__]
    if made:
        # They are compiled for the fields on first use, which would replace these.
        raise TypeError(f"{cls.__name__}: a record makes its own {made[0]}; remove it")
    own_repr = cls.__dict__.get("__repr__")
    all_fields, own = _fields_of(cls)
    if slots:
        # A class cannot gain __slots__ after it is made: it is made again, with them.
        body = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        for name in own:
            body.pop(name, None)
        body["__slots__"] = own
        qualname = cls.__qualname__
        metaclass: Any = type(cls)
        cls = metaclass(cls.__name__, cls.__bases__, body)
        cls.__qualname__ = qualname
    setattr(cls, _FIELDS, all_fields)
    setattr(cls, _SHOWN, tuple(f.name for f in all_fields if f.repr))
    setattr(cls, _COMPARED, tuple(f.name for f in all_fields if f.compare))
    methods: dict[str, object] = {
        "__match_args__": tuple(f.name for f in all_fields if f.init),
        "__init__": _first_init(cls, all_fields, frozen=frozen),
        "__repr__": _repr,
        "__eq__": _eq,
    }
    if frozen:
        methods |= {"__hash__": _hash, "__setattr__": _refuse_set, "__delattr__": _refuse_del}
        if slots:
            methods |= {"__getstate__": _getstate, "__setstate__": _setstate}
    elif "__hash__" not in cls.__dict__:
        # Equal by value and changeable: not hashable, as a dataclass with eq=True.
        methods["__hash__"] = None
    if own_repr is not None:
        methods["__repr__"] = own_repr  # as dataclasses: a class's own repr is kept
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def _fields_of(cls: type) -> tuple[tuple[Field, ...], tuple[str, ...]]:
    """Every field of `cls`, its bases' first, and the names of its own."""
    by_name: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        by_name.update((f.name, f) for f in getattr(base, _FIELDS, ()))
    own: list[str] = []
    # The class's own annotations, not its bases' (inspect.get_annotations would import inspect):
    # in its __dict__ up to Python 3.13, made by the __annotations__ getter from 3.14.
    annotations = cls.__dict__.get("__annotations__")  # noqa: RUF063
    if annotations is None:
        annotations = getattr(cls, "__annotations__", {})
    for name, annotation in annotations.items():
        if _is_class_var(annotation):
            continue
        value = cls.__dict__.get(name, MISSING)
        declared = value if isinstance(value, Field) else Field(default=value)
        declared.name = name
        by_name[name] = declared
        own.append(name)
        # As with dataclasses: the class keeps a plain default as its attribute, not a Field.
        if isinstance(value, Field):
            if declared.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, declared.default)
    return tuple(by_name.values()), tuple(own)


def _is_class_var(annotation: object) -> bool:
    # A string where annotations are postponed (every module here), else typing's own repr.
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.split("[", 1)[0].rsplit(".", 1)[-1] == "ClassVar"


def _first_init(cls: type, all_fields: tuple[Field, ...], *, frozen: bool) -> Callable[..., None]:
    """`__init__` until the first record is made: it compiles the real one, and equality and
    hashing made for these fields, puts them in their places and makes that record. A class
    no run instantiates (most of the aggregate's in a build) never pays for the compilation;
    until then, equality and hashing are the shared functions below."""

    _check(cls, all_fields)

    def first_init(self: object, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        methods = _compiled(cls, all_fields, frozen=frozen)
        for name, method in methods.items():
            type.__setattr__(cls, name, method)
        methods["__init__"](self, *args, **kwargs)

    first_init.__name__ = "__init__"
    first_init.__qualname__ = f"{cls.__qualname__}.__init__"
    return first_init


def _check(cls: type, all_fields: tuple[Field, ...]) -> None:
    """What `_init` would refuse, refused when the class is made."""
    defaulted = None
    for f in all_fields:
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if not f.init and not has_default:
            raise TypeError(f"{cls.__name__}: field {f.name!r} has no init and no default")
        if f.init and has_default:
            defaulted = f.name
        elif f.init and defaulted is not None:
            raise TypeError(f"{cls.__name__}: field {f.name!r} without a default follows one")


def _compiled(
    cls: type, all_fields: tuple[Field, ...], *, frozen: bool
) -> dict[str, Callable[..., Any]]:
    """`__init__`, `__eq__` and (frozen) `__hash__`, compiled for the fields: as fast as the
    ones dataclasses writes, which the aggregate of 50,000 builds needs (its sets and
    comparisons)."""
    methods: dict[str, Callable[..., Any]] = {"__init__": _init(cls, all_fields, frozen=frozen)}
    compared = [f.name for f in all_fields if f.compare]
    mine = "(" + "".join(f"self.{name}," for name in compared) + ")"
    theirs = "(" + "".join(f"other.{name}," for name in compared) + ")"
    source = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is not self.__class__:\n"
        "        return NotImplemented\n"
        f"    return {mine} == {theirs}\n"
        "def __hash__(self):\n"
        f"    return hash({mine})\n"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - made above from the class's field names alone
    methods["__eq__"] = namespace["__eq__"]
    if frozen:
        methods["__hash__"] = namespace["__hash__"]
    for name, method in methods.items():
        method.__qualname__ = f"{cls.__qualname__}.{name}"
    return methods


def _init(cls: type, all_fields: tuple[Field, ...], *, frozen: bool) -> Callable[..., None]:
    """`__init__` compiled for the fields: positional or by keyword, defaults bound once."""
    namespace: dict[str, Any] = {"_FACTORY": MISSING, "_set": object.__setattr__}
    params = ["self"]
    body = []
    for index, f in enumerate(all_fields):
        name = f.name
        # What the field is set to, and the parameter's default ("" for none).
        if f.default_factory is not MISSING:
            namespace[f"_factory_{index}"] = f.default_factory
            default = "_FACTORY"
            value = f"_factory_{index}()"
            if f.init:
                value += f" if {name} is _FACTORY else {name}"
        elif f.default is not MISSING:
            namespace[f"_default_{index}"] = f.default
            default = f"_default_{index}"
            value = name if f.init else default
        elif not f.init:
            raise TypeError(f"{cls.__name__}: field {name!r} has no init and no default")
        else:
            default, value = "", name
        if f.init and default:
            params.append(f"{name}={default}")
        elif f.init and "=" in params[-1]:
            raise TypeError(f"{cls.__name__}: field {name!r} without a default follows one")
        elif f.init:
            params.append(name)
        body.append(f"    _set(self, {name!r}, {value})" if frozen else f"    self.{name}={value}")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__({', '.join(params)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)  # noqa: S102 - made above from the class's field names alone
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _compared(self: object) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in getattr(self, _COMPARED))


def _repr(self: object) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(self, _SHOWN))
    return f"{type(self).__qualname__}({shown})"


def _eq(self: object, other: object) -> Any:  # noqa: ANN401 - a bool, or NotImplemented
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self: object) -> int:
    return hash(_compared(self))


def _refuse_set(_self: object, name: str, _value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen record")


def _refuse_del(_self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen record")


def _getstate(self: object) -> tuple[Any, ...]:
    return tuple(getattr(self, f.name) for f in getattr(self, _FIELDS))


def _setstate(self: object, state: tuple[Any, ...]) -> None:
    for f, value in zip(getattr(self, _FIELDS), state, strict=True):
        object.__setattr__(self, f.name, value)
