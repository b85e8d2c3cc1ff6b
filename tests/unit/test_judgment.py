"""Judgment standards: the shipped YAML rules and the plain-Python evaluator."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.standards import (
    PARAMETERS_ENV,
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
    "owner_or_manager_responsible",
    "forged_state_certificate",
    "forged_vehicle_documents",
    "forged_identity_certificate",
    "use_of_forged_identity_certificate",
    "violent_resistance",
    "training_intermediary_fraud",
    "training_intermediary_unlicensed",
    "training_intermediary_false_advertising",
    "training_intermediary_price_fraud",
]
# S13: MPS《严重超员、严重超速危险驾驶刑事案件立案标准（试行）》 (official text not located;
# published copies agree); GA 802 vehicle sizes; S17: 2007 two-courts interpretation art. 2.


@pytest.fixture(scope="module")
def rules() -> JudgmentRules:
    return judgment_rules()


def bus(passengers: int, seats: int, category: str = "passenger_bus", **more) -> dict:
    return {
        "vehicle_category": category,
        "service_type": "passenger_transport",
        "passengers": passengers,
        "rated_seats": seats,
        **more,
    }


def speeding(speed: float, limit: float, road: str = "expressway", **more) -> dict:
    return {
        "service_type": "passenger_transport",
        "road_type": road,
        "speed_kmh": speed,
        "speed_limit_kmh": limit,
        **more,
    }


def ids(recs: list[Recommendation]) -> list[str]:
    return [r.rule_id for r in recs]


# --------------------------------------------------------------------------- shipped rules


def test_shipped_document_loads_with_expected_rules(rules):
    assert [r.id for r in rules.rules] == RULE_IDS
    assert rules.version == 1
    assert "自动" in rules.note and "automatic" in rules.note


def test_every_rule_names_basis_and_threshold_source():
    """Each figure names its document and says whether its official text was read."""
    doc = load_standard("judgment")
    compiled = judgment_rules()
    for raw in doc["rules"]:
        rule = compiled.rule(raw["id"])
        assert raw["recommendation"]["legal_basis"].strip(), raw["id"]
        assert "threshold_source" in raw, raw["id"]
        source = raw["threshold_source"]
        if source is None:
            assert not rule.has_threshold, raw["id"]
        else:
            assert "NOT LOCATED" in source or "read in full" in source, raw["id"]
            assert "两高一部" not in source, raw["id"]   # the 2023 opinion is on drunk driving
        assert rule.route in ("police", "market_regulation")


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
# S13 art. 1: large >= 50% or >= 15 people over; medium >= 80% or >= 10; small/micro
# >= 100% or >= 7 ("以上" includes the number). Size: GA 802 (>= 20 seats or >= 6 m: large;
# 10-19 seats: medium; <= 9: small).


def test_50_seat_bus_with_63_people_is_not_a_crime(rules):
    """26% and 13 people over a large bus: under both S13 thresholds (the old 20% rule
    recommended a referral here — the administrative tier of road traffic law art. 92)."""
    assert rules.evaluate(bus(63, 50)) == []
    assert rules.evaluate(bus(64, 50)) == []


def test_50_seat_bus_with_65_people_is_serious_over_capacity(rules):
    recs = rules.evaluate(bus(65, 50))
    assert ids(recs) == ["passenger_overcapacity"]
    rec = recs[0]
    assert rec.route == "police" and rec.suspected_offence == "危险驾驶罪"
    assert "133-1" in rec.legal_basis and "第一百三十三条之一" in rec.legal_basis
    assert "excess(passengers=65, rated_seats=50) = 15 >= 15" in rec.explanation
    assert ("vehicle_size = large (derived: rated_seats = 50 >= 20; not given: "
            "vehicle_length_m)") in rec.explanation
    assert "NOT LOCATED" in rec.threshold_source
    as_dict = rec.to_dict()
    assert as_dict["rule_id"] == "passenger_overcapacity"
    assert as_dict["explanation"] == rec.explanation
    json.dumps(as_dict, ensure_ascii=False)


def test_large_bus_percentage_threshold_includes_the_number(rules):
    assert rules.evaluate(bus(29, 20)) == []                         # 45%, 9 people
    recs = rules.evaluate(bus(30, 20))                                # exactly 50%
    assert "excess_ratio(passengers=30, rated_seats=20) = 0.5 >= 0.5" in recs[0].explanation


def test_medium_bus_thresholds(rules):
    assert rules.evaluate(bus(24, 15)) == []                          # 60%, 9 people
    assert ids(rules.evaluate(bus(25, 15))) == ["passenger_overcapacity"]   # 10 people
    assert rules.evaluate(bus(17, 10)) == []                          # 70%, 7 people
    recs = rules.evaluate(bus(18, 10))                                # 80%
    assert "excess_ratio(passengers=18, rated_seats=10) = 0.8 >= 0.8" in recs[0].explanation


def test_small_vehicle_thresholds(rules):
    small = "small_passenger"
    assert rules.evaluate(bus(9, 5, small)) == []                     # 80%, 4 people
    assert ids(rules.evaluate(bus(10, 5, small))) == ["passenger_overcapacity"]  # 100%
    assert rules.evaluate(bus(15, 9, small)) == []                    # 67%, 6 people
    recs = rules.evaluate(bus(16, 9, small))                          # 7 people
    assert "excess(passengers=16, rated_seats=9) = 7 >= 7" in recs[0].explanation


def test_a_bus_6_m_long_is_large_whatever_its_seats(rules):
    """GA 802: length >= 6 m makes a large passenger vehicle; 15 seats + 8 over = 53%."""
    assert rules.evaluate(bus(23, 15)) == []                          # taken as medium
    recs = rules.evaluate(bus(23, 15, vehicle_length_m=7.2))
    assert ids(recs) == ["passenger_overcapacity"]
    assert "vehicle_size = large (derived: vehicle_length_m = 7.2 >= 6)" in recs[0].explanation


def test_size_from_the_vehicle_licence_wins_over_the_derivation(rules):
    recs = rules.evaluate(bus(23, 15, vehicle_size="large"))          # 53%: large only
    assert "vehicle_size = large" in recs[0].explanation               # given, not derived
    assert rules.evaluate(bus(23, 15, vehicle_size="medium")) == []


def test_overcapacity_needs_passenger_service(rules):
    facts = bus(80, 50) | {"service_type": "non_commercial"}
    assert rules.evaluate(facts) == []
    assert rules.evaluate(bus(80, 50, category="freight_truck")) == []


@given(
    passengers=st.integers(min_value=0, max_value=200),
    seats=st.integers(min_value=1, max_value=60),
    category=st.sampled_from(["passenger_bus", "tour_bus", "school_bus", "small_passenger"]),
)
def test_overcapacity_matches_iff_s13_arithmetic_holds(passengers, seats, category):
    over = passengers - seats
    if seats >= 20:
        expected = 2 * over >= seats or over >= 15           # 50% or 15
    elif seats >= 10:
        expected = 5 * over >= 4 * seats or over >= 10       # 80% or 10
    else:
        expected = over >= seats or over >= 7                # 100% or 7
    matched = "passenger_overcapacity" in ids(
        judgment_rules().evaluate(bus(passengers, seats, category))
    )
    assert matched == expected


# --------------------------------------------------------------------------- speeding
# S13 art. 2: expressway / urban expressway >= 50% and >= 90 km/h; other roads >= 100% and
# >= 60 km/h; listed sections, manoeuvres and weather >= 50% and >= 30 km/h.


def test_56_percent_over_on_a_national_highway_is_not_a_crime(rules):
    assert rules.evaluate(speeding(78, 50, road="highway")) == []
    plain = speeding(78, 50, road="highway", road_section="ordinary", weather_or_surface="normal")
    assert rules.evaluate(plain) == []
    assert "serious_speeding" not in rules.missing_facts(plain)       # decided: not serious


def test_101_percent_over_at_121_kmh_is_serious_speeding(rules):
    recs = rules.evaluate(speeding(121, 60, road="highway"))
    assert ids(recs) == ["serious_speeding"]
    assert "excess_ratio(speed_kmh=121, speed_limit_kmh=60) = 1.0167 >= 1" in recs[0].explanation
    assert "speed_kmh = 121 >= 60" in recs[0].explanation
    assert "133-1" in recs[0].legal_basis


def test_expressway_tier_includes_50_percent_exactly(rules):
    assert rules.evaluate(speeding(149, 100)) == []
    recs = rules.evaluate(speeding(150, 100))
    assert "excess_ratio(speed_kmh=150, speed_limit_kmh=100) = 0.5 >= 0.5" in recs[0].explanation


def test_urban_expressway_is_in_the_50_percent_tier_with_90_kmh(rules):
    assert ids(rules.evaluate(speeding(90, 60, road="urban_expressway"))) == ["serious_speeding"]
    assert rules.evaluate(speeding(80, 50, road="urban_expressway")) == []   # 60%, < 90 km/h
    assert rules.evaluate(speeding(90, 60, road="urban_road")) == []         # only 50%


def test_other_roads_need_60_kmh_as_well(rules):
    assert rules.evaluate(speeding(50, 25, road="rural_road")) == []         # 100%, 50 km/h
    assert ids(rules.evaluate(speeding(60, 30, road="rural_road"))) == ["serious_speeding"]


@pytest.mark.parametrize("condition", [
    {"road_section": "rail_crossing"}, {"road_section": "sharp_bend"},
    {"road_section": "narrow_bridge"}, {"road_section": "continuous_descent"},
    {"weather_or_surface": "low_visibility_weather"}, {"weather_or_surface": "ice_or_snow_road"},
])
def test_special_sections_and_weather_need_50_percent_and_30_kmh(rules, condition):
    assert ids(rules.evaluate(speeding(30, 20, road="urban_road", **condition))) == [
        "serious_speeding"]
    assert rules.evaluate(speeding(29, 19, road="urban_road", **condition)) == []  # < 30 km/h
    assert rules.evaluate(speeding(29, 20, road="urban_road", **condition)) == []  # 45%


def test_speeding_accepts_decimal_speeds(rules):
    assert ids(rules.evaluate(speeding(120.5, 60.0, road="highway"))) == ["serious_speeding"]


# --------------------------------------------------------------------------- owners (¶2)


def test_owner_or_manager_directly_responsible(rules):
    """Art. 133-1 ¶2; S13 art. 3: the company that made the driver overload its bus."""
    facts = bus(65, 50, owner_or_manager_responsible=True)
    recs = {r.rule_id: r for r in rules.evaluate(facts)}
    assert set(recs) == {"passenger_overcapacity", "owner_or_manager_responsible"}
    owner = recs["owner_or_manager_responsible"]
    assert "第二款" in owner.legal_basis and "133-1 ¶2" in owner.legal_basis
    assert "passenger_overcapacity: excess(passengers=65, rated_seats=50) = 15 >= 15" in \
        owner.explanation
    # responsible, but the driver's conduct does not reach the threshold: nothing
    assert rules.evaluate(bus(63, 50, owner_or_manager_responsible=True)) == []
    hazmat = {"owner_or_manager_responsible": True, "hazmat_safety_breach": True,
              "endangers_public_safety": True}
    assert ids(rules.evaluate(hazmat)) == ["hazmat_safety_breach",
                                           "owner_or_manager_responsible"]


# --------------------------------------------------------------------------- boolean rules


def test_hazmat_needs_both_breach_and_danger(rules):
    assert rules.evaluate({"hazmat_safety_breach": True}) == []
    assert rules.evaluate({"hazmat_safety_breach": True, "endangers_public_safety": False}) == []
    recs = rules.evaluate({"hazmat_safety_breach": True, "endangers_public_safety": True})
    assert ids(recs) == ["hazmat_safety_breach"]
    assert recs[0].threshold_source is None


@pytest.mark.parametrize("kind", ["road_transport_permit", "operating_licence",
                                  "qualification_certificate"])
def test_forging_a_transport_certificate_is_art_280_para_1(rules, kind):
    recs = rules.evaluate({"document_type": kind, "document_act": "forged"})
    assert ids(recs) == ["forged_state_certificate"]
    assert recs[0].suspected_offence == "伪造、变造、买卖国家机关公文、证件、印章罪"
    assert "第二百八十条第一款" in recs[0].legal_basis


def test_holding_or_using_a_forged_permit_is_not_itself_the_offence(rules):
    for act in ("held", "used"):
        assert rules.evaluate({"document_type": "road_transport_permit",
                               "document_act": act}) == []


def test_vehicle_licences_need_three_in_total(rules):
    """S17 (2007 interpretation) art. 2: three or more vehicle licences or registration
    certificates."""
    two = {"document_type": "vehicle_licence", "document_act": "bought_or_sold",
           "document_count": 2}
    assert rules.evaluate(two) == []
    recs = rules.evaluate(two | {"document_count": 3})
    assert ids(recs) == ["forged_vehicle_documents"]
    assert "document_count = 3 >= 3" in recs[0].explanation
    assert "read in full" in recs[0].threshold_source


def test_driving_licence_is_an_identity_certificate(rules):
    """Art. 280 ¶3 (forging / trading), art. 280-1 (use, only if serious)."""
    recs = rules.evaluate({"document_type": "driving_licence", "document_act": "altered"})
    assert ids(recs) == ["forged_identity_certificate"]
    assert recs[0].suspected_offence == "伪造、变造、买卖身份证件罪"
    assert "第二百八十条第三款" in recs[0].legal_basis
    used = {"document_type": "driving_licence", "document_act": "used"}
    assert rules.evaluate(used) == []
    assert rules.evaluate(used | {"identity_use_serious": False}) == []
    recs = rules.evaluate(used | {"identity_use_serious": True})
    assert ids(recs) == ["use_of_forged_identity_certificate"]
    assert "第二百八十条之一" in recs[0].legal_basis


def test_retired_fact_says_what_replaced_it(rules):
    with pytest.raises(FactError) as info:
        rules.evaluate({"forged_or_altered_document": True})
    assert "document_type and document_act" in info.value.errors[
        "forged_or_altered_document"][0]


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
    assert "fraud_amount_yuan = 5000 >= 3000 (fraud_relatively_large_yuan)" in fraud.explanation
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
    assert rules.evaluate(bus(65, 50) | {"road_type": None}) != []
    assert rules.evaluate(bus(65, 50) | {"passengers": None}) == []


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
    assert hints["passenger_overcapacity"] == ["service_type", "vehicle_size", "rated_seats"]
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
    first_leaf(doc, "forged_state_certificate")["fact"] = "forged_document"
    with pytest.raises(StandardError,
                       match=r"forged_state_certificate.*'forged_document' is not declared"):
        JudgmentRules.load(doc)


def test_duplicate_rule_id_is_rejected():
    doc = shipped()
    doc["rules"].append(copy.deepcopy(doc["rules"][0]))
    with pytest.raises(StandardError, match=r"passenger_overcapacity.*duplicate"):
        JudgmentRules.load(doc)


def test_unknown_measure_names_rule():
    doc = shipped()
    rule = next(r for r in doc["rules"] if r["id"] == "serious_speeding")
    rule["conditions"]["all"][1]["any"][0]["all"][1]["measure"] = "excess_percent"
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
    by_id(doc, "violent_resistance")["recommendation"]["route"] = "procuratorate"
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
    by_id(doc, "training_intermediary_fraud")["threshold_source"] = None
    with pytest.raises(StandardError, match=r"training_intermediary_fraud.*threshold_source"):
        JudgmentRules.load(doc)
    doc = shipped()
    by_id(doc, "owner_or_manager_responsible")["threshold_source"] = None  # figures by {rule:}
    with pytest.raises(StandardError, match=r"owner_or_manager_responsible.*threshold_source"):
        JudgmentRules.load(doc)
    doc = shipped()
    del by_id(doc, "forged_state_certificate")["threshold_source"]
    with pytest.raises(StandardError, match=r"forged_state_certificate.*threshold_source"):
        JudgmentRules.load(doc)


def by_id(doc: dict, rule_id: str) -> dict:
    return next(r for r in doc["rules"] if r["id"] == rule_id)


def test_fraud_threshold_is_a_parameter_within_the_national_band():
    """法释〔2011〕7号 art. 1: each province fixes "relatively large" within 3,000-10,000."""
    facts = {"training_intermediary": True, "fraud_amount_yuan": 5000}
    assert ids(judgment_rules().evaluate(facts)) == ["training_intermediary_fraud"]
    zhejiang = JudgmentRules.load(parameters={"fraud_relatively_large_yuan": 6000})
    assert zhejiang.parameters["fraud_relatively_large_yuan"].value == 6000
    assert zhejiang.parameters["fraud_relatively_large_yuan"].default == 3000
    assert zhejiang.evaluate(facts) == []
    recs = zhejiang.evaluate(facts | {"fraud_amount_yuan": 6000})
    assert "fraud_amount_yuan = 6000 >= 6000 (fraud_relatively_large_yuan)" in recs[0].explanation
    for bad in (2000, 12000, "6000"):
        with pytest.raises(StandardError, match="fraud_relatively_large_yuan"):
            JudgmentRules.load(parameters={"fraud_relatively_large_yuan": bad})
    with pytest.raises(StandardError, match="unknown parameter 'fraud_limit'"):
        JudgmentRules.load(parameters={"fraud_limit": 6000})


def test_deployment_overrides_a_parameter_by_environment(monkeypatch):
    monkeypatch.setenv(PARAMETERS_ENV, '{"fraud_relatively_large_yuan": 6000}')
    judgment_rules.cache_clear()
    try:
        assert judgment_rules().parameters["fraud_relatively_large_yuan"].value == 6000
        monkeypatch.setenv(PARAMETERS_ENV, "[6000]")
        judgment_rules.cache_clear()
        with pytest.raises(StandardError, match="JSON object"):
            judgment_rules()
    finally:
        monkeypatch.delenv(PARAMETERS_ENV)
        judgment_rules.cache_clear()
    assert judgment_rules().parameters["fraud_relatively_large_yuan"].value == 3000


def test_undeclared_parameter_names_rule():
    doc = shipped()
    by_id(doc, "training_intermediary_fraud")["conditions"]["all"][1]["gte"] = {
        "param": "fraud_big"}
    with pytest.raises(StandardError, match=r"training_intermediary_fraud.*'fraud_big'"):
        JudgmentRules.load(doc)


def test_rule_reference_must_point_backwards():
    doc = shipped()
    owner = doc["rules"].pop(RULE_IDS.index("owner_or_manager_responsible"))
    doc["rules"].insert(0, owner)
    with pytest.raises(StandardError, match=r"owner_or_manager_responsible.*defined earlier"):
        JudgmentRules.load(doc)


def test_derivations_are_checked():
    doc = shipped()
    doc["facts"]["vehicle_size"]["derive"][0]["value"] = "huge"
    with pytest.raises(StandardError, match=r"fact 'vehicle_size'.*'huge'"):
        JudgmentRules.load(doc)
    doc = shipped()
    doc["facts"]["vehicle_size"]["derive"][0]["when"] = {"fact": "vehicle_size",
                                                          "equals": "large"}
    with pytest.raises(StandardError, match="derived from itself"):
        JudgmentRules.load(doc)


def test_underivable_fact_is_a_missing_hint(rules):
    hints = rules.missing_facts({"vehicle_category": "passenger_bus", "passengers": 80,
                                 "service_type": "passenger_transport"})
    assert hints["passenger_overcapacity"] == ["vehicle_size", "rated_seats"]
