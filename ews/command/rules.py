"""A region's report-routing rules: the ``routing:`` block of ``regions/<id>.yaml``, validated and frozen.

Every key is optional; what is not given keeps the built-in value of :mod:`ews.command.lexicon`::

    routing:
      rescue:
        unit: Tagana Kota Surabaya
        deadline_minutes: 10
        extra_keywords: [perahu karet, terjebak lumpur]   # added to the built-in keywords
      relief:
        drop_keywords: [posko]                            # built-in keywords this region does not want
      infrastructure:
        keywords: [jalan, jembatan, tanggul, listrik]     # replaces the built-in keywords
      unclassified:
        unit: Operator piket Pusdalops
        deadline_minutes: 20

The model lives here, beside the rules that use it, so that :mod:`ews.config` imports it and not the other
way round (the command package imports nothing from the configuration loader, which reads files).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ews.command.lexicon import DEFAULT_DEADLINE_MINUTES, DEFAULT_KEYWORDS, DEFAULT_UNITS, PRECEDENCE, Category
from ews.command.text import normal_form

_MAX_KEYWORD_WORDS = 6
MAX_DEADLINE_MINUTES = 7 * 24 * 60
"""The longest response deadline a region may give (a week): a longer one is a typing slip."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Keyword = Annotated[str, Field(min_length=1, max_length=80)]
Unit = Annotated[str, Field(min_length=1, max_length=120)]
Minutes = Annotated[int, Field(ge=1, le=MAX_DEADLINE_MINUTES)]


def _check_keywords(value: tuple[str, ...]) -> tuple[str, ...]:
    for keyword in value:
        words = normal_form(keyword).split()
        if not words:
            raise ValueError(f"keyword {keyword!r} has no letters or digits; write the word people type")
        if len(words) > _MAX_KEYWORD_WORDS:
            raise ValueError(
                f"keyword {keyword!r} has {len(words)} words; a keyword is a word or a phrase of at most "
                f"{_MAX_KEYWORD_WORDS}, give its telling part"
            )
    return value


class OperatorRules(_Frozen):
    """The duty operator, who receives every report that no keyword routes (``routing.unclassified``)."""

    unit: Unit = DEFAULT_UNITS[Category.UNCLASSIFIED]
    deadline_minutes: Minutes = DEFAULT_DEADLINE_MINUTES[Category.UNCLASSIFIED]

    @property
    def deadline(self) -> timedelta:
        """``deadline_minutes`` as a duration."""
        return timedelta(minutes=self.deadline_minutes)


class CategoryRules(_Frozen):
    """One category of :class:`RoutingRules`: who acts, by when, and the keywords that select it.

    ``keywords`` replaces the built-in list; ``extra_keywords`` adds to it; ``drop_keywords`` removes
    built-in ones (each must be one). Give ``keywords`` or ``extra_keywords``, not both.
    """

    unit: Unit
    deadline_minutes: Minutes
    keywords: tuple[Keyword, ...] | None = None
    extra_keywords: tuple[Keyword, ...] = ()
    drop_keywords: tuple[Keyword, ...] = ()

    @field_validator("keywords", "extra_keywords", "drop_keywords", mode="after")
    @classmethod
    def _readable(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else _check_keywords(value)

    @model_validator(mode="after")
    def _replace_or_add(self) -> CategoryRules:
        if self.keywords is not None and self.extra_keywords:
            raise ValueError(
                "give keywords (replaces the built-in list) or extra_keywords (adds to it), not both; "
                "to replace the list and add words, put them all under keywords"
            )
        return self

    @property
    def deadline(self) -> timedelta:
        """``deadline_minutes`` as a duration."""
        return timedelta(minutes=self.deadline_minutes)


def _category_default(category: Category) -> CategoryRules:
    return CategoryRules(unit=DEFAULT_UNITS[category], deadline_minutes=DEFAULT_DEADLINE_MINUTES[category])


class RoutingRules(_Frozen):
    """How inbound reports are routed in a region: per category a unit, a response deadline and keywords.

    See :func:`ews.command.routing.report_routing` for how they are applied and docs/routing.md for the
    built-in keywords. A category given in part keeps its built-in unit and deadline.
    """

    rescue: CategoryRules = _category_default(Category.RESCUE)
    health: CategoryRules = _category_default(Category.HEALTH)
    relief: CategoryRules = _category_default(Category.RELIEF)
    infrastructure: CategoryRules = _category_default(Category.INFRASTRUCTURE)
    unclassified: OperatorRules = OperatorRules()

    @model_validator(mode="before")
    @classmethod
    def _defaults_per_category(cls, data: object) -> object:
        # A category given in part ({deadline_minutes: 10}) keeps its own unit and deadline, which differ per
        # category and so cannot be field defaults of CategoryRules.
        if not isinstance(data, Mapping):
            return data
        merged = dict(data)
        for category in PRECEDENCE:
            given = merged.get(category.value)
            if isinstance(given, Mapping):
                merged[category.value] = {
                    "unit": DEFAULT_UNITS[category],
                    "deadline_minutes": DEFAULT_DEADLINE_MINUTES[category],
                    **given,
                }
        return merged

    @model_validator(mode="after")
    def _keywords_consistent(self) -> RoutingRules:
        owner: dict[str, Category] = {}
        for category in PRECEDENCE:
            rules = self.category(category)
            base = DEFAULT_KEYWORDS[category] if rules.keywords is None else rules.keywords
            listed = {normal_form(k) for k in base}
            unknown = [k for k in rules.drop_keywords if normal_form(k) not in listed]
            if unknown:
                where = "built-in" if rules.keywords is None else "given"
                raise ValueError(
                    f"{category.value}.drop_keywords: {', '.join(map(repr, unknown))} not among the {where} "
                    f"{category.value} keywords (docs/routing.md lists the built-in ones); check the spelling"
                )
            keywords = self.keywords(category)
            if not keywords:
                raise ValueError(
                    f"{category.value}: no keywords left, so nothing would ever be routed to "
                    f"{rules.unit}; give at least one under keywords"
                )
            for keyword in keywords:
                key = normal_form(keyword)
                if key in owner and owner[key] != category:
                    raise ValueError(
                        f"{owner[key].value} and {category.value} both have the keyword {key!r}; a keyword "
                        "routes to one category: drop it from one (drop_keywords) or make it a longer phrase"
                    )
                owner[key] = category
        return self

    def category(self, category: Category) -> CategoryRules:
        """The rules of one category other than :data:`Category.UNCLASSIFIED`."""
        if category is Category.UNCLASSIFIED:
            raise ValueError("the unclassified category has no keywords; use RoutingRules.unclassified")
        rules: CategoryRules = getattr(self, category.value)
        return rules

    def keywords(self, category: Category) -> tuple[str, ...]:
        """The keywords in force for ``category``: built-in or replaced, plus extra, minus dropped, as written."""
        rules = self.category(category)
        base = DEFAULT_KEYWORDS[category] if rules.keywords is None else rules.keywords
        dropped = {normal_form(k) for k in rules.drop_keywords}
        seen: set[str] = set()
        result: list[str] = []
        for keyword in (*base, *rules.extra_keywords):
            key = normal_form(keyword)
            if key not in dropped and key not in seen:
                seen.add(key)
                result.append(keyword)
        return tuple(result)

    def unit(self, category: Category) -> str:
        """Who acts on reports of ``category``."""
        return self.unclassified.unit if category is Category.UNCLASSIFIED else self.category(category).unit

    def deadline(self, category: Category) -> timedelta:
        """The response deadline of ``category``."""
        if category is Category.UNCLASSIFIED:
            return self.unclassified.deadline
        return self.category(category).deadline
