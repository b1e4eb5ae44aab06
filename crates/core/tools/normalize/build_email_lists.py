#!/usr/bin/env python3
"""Regenerate data/disposable_domains.txt and data/free_mail_domains.txt.

Usage (from the crate root):
    pip download --no-deps disposable-email-domains==<ver> -d /tmp/dl
    npm pack free-email-domains@<ver> --pack-destination /tmp/dl
    python3 tools/build_email_lists.py /tmp/dl/disposable_email_domains-*.whl /tmp/dl/free-email-domains-*.tgz

The free-mail list is the npm list MINUS every domain on the disposable list
(the npm list also folds in disposable lists; we keep the two flags separate).
"""
import ast, json, re, sys, tarfile, zipfile

VALID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")

def clean(domains):
    out = set()
    for d in domains:
        d = d.strip().lower().rstrip(".")
        if VALID.match(d):
            out.add(d)
    return out

def main(whl, tgz):
    with zipfile.ZipFile(whl) as z:
        src = z.read("disposable_email_domains/__init__.py").decode()
    tree = ast.parse(src)
    block = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "blocklist":
            block = ast.literal_eval(node.value)
    disposable = clean(block)
    with tarfile.open(tgz) as t:
        free = clean(json.load(t.extractfile("package/domains.json")))
    free -= disposable
    with open("data/disposable_domains.txt", "w") as f:
        f.write("\n".join(sorted(disposable)) + "\n")
    with open("data/free_mail_domains.txt", "w") as f:
        f.write("\n".join(sorted(free)) + "\n")
    print(f"disposable: {len(disposable)}  free (after removing disposable): {len(free)}")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
