"""Judgment standards: the shipped YAML rules and the plain-Python evaluator."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.standards import (
    FactError,
    JudgmentRules,
    Recommendation,
    StandardError,
    judgment_rules,
    load_standard,
)

RULE_IDS = [
    "passenger_overcapacity",
    "serious_speeding",
    "hazmat_safety_breach",
    "forged_documents",
    "violent_resistance",
    "training_intermediary_fraud",
    "training_intermediary_unlicensed",
    "training_intermediary_false_advertising",
    "training_intermediary_price_fraud",
]


@pytest.fixture(scope="module")
def rules() -> JudgmentRules:
    return judgment_rules()


def bus(passengers: int, seats: int, category: str = "passenger_bus") -> dict:
    return {
        "vehicle_category": category,
        "service_type": "passenger_transport",
        "passengers": passengers,
        "rated_seats": seats,
    }


def speeding(speed: float, limit: float, road: str = "expressway") -> dict:
    return {
        "service_type": "passenger_transport",
        "road_type": road,
        "speed_kmh": speed,
        "speed_limit_kmh": limit,
    }


def ids(recs: list[Recommendation]) -> list[str]:
    return [r.rule_id for r in recs]


# --------------------------------------------------------------------------- shipped rules


def test_shipped_document_loads_with_expected_rules(rules):
    assert [r.id for r in rules.rules] == RULE_IDS
    assert rules.version == 1
    assert "自动" in rules.note and "automatic" in rules.note


def test_every_rule_names_basis_and_threshold_source():
    doc = load_standard("judgment")
    compiled = judgment_rules()
    for raw in doc["rules"]:
        rule = compiled.rule(raw["id"])
        assert raw["recommendation"]["legal_basis"].strip(), raw["id"]
        assert "threshold_source" in raw, raw["id"]
        source = raw["threshold_source"]
        if source is None:
            assert not _has_numeric_threshold(raw["conditions"]), raw["id"]
        else:
            assert isinstance(source, str) and "configurable" in source.lower(), raw["id"]
        assert rule.route in ("police", "market_regulation")


def _has_numeric_threshold(node: dict) -> bool:
    for kind in ("all", "any"):
        if kind in node:
            return any(_has_numeric_threshold(c) for c in node[kind])
    return "measure" in node or any(op in node for op in ("gt", "gte", "lt", "lte"))


def test_declared_facts_are_bilingual(rules):
    for spec in rules.facts.values():
        assert spec.description and spec.description_en
        if spec.type == "enum":
            assert spec.values


def test_load_standard_returns_a_fresh_copy():
    first = load_standard("judgment")
    first["rules"].clear()
    assert load_standard("judgment")["rules"]


# --------------------------------------------------------------------------- overcapacity


def test_bus_26_percent_over_recommends_dangerous_driving(rules):
    recs = rules.evaluate(bus(63, 50))
    assert len(recs) == 1
    rec = recs[0]
    assert rec.rule_id == "passenger_overcapacity"
    assert rec.route == "police"
    assert rec.suspected_offence == "危险驾驶罪"
    assert "133-1" in rec.legal_basis and "第一百三十三条之一" in rec.legal_basis
    assert "excess_ratio(passengers=63, rated_seats=50) = 0.26 > 0.2" in rec.explanation
    assert rec.threshold_source
    as_dict = rec.to_dict()
    assert as_dict["rule_id"] == "passenger_overcapacity"
    assert as_dict["explanation"] == rec.explanation
    json.dumps(as_dict, ensure_ascii=False)


def test_bus_16_percent_over_is_no_recommendation(rules):
    assert rules.evaluate(bus(58, 50)) == []


def test_exactly_20_percent_over_is_not_more_than_20_percent(rules):
    assert rules.evaluate(bus(60, 50)) == []
    assert ids(rules.evaluate(bus(61, 50))) == ["passenger_overcapacity"]


def test_small_passenger_matches_via_fixed_number(rules):
    recs = rules.evaluate(bus(14, 7, category="small_passenger"))
    assert ids(recs) == ["passenger_overcapacity"]
    assert "excess(passengers=14, rated_seats=7) = 7 >= 7" in recs[0].explanation


def test_overcapacity_needs_passenger_service(rules):
    facts = bus(63, 50) | {"service_type": "non_commercial"}
    assert rules.evaluate(facts) == []
    assert rules.evaluate(bus(63, 50, category="freight_truck")) == []


@given(
    passengers=st.integers(min_value=0, max_value=200),
    seats=st.integers(min_value=5, max_value=60),
    category=st.sampled_from(["passenger_bus", "tour_bus", "school_bus", "small_passenger"]),
)
def test_overcapacity_matches_iff_arithmetic_holds(passengers, seats, category):
    over = passengers - seats
    expected = 5 * over > seats  # (p - s) / s > 0.20, in integers
    if category == "small_passenger":
        expected = expected or over >= 7
    matched = "passenger_overcapacity" in ids(
        judgment_rules().evaluate(bus(passengers, seats, category))
    )
    assert matched == expected


# --------------------------------------------------------------------------- speeding


def test_speeding_thresholds(rules):
    assert rules.evaluate(speeding(120, 100)) == []
    assert rules.evaluate(speeding(150, 100)) == []  # exactly 50% is not "more than"
    recs = rules.evaluate(speeding(160, 100))
    assert ids(recs) == ["serious_speeding"]
    assert "excess_ratio(speed_kmh=160, speed_limit_kmh=100) = 0.6 > 0.5" in recs[0].explanation
    assert "133-1" in recs[0].legal_basis


def test_speeding_on_urban_road_is_not_matched(rules):
    assert rules.evaluate(speeding(160, 100, road="urban_road")) == []


def test_speeding_accepts_decimal_speeds(rules):
    assert ids(rules.evaluate(speeding(150.5, 100.0, road="highway"))) == ["serious_speeding"]


# --------------------------------------------------------------------------- boolean rules


def test_hazmat_needs_both_breach_and_danger(rules):
    assert rules.evaluate({"hazmat_safety_breach": True}) == []
    assert rules.evaluate({"hazmat_safety_breach": True, "endangers_public_safety": False}) == []
    recs = rules.evaluate({"hazmat_safety_breach": True, "endangers_public_safety": True})
    assert ids(recs) == ["hazmat_safety_breach"]
    assert recs[0].threshold_source is None


def test_forged_document_art_280(rules):
    recs = rules.evaluate({"forged_or_altered_document": True})
    assert ids(recs) == ["forged_documents"]
    assert "280" in recs[0].legal_basis
    assert recs[0].suspected_offence == "伪造、变造、买卖国家机关公文、证件、印章罪"
    assert rules.evaluate({"forged_or_altered_document": False}) == []


def test_violent_resistance_art_277(rules):
    recs = rules.evaluate({"violent_resistance": True})
    assert ids(recs) == ["violent_resistance"]
    assert recs[0].suspected_offence == "妨害公务罪"
    assert "277" in recs[0].legal_basis


def test_intermediary_fraud_and_unlicensed_give_two_routes(rules):
    recs = rules.evaluate(
        {"training_intermediary": True, "fraud_amount_yuan": 5000, "unlicensed_business": True}
    )
    by_id = {r.rule_id: r for r in recs}
    assert set(by_id) == {"training_intermediary_fraud", "training_intermediary_unlicensed"}
    fraud = by_id["training_intermediary_fraud"]
    assert fraud.route == "police"
    assert fraud.suspected_offence == "诈骗罪"
    assert "266" in fraud.legal_basis
    assert "fraud_amount_yuan = 5000 >= 3000" in fraud.explanation
    unlicensed = by_id["training_intermediary_unlicensed"]
    assert unlicensed.route == "market_regulation"
    assert "无证无照经营查处办法" in unlicensed.legal_basis


def test_intermediary_small_fraud_and_other_market_rules(rules):
    assert rules.evaluate({"training_intermediary": True, "fraud_amount_yuan": 2999.99}) == []
    recs = rules.evaluate(
        {"training_intermediary": True, "false_advertising": True, "price_fraud": True}
    )
    assert ids(recs) == [
        "training_intermediary_false_advertising",
        "training_intermediary_price_fraud",
    ]
    assert all(r.route == "market_regulation" for r in recs)
    assert "价格法" in recs[1].legal_basis


def test_intermediary_flag_is_required(rules):
    assert rules.evaluate({"fraud_amount_yuan": 50000, "unlicensed_business": True}) == []


# --------------------------------------------------------------------------- facts


def test_no_facts_no_recommendations(rules):
    assert rules.evaluate({}) == []


def test_none_means_unknown(rules):
    assert rules.evaluate(bus(63, 50) | {"road_type": None}) != []
    assert rules.evaluate(bus(63, 50) | {"passengers": None}) == []


def test_wrong_fact_type_is_named(rules):
    with pytest.raises(FactError) as info:
        rules.evaluate(bus(63, 50) | {"passengers": "many"})
    assert set(info.value.errors) == {"passengers"}
    assert "passengers" in str(info.value)


def test_every_bad_fact_is_reported(rules):
    facts = {
        "passengers": True,  # a bool is not an integer
        "rated_seats": 0,  # below the declared minimum
        "vehicle_category": "spaceship",
        "violent_resistance": "yes",
        "speed_kmh": float("nan"),
    }
    with pytest.raises(FactError) as info:
        rules.evaluate(facts)
    assert set(info.value.errors) == set(facts)


def test_unknown_fact_is_an_error(rules):
    with pytest.raises(FactError) as info:
        rules.evaluate(bus(63, 50) | {"pasengers": 63})
    assert info.value.errors == {"pasengers": ["unknown fact"]}


def test_missing_facts_hints(rules):
    hints = rules.missing_facts({"vehicle_category": "passenger_bus", "passengers": 63})
    assert hints["passenger_overcapacity"] == ["service_type", "rated_seats"]
    assert hints["violent_resistance"] == ["violent_resistance"]
    # decided rules drop out: matched, or ruled out by a false fact
    hints = rules.missing_facts(bus(63, 50) | {"training_intermediary": False})
    assert "passenger_overcapacity" not in hints
    assert not any(k.startswith("training_intermediary") for k in hints)


# --------------------------------------------------------------------------- malformed documents


def shipped() -> dict:
    return copy.deepcopy(load_standard("judgment"))


def first_leaf(doc: dict, rule_id: str) -> dict:
    rule = next(r for r in doc["rules"] if r["id"] == rule_id)
    return rule["conditions"]["all"][0]


def test_unknown_operator_names_rule():
    doc = shipped()
    leaf = first_leaf(doc, "violent_resistance")
    leaf["is"] = leaf.pop("equals")
    with pytest.raises(StandardError, match=r"violent_resistance.*unknown operator 'is'"):
        JudgmentRules.load(doc)


def test_undeclared_fact_names_rule():
    doc = shipped()
    first_leaf(doc, "forged_documents")["fact"] = "forged_document"
    with pytest.raises(StandardError, match=r"forged_documents.*'forged_document' is not declared"):
        JudgmentRules.load(doc)


def test_duplicate_rule_id_is_rejected():
    doc = shipped()
    doc["rules"].append(copy.deepcopy(doc["rules"][0]))
    with pytest.raises(StandardError, match=r"passenger_overcapacity.*duplicate"):
        JudgmentRules.load(doc)


def test_unknown_measure_names_rule():
    doc = shipped()
    rule = next(r for r in doc["rules"] if r["id"] == "serious_speeding")
    rule["conditions"]["all"][2]["measure"] = "excess_percent"
    with pytest.raises(StandardError, match=r"serious_speeding.*unknown measure 'excess_percent'"):
        JudgmentRules.load(doc)


@pytest.mark.parametrize(
    "field", ["route", "suspected_offence", "suspected_offence_en", "legal_basis"]
)
def test_missing_recommendation_field_names_rule(field):
    doc = shipped()
    del doc["rules"][2]["recommendation"][field]
    with pytest.raises(StandardError, match=rf"hazmat_safety_breach.*recommendation\.{field}"):
        JudgmentRules.load(doc)


def test_bad_route_and_enum_value_are_rejected():
    doc = shipped()
    doc["rules"][4]["recommendation"]["route"] = "procuratorate"
    with pytest.raises(StandardError, match=r"violent_resistance.*route"):
        JudgmentRules.load(doc)
    doc = shipped()
    doc["rules"][0]["conditions"]["all"][0]["in"].append("passenger_buss")
    with pytest.raises(StandardError, match=r"passenger_overcapacity.*passenger_buss"):
        JudgmentRules.load(doc)


def test_numeric_op_on_boolean_fact_is_rejected():
    doc = shipped()
    first_leaf(doc, "violent_resistance").update({"gte": 1})
    del first_leaf(doc, "violent_resistance")["equals"]
    with pytest.raises(StandardError, match=r"violent_resistance.*gte needs an integer or number"):
        JudgmentRules.load(doc)


def test_threshold_source_required_for_figures():
    doc = shipped()
    doc["rules"][5]["threshold_source"] = None
    with pytest.raises(StandardError, match=r"training_intermediary_fraud.*threshold_source"):
        JudgmentRules.load(doc)
    doc = shipped()
    del doc["rules"][3]["threshold_source"]
    with pytest.raises(StandardError, match=r"forged_documents.*threshold_source"):
        JudgmentRules.load(doc)


def test_changed_threshold_takes_effect():
    doc = shipped()
    rule = next(r for r in doc["rules"] if r["id"] == "training_intermediary_fraud")
    rule["conditions"]["all"][1]["gte"] = 6000
    zhejiang = JudgmentRules.load(doc)
    facts = {"training_intermediary": True, "fraud_amount_yuan": 5000}
    assert zhejiang.evaluate(facts) == []
    assert ids(judgment_rules().evaluate(facts)) == ["training_intermediary_fraud"]
