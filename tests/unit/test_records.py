"""records.record behaves as dataclasses.dataclass does, for every option the project uses.

Each case defines one class twice, with `dataclasses` and with `records`, and compares what the
two do: construction, defaults, equality, hashing, repr, the frozen guard, slots, inheritance.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import ClassVar

import pytest

from nix_cache_action import records


@dataclasses.dataclass(frozen=True)
class DPoint:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    seen: list[int] = dataclasses.field(default_factory=list, compare=False)
    secret: str = dataclasses.field(default="", repr=False)
    kind: ClassVar[str] = "point"


@records.record
class RPoint:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    seen: list[int] = records.field(default_factory=list, compare=False)
    secret: str = records.field(default="", repr=False)
    kind: ClassVar[str] = "point"


@records.record(slots=True)
class RBase:
    id: int
    text: str = ""


@records.record(slots=True)
class RChild(RBase):
    path: str = ""


@records.record(frozen=False)
class RCounter:
    name: str
    count: int = 0
    items: list[str] = records.field(default_factory=list)
    cache: dict[str, str] | None = records.field(default=None, init=False, compare=False)


def test_construction_defaults_and_repr_match_dataclasses() -> None:
    pairs = [
        (DPoint(1), RPoint(1)),
        (DPoint(1, 2, tags=("a",)), RPoint(1, 2, tags=("a",))),
        (DPoint(x=3, secret="s"), RPoint(x=3, secret="s")),  # noqa: S106 - not a password
    ]
    for d, r in pairs:
        assert repr(r).replace("RPoint", "DPoint") == repr(d)
        assert (r.x, r.y, r.tags, r.seen, r.secret) == (d.x, d.y, d.tags, d.seen, d.secret)
    assert "hidden-value" not in repr(RPoint(1, secret="hidden-value"))  # noqa: S106


def test_equality_and_hash_by_the_compared_fields() -> None:
    a, b = RPoint(1, 2, seen=[1]), RPoint(1, 2, seen=[9])
    assert a == b  # `seen` is not compared
    assert hash(a) == hash(b) == hash(DPoint(1, 2))
    assert a != RPoint(1, 3)
    other: object = DPoint(1, 2)
    assert a != other  # another class is never equal
    assert len({a, b, RPoint(2)}) == 2


def test_frozen_refuses_assignment_and_deletion() -> None:
    point = RPoint(1)
    with pytest.raises(records.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.x


def test_default_factory_makes_a_new_value_each_time() -> None:
    a, b = RPoint(1), RPoint(1)
    assert a.seen == []
    assert a.seen is not b.seen


def test_mutable_record_is_unhashable_and_init_false_field_is_set() -> None:
    counter = RCounter("n")
    counter.count += 1
    counter.items.append("x")
    assert counter == RCounter("n", 1, ["x"])
    assert counter.cache is None
    with pytest.raises(TypeError):
        hash(counter)
    with pytest.raises(TypeError):
        RCounter("n", cache={})  # type: ignore[call-arg]


def test_slots_and_inheritance() -> None:
    child = RChild(1, "t", path="/p")
    assert (child.id, child.text, child.path) == (1, "t", "/p")
    assert records.fields(child)[-1].name == "path"
    assert not hasattr(child, "__dict__")
    assert vars(RChild)["__slots__"] == ("path",)
    assert child == RChild(1, "t", "/p")
    assert child != RBase(1, "t")
    assert pickle.loads(pickle.dumps(child)) == child  # noqa: S301 - our own bytes


def test_replace_fields_and_asdict() -> None:
    point = RPoint(1, 2, ("a",), secret="s")  # noqa: S106 - not a password
    moved = records.replace(point, y=5)
    assert (moved.x, moved.y, moved.tags, moved.secret) == (1, 5, ("a",), "s")
    with pytest.raises(TypeError, match="no field 'z'"):
        records.replace(point, z=1)  # type: ignore[call-arg]
    assert [f.name for f in records.fields(RPoint)] == ["x", "y", "tags", "seen", "secret"]
    assert records.asdict(RChild(1, path="p")) == {"id": 1, "text": "", "path": "p"}
    nested = records.asdict(RCounter("n", items=["a"]))
    assert nested == {"name": "n", "count": 0, "items": ["a"], "cache": None}
    with pytest.raises(TypeError, match="not a record"):
        records.fields(object())


def test_metadata_and_post_init() -> None:
    @records.record
    class Tagged:
        shown: int
        hidden: int = records.field(default=0, metadata={"json": False})

    assert [f.metadata.get("json", True) for f in records.fields(Tagged)] == [True, False]

    @records.record(frozen=False)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):
        Checked(-1)


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows one"):

        @records.record
        class Wrong:
            a: int = 0
            b: int  # type: ignore[misc]


def test_init_is_compiled_on_first_use_and_takes_the_same_arguments() -> None:
    @records.record
    class Lazy:
        a: int
        b: int = 2

    first = vars(Lazy)["__init__"]
    assert Lazy(1).b == 2
    compiled = vars(Lazy)["__init__"]
    assert compiled is not first
    assert Lazy(1, 3) == Lazy(a=1, b=3)
    assert vars(Lazy)["__init__"] is compiled  # compiled once
    with pytest.raises(TypeError):
        Lazy()  # type: ignore[call-arg]


def test_equality_and_hashing_are_compiled_with_init_and_agree_with_the_shared_ones() -> None:
    @records.record
    class Pair:
        a: int
        b: tuple[str, ...] = ()
        note: str = records.field(default="", compare=False)

    shared_eq, shared_hash = vars(Pair)["__eq__"], vars(Pair)["__hash__"]
    first, second = Pair(1, ("x",), note="one"), Pair(1, ("x",), note="two")
    assert vars(Pair)["__eq__"] is not shared_eq
    assert first == second
    assert hash(first) == hash(second) == shared_hash(first)
    assert shared_eq(first, second) is True
    assert first != Pair(2, ("x",))
    assert (first == object()) is False


def test_a_record_class_that_writes_its_own_equality_is_refused() -> None:
    with pytest.raises(TypeError, match="makes its own __eq__"):

        @records.record
        class Own:
            a: int

            def __eq__(self, other: object) -> bool:
                return True

            __hash__ = object.__hash__


def test_annotations_that_are_objects_work_as_strings_do() -> None:
    # A module without postponed annotations gives the decorator objects, ClassVar among them.
    namespace: dict[str, object] = {}
    exec(  # noqa: S102 - a class defined without `from __future__ import annotations`
        "import typing\n"
        "from nix_cache_action import records\n"
        "@records.record\n"
        "class Plain:\n"
        "    a: int\n"
        "    kind: typing.ClassVar[str] = 'plain'\n",
        namespace,
    )
    plain = namespace["Plain"]
    assert [f.name for f in records.fields(plain)] == ["a"]
    assert plain(1) == plain(a=1)  # type: ignore[operator]
