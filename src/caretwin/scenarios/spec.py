"""Scenario files: YAML, pure data, validated with located errors (file, line, field, allowed values).

A scenario names its baseline parameters, a horizon and a replication count, and lists shocks
(what happens to the system), interventions (what the agency does) and policies. `extends:`
names another scenario file whose settings it starts from: mappings merge, the lists of shocks
and interventions are the parent's followed by the child's, and every other value is replaced.
Weeks are counted from 1, the run's first week.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticError

from caretwin.errors import Problem, ValidationError

STAFFED_LINES = ("hcbs", "home_health")
BED_LINES = ("snf", "nursing_facility", "crisis_stabilization", "supportive_housing")
BED_COST_PARAM = {"snf": "cost_snf_day", "nursing_facility": "cost_nursing_facility_day",
                  "crisis_stabilization": "cost_csu_day", "supportive_housing": "cost_supportive_housing_day"}
BLS_AIDE_WAGE = 16.78  # US median hourly wage, home health and personal care aides (BLS OEWS May 2023, 31-1120)


def _change(v: Any) -> Any:
    """'+15%', '-10%' or a fraction (0.15); a bare number above 5 is refused as an ambiguous percentage."""
    if isinstance(v, str) and v.strip().endswith("%"):
        try:
            return float(v.strip()[:-1]) / 100.0
        except ValueError:
            raise ValueError(f"{v!r} is not a percentage such as +15% or -10%") from None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > 5:
        raise ValueError(f"{v} is ambiguous: write {v}% or {v / 100:g} as a fraction")
    return v


M = TypeVar("M", bound=BaseModel)
Change = Annotated[float, BeforeValidator(_change), Field(ge=-1.0)]
Share = Annotated[float, BeforeValidator(_change), Field(gt=0.0, le=1.0)]
Regions = Literal["all"] | list[str]
StaffedLine = Literal["hcbs", "home_health"]
CapacityLine = Literal["hcbs", "home_health", "snf", "nursing_facility", "crisis_stabilization", "supportive_housing"]
Cut = Annotated[int, Field(ge=-100_000, le=100_000)]  # a change in staff or beds: negative removes
Week = Annotated[int, Field(ge=1)]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Timed(Item):
    start_week: Week = 1


class Bounded(Timed):
    end_week: Week | None = None  # last week in effect (inclusive); none: to the end of the horizon

    @model_validator(mode="after")
    def _order(self) -> Bounded:
        if self.end_week is not None and self.end_week < self.start_week:
            raise ValueError(f"end_week {self.end_week} is before start_week {self.start_week}")
        return self


# ------------------------------------------------------------------------------------------- shocks
class Referrals(Bounded):
    """Referrals change by `change`, reached linearly over `ramp_weeks` (0: at once)."""

    service_line: StaffedLine = "hcbs"
    regions: Regions = "all"
    change: Change
    ramp_weeks: Annotated[int, Field(ge=0)] = 0


class Enrolment(Bounded):
    """New enrolment changes by `change` (e.g. -30% for an eligibility redetermination, +20% for an expansion),
    reached linearly over `ramp_weeks`. Members already enrolled are not touched; at most +100%."""

    regions: Regions = "all"
    change: Annotated[float, BeforeValidator(_change), Field(ge=-1.0, le=1.0)]
    ramp_weeks: Annotated[int, Field(ge=0)] = 0


class SeasonalSurge(Item):
    """A bump in demand peaking in `peak_week`, rising and falling over `width_weeks` either side."""

    peak_week: Week
    width_weeks: Annotated[int, Field(ge=1)] = 4
    change: Change
    affects: list[Literal["referrals", "ed_visits", "admissions", "crisis"]] = ["referrals", "ed_visits", "admissions",
                                                                               "crisis"]


class StaffLoss(Timed):
    """Direct-care staff leave at once: `fte` from each named region, or a `share` of every provider there."""

    service_line: StaffedLine = "hcbs"
    regions: Regions = "all"
    fte: Annotated[int, Field(ge=1)] | None = None
    share: Share | None = None

    @model_validator(mode="after")
    def _one(self) -> StaffLoss:
        if (self.fte is None) == (self.share is None):
            raise ValueError("give either fte or share")
        return self


class ProviderClosure(Timed):
    """Named providers close, or the `count` largest of `service_line` in `region`. A closed bed provider's
    beds take no new patients; those in them stay until their stays end."""

    providers: list[str] = []
    region: str | None = None
    count: Annotated[int, Field(ge=1)] = 1
    service_line: CapacityLine = "hcbs"

    @model_validator(mode="after")
    def _which(self) -> ProviderClosure:
        if bool(self.providers) == (self.region is not None):
            raise ValueError("give either providers (a list of provider ids) or a region")
        return self


# ------------------------------------------------------------------------------------ interventions
class RedeployStaff(Bounded):
    service_line: StaffedLine = "hcbs"
    from_region: str = Field(alias="from")
    to_region: str = Field(alias="to")
    fte: Annotated[int, Field(ge=1)]


class AddCapacity(Timed):
    """Staff (`fte`, for hcbs and home_health) or beds/units (`beds`) added in one region; a negative number
    removes them (a cut). Removed beds take no new patients and their occupants stay until their stays end;
    removed staff leave the largest providers first, so their members' visits are missed until staff return.

    Use of the added capacity is costed like any other service; the `cost_per_*` figures are what
    holding it costs on top (standby staffing of a bed, recruitment), 0 unless given.
    """

    service_line: CapacityLine
    region: str
    beds: Cut | None = None
    fte: Cut | None = None
    cost_per_bed_day: Annotated[float, Field(ge=0)] = 0.0
    cost_per_fte_week: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _unit(self) -> AddCapacity:
        if self.service_line in STAFFED_LINES and (self.fte is None or self.beds is not None):
            raise ValueError(f"{self.service_line} capacity is staff: give fte (not beds)")
        if self.service_line in BED_LINES and (self.beds is None or self.fte is not None):
            raise ValueError(f"{self.service_line} capacity is beds or units: give beds (not fte)")
        if (self.beds or self.fte) == 0:
            raise ValueError("adding 0 changes nothing: give a number of beds or staff to add (or, negative, remove)")
        return self


class WageIncrease(Timed):
    """A pay rise for direct-care staff; its effect on separations (and hiring) is the analyst's assumption."""

    service_line: StaffedLine = "hcbs"
    regions: Regions = "all"
    increase: Annotated[float, BeforeValidator(_change), Field(gt=0)]
    separation_change: Change
    hiring_change: Change = 0.0
    hourly_wage: Annotated[float, Field(gt=0)] = BLS_AIDE_WAGE


class CareCoordination(Timed):
    """Enrol members (the highest-acuity eligible first in random order) in care coordination."""

    regions: Regions = "all"
    members: Annotated[int, Field(ge=1)] | None = None
    share: Share | None = None
    tier_min: Annotated[int, Field(ge=1, le=4)] = 3
    acute_change: Change
    cost_per_member_month: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _one(self) -> CareCoordination:
        if (self.members is None) == (self.share is None):
            raise ValueError("give either members (a number) or share (of eligible members)")
        return self


class TransitionalCare(Timed):
    """Support after every hospital discharge: lowers 30-day readmission; costed per admission."""

    readmission_change: Change
    cost_per_discharge: Annotated[float, Field(ge=0)]


class HousingSupport(Timed):
    region: str
    units: Annotated[int, Field(ge=1)]
    cost_per_unit_day: Annotated[float, Field(ge=0)] = 0.0


class TravelTimeLimit(Timed):
    minutes: Annotated[float, Field(gt=0)]


SHOCKS: dict[str, type[Item]] = {"referrals": Referrals, "enrolment": Enrolment, "seasonal_surge": SeasonalSurge,
                                 "staff_loss": StaffLoss, "provider_closure": ProviderClosure}
INTERVENTIONS: dict[str, type[Item]] = {
    "redeploy_staff": RedeployStaff, "add_capacity": AddCapacity, "wage_increase": WageIncrease,
    "care_coordination": CareCoordination, "transitional_care": TransitionalCare, "housing_support": HousingSupport,
    "travel_time_limit": TravelTimeLimit,
}


class Policies(Item):
    waitlist_priority: Literal["acuity_first", "first_come"] | None = None


class Failure(Item):
    """When a region counts as failing in a replication (any of the three)."""

    missed_visit_rate: Share = 0.10
    consecutive_weeks: Annotated[int, Field(ge=1)] = 3
    waitlist_ratio: Annotated[float, Field(gt=1)] = 2.0  # waitlist above this multiple of its first-week level
    min_waitlist: Annotated[int, Field(ge=0)] = 10  # ... and above this many members (small regions are noisy)
    provider_exit: bool = True


class Outputs(Item):
    folder: str | None = None  # also write run.json and Parquet here (as `caretwin simulate --out`)


class Scenario(Item):
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")]
    description: str = ""
    extends: str | None = None
    baseline: str = "calibrated"  # "calibrated" (WORKSPACE/calibrated.toml), "defaults", or a parameter file
    horizon_weeks: Annotated[int, Field(ge=1, le=520)] = 26
    replications: Annotated[int, Field(ge=1, le=10_000)] = 100
    seed: Annotated[int, Field(ge=0)] = 0
    shocks: list[dict[str, Any]] = []
    interventions: list[dict[str, Any]] = []
    policies: Policies = Policies()
    parameters: dict[str, Any] = {}
    failure: Failure = Failure()
    outputs: Outputs = Outputs()

    def items(self) -> list[tuple[str, str, int, Item]]:
        """Shocks then interventions as (section, kind, index, validated item)."""
        out = []
        for section, kinds in (("shocks", SHOCKS), ("interventions", INTERVENTIONS)):
            for i, entry in enumerate(getattr(self, section)):
                (kind, body), = entry.items()
                out.append((section, kind, i, kinds[kind].model_validate(body or {})))
        return out

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)


@dataclass
class Located:
    """A validated scenario and where each of its fields came from (for errors found later, e.g. unknown regions)."""

    file: str
    where: dict[tuple, tuple[str, int]]
    scenario: Scenario | None = None

    def problem(self, path: tuple, reason: str) -> Problem:
        file, line = _nearest(self.where, path, self.file)
        return Problem(file, line, ".".join(map(str, path)), reason, unit="line")


def _nearest(where: dict[tuple, tuple[str, int]], path: tuple, default_file: str) -> tuple[str, int | None]:
    for n in range(len(path), -1, -1):
        if path[:n] in where:
            return where[path[:n]]
    return default_file, None


# --------------------------------------------------------------------------------------- reading
def _compose(path: Path) -> tuple[Any, dict[tuple, tuple[str, int]]]:
    """Parse YAML keeping the line of every mapping key and list item."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValidationError([Problem(str(path), None, None, f"cannot read: {exc.strerror}")]) from exc
    try:
        # anchors and aliases are refused: a few nested aliases expand to billions of nodes
        alias = next((e for e in yaml.parse(text, Loader=yaml.SafeLoader) if isinstance(e, yaml.AliasEvent)), None)
        if alias is not None:
            raise ValidationError([Problem(str(path), alias.start_mark.line + 1, None, f"YAML aliases (*{alias.anchor}) "
                                           "are not allowed in scenario files; write the value out", unit="line")])
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValidationError([Problem(str(path), mark.line + 1 if mark else None, None,
                                       f"not valid YAML: {getattr(exc, 'problem', exc)}", unit="line")]) from exc
    where: dict[tuple, tuple[str, int]] = {}
    loader = yaml.SafeLoader("")

    def build(n: yaml.Node, at: tuple) -> Any:
        where.setdefault(at, (str(path), n.start_mark.line + 1))
        if isinstance(n, yaml.MappingNode):
            out = {}
            for k, v in n.value:
                key = loader.construct_object(k, deep=True)
                where[at + (key,)] = (str(path), k.start_mark.line + 1)
                out[key] = build(v, at + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(v, at + (i,)) for i, v in enumerate(n.value)]
        return loader.construct_object(n, deep=True)

    data = build(node, ()) if node is not None else {}
    if not isinstance(data, dict):
        raise ValidationError([Problem(str(path), 1, None, "a scenario is a mapping of settings (name: ..., ...)",
                                       unit="line")])
    return data, where


def _merge(parent: dict, pw: dict, child: dict, cw: dict) -> tuple[dict, dict]:
    """The child's settings over the parent's; lists of shocks and interventions are concatenated."""
    data = dict(parent)
    where = {k: v for k, v in pw.items() if not k or k[0] not in child or k[0] in ("shocks", "interventions")}
    for key, value in child.items():
        if key in ("shocks", "interventions") and isinstance(value, list) and isinstance(parent.get(key), list):
            n = len(parent[key])
            data[key] = parent[key] + value
            where.update({(key, path[1] + n) + path[2:]: v for path, v in cw.items()
                          if len(path) > 1 and path[0] == key and isinstance(path[1], int)})
            where[(key,)] = cw[(key,)]
        elif key in ("policies", "failure", "outputs", "parameters") and isinstance(value, dict) \
                and isinstance(parent.get(key), dict):
            data[key] = {**parent[key], **value}
            where.update({p: v for p, v in cw.items() if p and p[0] == key})
        else:
            data[key] = value
            where.update({p: v for p, v in cw.items() if p and p[0] == key})
    where[()] = cw.get((), pw.get(()))
    return data, where


def _read(path: Path, seen: tuple[Path, ...]) -> tuple[dict, dict]:
    data, where = _compose(path)
    parent = data.get("extends")
    if parent is None:
        return data, where
    if not isinstance(parent, str):
        raise ValidationError([Problem(str(path), where[("extends",)][1], "extends", "expected a file name", unit="line")])
    folder = seen[0].parent  # the first file's folder (WORKSPACE/scenarios/ on the server): nothing outside it is read
    target = (path.parent / parent).resolve()
    if target.parent != folder or target.suffix.lower() not in (".yaml", ".yml"):
        raise ValidationError([Problem(str(path), where[("extends",)][1], "extends",
                                       "expected the name of a .yaml scenario file in the same folder", unit="line")])
    if target in seen:
        raise ValidationError([Problem(str(path), where[("extends",)][1], "extends",
                                       "scenarios extend each other in a cycle: "
                                       + " -> ".join(p.name for p in seen + (target,)), unit="line")])
    if not target.exists():
        raise ValidationError([Problem(str(path), where[("extends",)][1], "extends", f"no such file: {target.name}",
                                       unit="line")])
    pdata, pwhere = _read(target, seen + (target,))
    pdata.pop("name", None)
    return _merge(pdata, pwhere, data, where)


def _unknown(model: type[BaseModel], data: Any, at: tuple, located: Located) -> list[Problem]:
    """Keys a model does not have, each reported with the keys it allows."""
    if not isinstance(data, dict):
        return []
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    problems = []
    for key, value in data.items():
        if key not in fields:
            problems.append(located.problem(at + (key,), f"unknown field; allowed: {', '.join(fields)}"))
            continue
        ann = fields[key].annotation
        for arg in (ann, *typing.get_args(ann)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                problems += _unknown(arg, value, at + (key,), located)
    return problems


def _entries(section: str, kinds: dict[str, type[Item]], data: dict, located: Located) -> list[Problem]:
    problems = []
    entries = data.get(section) or []
    if not isinstance(entries, list):
        return [located.problem((section,), f"expected a list of {section}")]
    for i, entry in enumerate(entries):
        at = (section, i)
        if not isinstance(entry, dict) or len(entry) != 1:
            problems.append(located.problem(at, f"each entry is one of: {', '.join(kinds)} (e.g. - {next(iter(kinds))}: {{...}})"))
            continue
        (kind, body), = entry.items()
        if kind not in kinds:
            problems.append(located.problem(at + (kind,), f"unknown {section[:-1]}; allowed: {', '.join(kinds)}"))
            continue
        unknown = _unknown(kinds[kind], body, at + (kind,), located)
        problems += unknown
        if not unknown:
            problems += _pydantic(kinds[kind], body or {}, at + (kind,), located)
    return problems


def _pydantic(model: type[BaseModel], data: Any, at: tuple, located: Located) -> list[Problem]:
    try:
        model.model_validate(data)
    except PydanticError as exc:
        out = []
        for e in exc.errors():
            if e["type"] == "extra_forbidden":
                continue
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "missing":
                msg = "required"
            out.append(located.problem(at + tuple(e["loc"]), msg))
        return out
    return []


def load_yaml(path: str | Path, model: type[M], *checks: Callable[[dict, Located], list[Problem]]) -> tuple[M, Located]:
    """Read a YAML file (following `extends`) into `model`; every problem is reported at once, located.

    `checks` add problems of their own (e.g. the entries of a list of one-key mappings).
    """
    path = Path(path)
    data, where = _read(path.resolve(), (path.resolve(),))
    where = {k: (str(path) if f == str(path.resolve()) else f, line) for k, (f, line) in where.items()}
    located = Located(str(path), where)
    problems = _unknown(model, data, (), located)
    for check in checks:
        problems += check(data, located)
    problems += _pydantic(model, data, (), located)
    if problems:
        raise ValidationError(problems)
    return model.model_validate(data), located


def load_scenario(path: str | Path) -> Located:
    """Read, merge (`extends`) and validate one scenario file; every problem found is reported at once."""
    scenario, located = load_yaml(path, Scenario,
                                  lambda d, loc: _entries("shocks", SHOCKS, d, loc),
                                  lambda d, loc: _entries("interventions", INTERVENTIONS, d, loc))
    located.scenario = scenario
    return located
