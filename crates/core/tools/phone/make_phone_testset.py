#!/usr/bin/env python3
"""Build the phone agreement test set: tests/data/phone_cases.tsv.

Usage: pip install phonenumbers && python3 tools/make_phone_testset.py [--old-xml PATH]

Starting from libphonenumber's example numbers (phonenumbers.example_number_for_type)
for many regions and number types, every number is written in many real-world ways
(E.164, international, national with/without trunk prefix, dots, dashes, parentheses,
00/011/other international prefixes, out-of-country formats, tel: URIs, leading labels,
extensions such as `x123`, `ext. 45`, `;ext=123`), with and without a default-region
hint; plus perturbed (often invalid) numbers, junk inputs, and a fuzz section (mutated example
numbers with labels/extensions/stray text, random phone-ish strings). The expected answer is
libphonenumber's own (phonenumbers.parse + is_valid_number + format_number E164):

  input <TAB> hint <TAB> status <TAB> e164 <TAB> extension <TAB> region
  status: valid | invalid | error:<NumberParseException type>
  region: region_code_for_number ("001" for non-geographic codes, "" if none)

With --old-xml (an older PhoneNumberMetadata.xml, e.g. the one the `phonenumber`
crate ships), numbers valid now but in no range of the old metadata are added with
the tag `recent` in a trailing comment line, so newer ranges are covered.

The generator is deterministic (fixed seed).
"""
import argparse
import glob
import os
import random
import re
import sys
import xml.etree.ElementTree as ET

import phonenumbers
from phonenumbers import PhoneNumberFormat as PNF
from phonenumbers import PhoneNumberType as PNT
from phonenumbers import NumberParseException

ERR_NAMES = {
    NumberParseException.INVALID_COUNTRY_CODE: "INVALID_COUNTRY_CODE",
    NumberParseException.NOT_A_NUMBER: "NOT_A_NUMBER",
    NumberParseException.TOO_SHORT_AFTER_IDD: "TOO_SHORT_AFTER_IDD",
    NumberParseException.TOO_SHORT_NSN: "TOO_SHORT_NSN",
    NumberParseException.TOO_LONG: "TOO_LONG",
}

# 72 regions: every continent, shared calling codes (+1, +7, +44, +61, +262, +590),
# trunk prefixes 0/1/8, carrier codes (BR, CO, AR), leading zeros (IT), no trunk prefix (DK, NO).
REGIONS = """US CA PR JM BS GB GG JE IM IE DE AT CH FR BE NL LU DK NO SE FI IS PL CZ SK HU
RO BG GR IT SM VA ES PT RU KZ UA BY TR IL AE SA EG MA NG KE ZA IN PK BD LK CN HK TW JP KR SG
MY ID TH VN PH AU NZ BR AR MX CO CL PE VE RE YT GP""".split()
NON_GEO = [800, 808, 870, 882, 883]

TYPES = [PNT.FIXED_LINE, PNT.MOBILE, PNT.TOLL_FREE, PNT.PREMIUM_RATE, PNT.VOIP, PNT.UAN]
# Further types used only by the fuzz section.
FUZZ_TYPES = TYPES + [PNT.SHARED_COST, PNT.PERSONAL_NUMBER]
FOREIGN_HINTS = ["US", "DE", "GB", "FR", "JP", "BR", "RU", "IN", "AU", "CN"]
OUT_OF_COUNTRY_FROM = ["US", "GB", "JP", "AU", "RU", "KR", "BR", "SG", "CO"]
EXTENSIONS = [" x123", " ext. 45", ";ext=123", " ext 7890", " #12", ",,55", " extension 99",
              " x.123", " anexo 12", " - 321#", " EXT: 4", ";ext=1234567"]


def answer(raw, hint):
    try:
        num = phonenumbers.parse(raw, hint)
    except NumberParseException as e:
        return ("error:" + ERR_NAMES[e.error_type], "", "", "")
    status = "valid" if phonenumbers.is_valid_number(num) else "invalid"
    region = phonenumbers.region_code_for_number(num) or ""
    return (status, phonenumbers.format_number(num, PNF.E164), num.extension or "", region)


class Cases:
    def __init__(self):
        self.rows = []
        self.seen = set()

    def add(self, raw, hint):
        if raw is None or "\t" in raw or "\n" in raw or "\r" in raw:
            return
        key = (raw, hint or "")
        if key in self.seen:
            return
        self.seen.add(key)
        self.rows.append((raw, hint or "") + answer(raw, hint))


def out_of_country(num, frm):
    try:
        return phonenumbers.format_out_of_country_calling_number(num, frm)
    except Exception:
        return None


def formats_for(cases, num, region, rng):
    cc = num.country_code
    nsn = phonenumbers.national_significant_number(num)
    e164 = phonenumbers.format_number(num, PNF.E164)
    intl = phonenumbers.format_number(num, PNF.INTERNATIONAL)
    nat = phonenumbers.format_number(num, PNF.NATIONAL)
    geo = region != "001"
    foreign = rng.choice([h for h in FOREIGN_HINTS if h != region])
    intl_rest = intl[len("+%d" % cc):].strip()

    cases.add(e164, None)
    cases.add(e164, foreign)
    cases.add(intl, None)
    cases.add(intl, foreign)
    cases.add("+%d (%s)" % (cc, intl_rest), None)
    cases.add("00" + e164[1:], "DE")
    cases.add("00 %d %s" % (cc, intl_rest), "FR")
    cases.add("011 %d %s" % (cc, intl_rest), "US")
    cases.add("011-%d-%s" % (cc, intl_rest.replace(" ", "-")), "CA")
    cases.add("+" + e164 if rng.random() < 0.2 else None, None)  # doubled plus
    cases.add("0011 %d %s" % (cc, intl_rest), "AU")
    cases.add("810 %d %s" % (cc, intl_rest), "RU")
    cases.add("Tel: " + intl, None)
    cases.add(e164 + rng.choice(EXTENSIONS), None)
    cases.add(intl + rng.choice(EXTENSIONS), foreign)
    rfc = phonenumbers.format_number(num, PNF.RFC3966)
    cases.add(rfc, None)
    cases.add(rfc + ";ext=" + str(rng.randint(1, 9999)), None)
    for frm in rng.sample(OUT_OF_COUNTRY_FROM, 2):
        cases.add(out_of_country(num, frm), frm)
    if geo:
        cases.add(e164, region)
        cases.add(intl, region)
        cases.add(nat, region)
        cases.add(nat, None)  # national without hint
        cases.add(nsn, region)
        cases.add(nat.replace(" ", ".").replace("-", "."), region)
        cases.add(nat.replace(" ", "-"), region)
        cases.add(re.sub(r"[^\d]", "", nat), region)
        cases.add("Mobile: " + nat, region)
        cases.add(nat + rng.choice(EXTENSIONS), region)
        groups = intl_rest.split(" ")
        if len(groups) >= 2:
            ndd = phonenumbers.ndd_prefix_for_region(region, True) or ""
            cases.add("(%s%s) %s" % (ndd, groups[0], "-".join(groups[1:])), region)
            cases.add("(%s) %s" % (groups[0], " ".join(groups[1:])), region)
            if ndd:
                cases.add("+%d (%s)%s %s" % (cc, ndd, groups[0], " ".join(groups[1:])), None)
        cases.add(nat, foreign)
        # International digits without "+", national hint (country code at start).
        cases.add("%d%s" % (cc, nsn), region)
        cases.add("%d %s" % (cc, intl_rest), None)
        # Perturbed numbers: drop / add / randomise digits.
        cases.add(nat[:-1], region)
        cases.add(e164 + str(rng.randint(0, 9)), None)
        if len(nsn) > 5:
            k = len(nsn) - rng.randint(2, 4)
            randomised = nsn[:k] + "".join(str(rng.randint(0, 9)) for _ in nsn[k:])
            cases.add(randomised, region)
            cases.add("+%d %s" % (cc, randomised), None)
        if len(nsn) > 2:
            swapped = nsn[1] + nsn[0] + nsn[2:]
            cases.add(swapped, region)


def junk(cases):
    for raw, hint in [
        ("", "US"), ("   ", None), ("abc", "US"), ("n/a", "GB"), ("12", "US"), ("+", None),
        ("+1", None), ("+44", None), ("+999 123 4567", None), ("+0 123 456 789", None),
        ("1-800-FLOWERS", "US"), ("1-800-GOT-JUNK", "US"), ("0800 FLOWERS", "GB"),
        ("555-1234", "US"), ("911", "US"), ("112", "DE"), ("000", "AU"),
        ("tel:+1-202-555-0123", None), ("tel:202-555-0123;phone-context=+1", None),
        ("tel:202-555-0123;phone-context=example.com", "US"), ("tel:123;phone-context=", "US"),
        ("tel:+1-202-555-0123;isub=12345", None), ("2025550123;phone-context=+1", None),
        ("\uff0b\uff14\uff14 \uff12\uff10 \uff17\uff19\uff14\uff16 \uff10\uff10\uff11\uff18", None),
        ("\u0660\u0665\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667", "SA"),
        ("+1 (202) 555-0123 x302/x2303", None), ("(530) 583-6985 x302", "US"),
        ("+49 (0) 30 123456", None), ("+440 20 7946 0018", None), ("+44 0 20 7946 0018", None),
        ("8 (912) 345-67-89", "RU"), ("+7 912 345 67 89", None), ("89123456789", "RU"),
        ("45 12 34 56", "DK"), ("+45 45 12 34 56", None), ("4512345678", "DK"),
        ("011 44 20 7946 0018", "US"), ("011 44 20 7946 0018", "CA"), ("011 44 20 7946 0018", None),
        ("0044 20 7946 0018", "US"), ("00 1 202 555 0123", "GB"),
        ("1" * 260, "US"), ("+1 " + "2" * 20, None), ("0" * 20, "DE"),
        ("call 020 7946 0018 after 5pm", "GB"), ("+1-202-555-0123 ext. 1234567890123456789012", None),
        ("+1 202 555 0123, 203 555 0145", None), ("+33 1 23 45 67 89;ext=", None),
        ("++44 20 7946 0018", None), ("+1 202 555 0123 #", None), ("-202-555-0123-", "US"),
        ("(0)20 7946 0018", "GB"), ("0 20 7946 0018", "GB"), ("+39 06 6982 1234", None),
        ("06 6982 1234", "IT"), ("+39 335 123 4567", None), ("0039 06 6982 1234", "CH"),
        ("+54 9 11 2345 6789", None), ("011 15 2345 6789", "AR"), ("15 2345 6789", "AR"),
        ("+55 11 91234 5678", None), ("0 21 11 91234 5678", "BR"), ("(11) 91234-5678", "BR"),
        ("+52 1 55 1234 5678", None), ("044 55 1234 5678", "MX"), ("+61 4 1234 5678", None),
        ("1800 123 456", "AU"), ("+800 1234 5678", None), ("+882 3456 7890", None),
        ("+86 10 1234 5678", None), ("010 1234 5678", "CN"), ("+81 3-1234-5678", None),
        ("03-1234-5678", "JP"), ("+82 2 312 3456", None), ("02-312-3456", "KR"),
    ]:
        cases.add(raw, hint)


def fuzz(cases, rng, n_mutated, n_random):
    """Messy lead-style inputs: mutated example numbers, and random phone-ish strings."""
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    seps = [" ", "-", ".", "", "/", " - ", "  ", "\u00a0", "\u2013"]
    exts = ["", "", "", " x12", " ext 3", ";ext=77", " ext. 4455", ",,12", " #9", " int 5",
            " extn 12", " \u0434\u043e\u0431 3", "#", " - 12#", " x", " ext"]
    pre = ["", "", "", "Tel: ", "ph ", "(", "+", "00", "011 ", "8 10 ", "0", "+0"]
    post = ["", "", "", " (mobile)", ".", ")", " / 555", " or 123", "!", " x12/x13"]
    fmts = [PNF.E164, PNF.INTERNATIONAL, PNF.NATIONAL, PNF.NATIONAL, PNF.RFC3966]

    def mutate(s):
        s = list(s)
        for _ in range(rng.randint(0, 2)):
            op = rng.randint(0, 2)
            i = rng.randrange(len(s)) if s else 0
            if op == 0 and s:
                s[i] = str(rng.randint(0, 9))
            elif op == 1 and s:
                del s[i]
            else:
                s.insert(i, str(rng.randint(0, 9)))
        return "".join(s)

    added = 0
    while added < n_mutated:
        r = rng.choice(regions)
        num = phonenumbers.example_number_for_type(r, rng.choice(FUZZ_TYPES))
        if num is None:
            continue
        s = phonenumbers.format_number(num, rng.choice(fmts))
        if rng.random() < 0.5:
            s = mutate(s)
        if rng.random() < 0.5:
            s = s.replace(" ", rng.choice(seps))
        s = rng.choice(pre) + s + rng.choice(exts) + rng.choice(post)
        cases.add(s, rng.choice([r, r, rng.choice(regions), None]))
        added += 1
    alphabet = (list("0123456789") * 6 + list("+ -().-/xX#;,*~") * 2 +
                list("extEXTnaoibcdfghFLOWERS:=") +
                ["\u00a0", "\uff0b", "\uff11", "\u0661", "\u2013", "\u0131", "\u017f", "\u0301",
                 "\u00f3", "ext", "ext.", ";ext=", "tel:", ";phone-context=", ";isub=", "00", "011",
                 "+1", "+44", "+7", "+33", "0", "8", "810"])
    hints = [None, "US", "CA", "GB", "DE", "FR", "RU", "DK", "IT", "BR", "AR", "MX", "JP", "CN",
             "IN", "AU", "KZ", "XX"]
    for _ in range(n_random):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        cases.add(s, rng.choice(hints))


def old_validators(path):
    """region -> (general regex, [type regexes]) from an older PhoneNumberMetadata.xml."""
    types = ["fixedLine", "mobile", "tollFree", "premiumRate", "sharedCost", "personalNumber",
             "voip", "pager", "uan", "voicemail"]
    result = {}
    root = ET.parse(path).getroot()
    for t in root.iter("territory"):
        def pat(tag):
            el = t.find(tag)
            if el is None:
                return None
            nnp = el.find("nationalNumberPattern")
            if nnp is None or not nnp.text:
                return None
            return re.compile(re.sub(r"\s", "", nnp.text))
        general = pat("generalDesc")
        specific = [p for p in (pat(x) for x in types) if p is not None]
        result[t.get("id")] = (general, specific)
    return result


def recent_cases(cases, old, rng, per_region=2, tries=3000):
    """Numbers valid with the current metadata but in no range of the old metadata."""
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        if region not in old:
            continue
        general, specific = old[region]
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        hits = 0
        for num_type in (PNT.MOBILE, PNT.FIXED_LINE):
            ex = phonenumbers.example_number_for_type(region, num_type)
            if ex is None:
                continue
            nsn = phonenumbers.national_significant_number(ex)
            for _ in range(tries):
                keep = rng.randint(1, 3)
                cand = nsn[:keep] + "".join(str(rng.randint(0, 9)) for _ in nsn[keep:])
                num = phonenumbers.parse("+%d%s" % (meta.country_code, cand), None)
                if not phonenumbers.is_valid_number(num) or phonenumbers.region_code_for_number(num) != region:
                    continue
                old_valid = general is not None and general.fullmatch(cand) and any(
                    p.fullmatch(cand) for p in specific)
                if not old_valid:
                    found.append((region, cand))
                    e164 = "+%d%s" % (meta.country_code, cand)
                    cases.add(e164, None)
                    cases.add(phonenumbers.format_number(num, PNF.NATIONAL), region)
                    hits += 1
                    break
            if hits >= per_region:
                break
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-xml", default=None)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                  "phone_cases.tsv"))
    args = ap.parse_args()
    if args.old_xml is None:
        found = glob.glob(os.path.expanduser(
            "~/.cargo/registry/src/*/phonenumber-*/assets/PhoneNumberMetadata.xml"))
        args.old_xml = sorted(found)[-1] if found else None

    rng = random.Random(20261121)
    cases = Cases()
    countries = set()
    for region in REGIONS:
        for num_type in TYPES:
            num = phonenumbers.example_number_for_type(region, num_type)
            if num is None:
                continue
            countries.add(region)
            formats_for(cases, num, region, rng)
    for cc in NON_GEO:
        num = phonenumbers.example_number_for_non_geo_entity(cc)
        if num is not None:
            formats_for(cases, num, "001", rng)
    for region in REGIONS:
        inv = phonenumbers.invalid_example_number(region)
        if inv is not None:
            cases.add(phonenumbers.format_number(inv, PNF.E164), None)
            cases.add(phonenumbers.format_number(inv, PNF.NATIONAL), region)
    junk(cases)
    fuzz(cases, rng, 2000, 600)
    recent = []
    if args.old_xml and os.path.exists(args.old_xml):
        recent = recent_cases(cases, old_validators(args.old_xml), rng)

    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("# phonenumbers %s (libphonenumber metadata %s); generated by tools/make_phone_testset.py\n"
                % (phonenumbers.__version__, phonenumbers.__version__))
        f.write("# %d cases, %d example-number regions + %d non-geographic codes\n"
                % (len(cases.rows), len(countries), len(NON_GEO)))
        if recent:
            f.write("# recent ranges (valid now, no range in %s): %s\n"
                    % (os.path.basename(os.path.dirname(os.path.dirname(args.old_xml))),
                       " ".join("%s:%s" % r for r in recent)))
        f.write("# input\thint\tstatus\te164\textension\tregion\n")
        for row in cases.rows:
            f.write("\t".join(row) + "\n")
    statuses = {}
    for row in cases.rows:
        statuses[row[2]] = statuses.get(row[2], 0) + 1
    print("%d cases, %d regions; %s; %d recent" % (len(cases.rows), len(countries), statuses, len(recent)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
