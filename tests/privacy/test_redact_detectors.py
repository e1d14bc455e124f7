"""Unit tests of each detector: documented true positives and near misses."""

from __future__ import annotations

import re

import pytest

from tracework.privacy.redact import CustomRule, Redactor, find_spans, redact_text
from tracework.privacy.redact.checks import iban_ok, luhn_ok, verhoeff_ok


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.placeholder, text[s.start : s.end]) for s in find_spans(text)]


def assert_found(text: str, placeholder: str, value: str) -> None:
    assert (placeholder, value) in kinds(text), kinds(text)


def assert_not(text: str, placeholder: str) -> None:
    assert all(p != placeholder for p, _ in kinds(text)), kinds(text)


@pytest.mark.parametrize(
    "value",
    ["jane.roe@example.org", "j_r+tag@mail.example.co.uk", "UtaKortig@jourrapide.com", "o'brien@example.ie"],
)
def test_email_found(value):
    assert_found(f"write to {value}, thanks", "EMAIL", value)


@pytest.mark.parametrize("text", ["meet @ 5pm", "user@localhost", "a@b", "foo@bar.", "@handle on twitter", "x@-bad.com"])
def test_email_near_misses(text):
    assert_not(text, "EMAIL")


@pytest.mark.parametrize(
    "value",
    ["+1 415-555-0132", "(415) 555-0132", "+44 20 7946 0958", "+49 30 901820", "07700 900123", "+33 1 42 68 53 00", "+91 98765 43210", "+46 (0)8 928 571 38"],
)
def test_phone_found(value):
    assert_found(f"call me on {value} today", "PHONE", value)


@pytest.mark.parametrize("text", ["released in 2019-04-16 09:00", "order 1234 of 5678", "version 3.10.12", "room 42, floor 7"])
def test_phone_near_misses(text):
    assert_not(text, "PHONE")


@pytest.mark.parametrize(
    "value",
    ["4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117", "3530111333300000"],
)
def test_card_found(value):
    assert luhn_ok(re.sub(r"\D", "", value))
    assert_found(f"card {value} exp 12/29", "CARD", value)


@pytest.mark.parametrize("text", ["card 4111111111111112", "id 12345678901234567890123", "4111  1111 1111 1111"])
def test_card_near_misses(text):
    assert_not(text, "CARD")


@pytest.mark.parametrize(
    "value",
    ["GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606", "gb42nawi04454264788619"],
)
def test_iban_found(value):
    assert iban_ok(value)
    assert_found(f"iban: {value} please", "IBAN", value)


@pytest.mark.parametrize("text", ["GB82WEST12345698765431", "DE89370400440532013001", "XX00 0000"])
def test_iban_near_misses(text):
    assert_not(text, "IBAN")


def test_ssn():
    assert_found("ssn 078-05-1120 on file", "SSN", "078-05-1120")
    assert_found("SSN: 078051120", "SSN", "078051120")
    for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "078-05-11201", "078-05 1120"]:
        assert_not(f"number {bad} here", "SSN")


def test_uk_nino_and_canadian_sin_and_aadhaar():
    assert_found("NI number AB 12 34 56 C", "NATIONAL_ID", "AB 12 34 56 C")
    assert_not("NI number GB 12 34 56 C", "NATIONAL_ID")  # GB is not an issued prefix
    assert_not("ref DA123456A", "NATIONAL_ID")  # D is never a first letter
    assert luhn_ok("046454286")
    assert_found("SIN 046 454 286", "NATIONAL_ID", "046 454 286")
    assert_not("SIN 046 454 287", "NATIONAL_ID")
    prefix = "23412341234"
    good = next(prefix + d for d in "0123456789" if verhoeff_ok(prefix + d))
    spaced = f"{good[:4]} {good[4:8]} {good[8:]}"
    assert_found(f"aadhaar {spaced}", "NATIONAL_ID", spaced)
    bad = spaced[:-1] + str((int(spaced[-1]) + 1) % 10)
    assert not verhoeff_ok(bad.replace(" ", ""))
    assert_not(f"aadhaar {bad}", "NATIONAL_ID")


def test_ip_addresses():
    assert_found("host 192.168.1.20 is up", "IP_ADDRESS", "192.168.1.20")
    assert_found("v6 2001:db8::8a2e:370:7334 ok", "IP_ADDRESS", "2001:db8::8a2e:370:7334")
    assert_found("ll fe80::1ff:fe23:4567:890a.", "IP_ADDRESS", "fe80::1ff:fe23:4567:890a")
    for bad in ["999.1.1.1", "1.2.3", "v1.2.3.4.5", "12:30:45", "a::b::c"]:
        assert_not(f"x {bad} y", "IP_ADDRESS")


def test_url_credentials_keep_host():
    text = "DATABASE_URL=postgres://admin:hunter2@db.internal:5432/app"
    assert_found(text, "URL_CREDENTIALS", "admin:hunter2")
    assert "db.internal" in redact_text(text)
    assert_not("see https://user@example.com/path and https://example.com/a:b", "URL_CREDENTIALS")


def test_private_key_block_and_not_certificate():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"
    assert_found(f"here:\n{key}\nbye", "PRIVATE_KEY", key)
    cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----"
    assert_not(cert, "PRIVATE_KEY")
    # A block whose END line never came is still a key, to the end of the text.
    cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA"
    assert kinds(cut) == [("PRIVATE_KEY", cut)]


def test_jwt():
    jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    assert_found(f"Authorization: Bearer {jwt}", "JWT", jwt)
    assert_not("eyJhbGciOiJIUzI1NiJ9 alone", "JWT")


def test_generic_assignments():
    assert_found("password=hunter22", "PASSWORD", "hunter22")
    assert_found('DB_PASSWORD: "c0rrect-h0rse"', "PASSWORD", "c0rrect-h0rse")
    assert_found("api_key = Zx9fQ2LmP0aR7tKw3V", "SECRET", "Zx9fQ2LmP0aR7tKw3V")
    assert_found("client_secret: 8f2Kq0ZpLw9sXr4TbN1m", "SECRET", "8f2Kq0ZpLw9sXr4TbN1m")
    for near in ["password: ${DB_PASSWORD}", "token: the", "key = value", "password=null", "the secret: aaaaaaaaaaaaaaa"]:
        found = kinds(near)
        assert all(p not in ("PASSWORD", "SECRET") for p, _ in found), (near, found)


def test_aws_documented_examples():
    assert_found("AKIAIOSFODNN7EXAMPLE", "AWS_KEY", "AKIAIOSFODNN7EXAMPLE")
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert_found(f"aws_secret_access_key = {secret}", "AWS_SECRET", secret)
    # Near misses: wrong length, wrong alphabet (AWS ids are base32: no 0, 1, 8, 9), glued to a word.
    for near in ["AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLE1", "AKIA0OSFODNN7EXAMPLE", "xAKIAIOSFODNN7EXAMPLE"]:
        assert_not(near, "AWS_KEY")


@pytest.mark.parametrize(
    "near",
    [
        "ghp_" + "a" * 35,  # one short
        "glpat-" + "x" * 19,
        "sk_live_short",
        "xoxb-123",
        "npm_" + "A" * 35,
        "hf_" + "a" * 33,
        "dop_v1_" + "g" * 64,  # not hex
        "SG." + "a" * 22 + "." + "b" * 42,
        "PMAK-" + "a" * 24 + "-" + "b" * 33,
    ],
)
def test_provider_near_misses(near):
    assert find_spans(f"value {near} end") == []


def test_custom_rules_and_allow_list():
    red = Redactor(
        custom_rules=(CustomRule("EMPLOYEE_ID", re.compile(r"EMP-[0-9]{6}")),),
        allow_values=frozenset({"support@example.com"}),
        allow_patterns=(re.compile(r"10\.0\.0\.[0-9]{1,3}"),),
    )
    text = "EMP-123456 wrote to support@example.com and bob@example.com from 10.0.0.7 and 8.8.8.8"
    got = [(s.placeholder, text[s.start : s.end]) for s in red.find(text)]
    assert ("EMPLOYEE_ID", "EMP-123456") in got
    assert ("EMAIL", "bob@example.com") in got and ("IP_ADDRESS", "8.8.8.8") in got
    assert all(v not in ("support@example.com", "10.0.0.7") for _, v in got)


def test_disabled_detector():
    assert Redactor(disabled=frozenset({"email"})).find("bob@example.com") == []
    with pytest.raises(ValueError, match="unknown detectors"):
        Redactor(disabled=frozenset({"nope"}))


def test_spans_do_not_overlap_and_prefer_precise():
    text = "card 4111 1111 1111 1111 and key ghp_" + "Ab1" * 12 + " mail a@b.co"
    spans = find_spans(text)
    for a, b in zip(spans, spans[1:]):
        assert a.end <= b.start
    assert {s.placeholder for s in spans} == {"CARD", "GITHUB_TOKEN", "EMAIL"}


def test_numbers_typed_side_by_side_are_each_found():
    text = "then +1 415 555 2713 4819 8159 2356 9127 ok; call 415 555 0132 or 415 555 0199; 4111 1111 1111 1111 5555 5555 5555 4444"
    got = kinds(text)
    assert ("PHONE", "+1 415 555 2713") in got and ("CARD", "4819 8159 2356 9127") in got
    assert ("PHONE", "415 555 0132") in got and ("PHONE", "415 555 0199") in got
    assert ("CARD", "4111 1111 1111 1111") in got and ("CARD", "5555 5555 5555 4444") in got
